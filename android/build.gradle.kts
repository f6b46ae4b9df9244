// Plugin versions for building the module on its own; an app's own versions win when it includes the module.
plugins {
    id("com.android.library") version "8.7.3" apply false
    id("org.jetbrains.kotlin.android") version "2.1.0" apply false
}
