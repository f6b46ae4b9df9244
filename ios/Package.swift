// swift-tools-version:6.2
// The katcore Swift package: the Rust core's C interface (`KatcoreFFI`), the
// Swift bindings UniFFI generates from the compiled library
// (`KatcoreBindings`), and the hand-written Swift API over them (`Katcore`,
// the product an app imports; it re-exports the generated API).
//
// One manifest serves both worlds:
// - On Apple platforms `KatcoreFFI` is the XCFramework that
//   ./build-xcframework.sh builds (static libraries for iOS devices, the
//   simulator and macOS), and that script writes the generated Swift.
// - On Linux, where the iOS API is compiled and tested (scripts/swift-test.sh),
//   `KatcoreFFI` is a system-library target: a module map over the generated
//   header, linking the `libkatcore_ffi.so` that scripts/bindings.sh builds.
//   swift-test.sh copies the header and the generated Swift in and passes
//   the library's directory to the linker.
//
// Generated files are never committed (see .gitignore): the Swift API cannot
// drift from the library.
import PackageDescription

#if os(Linux)
let ffi: Target = .systemLibrary(name: "KatcoreFFI", path: "Sources/KatcoreFFI")
#else
let ffi: Target = .binaryTarget(name: "KatcoreFFI", path: "build/KatcoreFFI.xcframework")
#endif

/// The hand-written Swift: Swift 6 with complete concurrency checking, every warning an error.
let strict: [SwiftSetting] = [.swiftLanguageMode(.v6), .treatAllWarnings(as: .error)]

let package = Package(
    name: "Katcore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Katcore", targets: ["Katcore"]),
    ],
    targets: [
        ffi,
        // UniFFI's generated Swift. Swift 5 language mode: the generated code
        // does not pass Swift 6's concurrency checker (docs/mobile.md, "Swift 6").
        .target(
            name: "KatcoreBindings", dependencies: ["KatcoreFFI"], path: "Sources/KatcoreBindings",
            swiftSettings: [.swiftLanguageMode(.v5)]
        ),
        // The Swift API an app uses: the generated API, re-exported, plus
        // URLSessionTransport and the Swift conveniences in Katcore+Swift.swift.
        .target(name: "Katcore", dependencies: ["KatcoreBindings"], path: "Sources/Katcore", swiftSettings: strict),
        .testTarget(name: "KatcoreTests", dependencies: ["Katcore"], path: "Tests/KatcoreTests", swiftSettings: strict),
    ]
)
