// The katcore Android library: the Rust core for arm64-v8a, armeabi-v7a and
// x86_64 (built with cargo-ndk), and its Kotlin API, generated at build time
// from the built library by the workspace's own uniffi-bindgen. Nothing
// generated is committed.
//
// Needs on the build machine: the Rust toolchain with the Android targets,
// cargo-ndk, and the NDK (see android/README.md).
plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

// The katcore repository (this file is android/katcore/build.gradle.kts in it).
val katcoreRoot: File = projectDir.resolve("../..").canonicalFile
val cargoProfile = providers.gradleProperty("katcore.cargoProfile").getOrElse("mobile")
val abis = mapOf(
    "arm64-v8a" to "aarch64-linux-android",
    "armeabi-v7a" to "armv7-linux-androideabi",
    "x86_64" to "x86_64-linux-android",
)
val minSdkVersion = 24
val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")
val generatedKotlin = layout.buildDirectory.dir("generated/source/uniffi/kotlin")
val rustSources = listOf("Cargo.toml", "Cargo.lock", "core", "bindings").map { katcoreRoot.resolve(it) }

android {
    namespace = "org.katcore"
    compileSdk = 35
    ndkVersion = "27.2.12479018"

    defaultConfig {
        minSdk = minSdkVersion
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += abis.keys }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    sourceSets["main"].jniLibs.srcDir(rustJniLibs)
    sourceSets["main"].java.srcDir(generatedKotlin)
    // The hand-written Kotlin (UrlConnectionTransport).
    sourceSets["main"].java.srcDir("src/main/kotlin")
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    // The generated bindings call the native library through JNA (5.12+; the @aar carries its native parts).
    implementation("net.java.dev.jna:jna:5.17.0@aar")
    // `enroll`, `syncNow` and `syncIfDue` are suspend functions.
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.10.2")
}

// libkatcore_ffi.so for every ABI, in jniLibs layout. Android's packaging strips the copies it ships.
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "katcore"
    description = "Builds libkatcore_ffi.so for ${abis.keys.joinToString()} with cargo-ndk."
    workingDir = katcoreRoot
    inputs.files(rustSources)
    outputs.dir(rustJniLibs)
    commandLine(
        listOf("cargo", "ndk") + abis.keys.flatMap { listOf("-t", it) } + listOf(
            "--platform", "$minSdkVersion",
            "-o", rustJniLibs.get().asFile.path,
            "build", "--locked", "-p", "katcore-bindings", "--lib", "--profile", cargoProfile,
        ),
    )
}

// The Kotlin API, read from the unstripped arm64 build (UniFFI library mode).
val generateKotlinBindings by tasks.registering(Exec::class) {
    group = "katcore"
    description = "Generates the Kotlin bindings (package org.katcore) from the built library."
    dependsOn(cargoNdkBuild)
    workingDir = katcoreRoot
    val profileDir = if (cargoProfile == "dev") "debug" else cargoProfile
    val library = katcoreRoot.resolve("target/${abis.getValue("arm64-v8a")}/$profileDir/libkatcore_ffi.so")
    inputs.files(rustSources)
    outputs.dir(generatedKotlin)
    doFirst { delete(generatedKotlin) }
    commandLine(
        "cargo", "run", "--locked", "-p", "katcore-bindings", "--features", "bindgen", "--bin", "uniffi-bindgen", "--",
        "generate", library.path, "--language", "kotlin", "--out-dir", generatedKotlin.get().asFile.path, "--no-format",
    )
}

tasks.named("preBuild") { dependsOn(generateKotlinBindings) }
