// swift-tools-version:5.9
// The katcore Swift package: the Rust core as an XCFramework (built by
// ./build-xcframework.sh, which also writes the generated Swift into
// Sources/Katcore/Generated/) and the Swift API over it.
import PackageDescription

let package = Package(
    name: "Katcore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Katcore", targets: ["Katcore"]),
    ],
    targets: [
        // libkatcore_ffi.a for iOS devices, the iOS simulator and macOS (for `swift test`), with the C module KatcoreFFI.
        .binaryTarget(name: "KatcoreFFI", path: "build/KatcoreFFI.xcframework"),
        // The generated bindings (module Katcore) plus a thin Swift layer where the generated API is awkward.
        .target(name: "Katcore", dependencies: ["KatcoreFFI"], path: "Sources/Katcore"),
        .testTarget(name: "KatcoreTests", dependencies: ["Katcore"], path: "Tests/KatcoreTests"),
    ]
)
