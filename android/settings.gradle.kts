// Builds the katcore Android library on its own (`gradle :katcore:assembleRelease`).
// An app that includes the module instead adds to its own settings.gradle.kts:
//   include(":katcore")
//   project(":katcore").projectDir = file("<path to katcore>/android/katcore")
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "katcore-android"
include(":katcore")
