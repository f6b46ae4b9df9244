#!/usr/bin/env bash
# Builds ios/build/KatcoreFFI.xcframework (static libkatcore_ffi.a for iOS
# devices, the iOS simulator and macOS), generates the Swift bindings into
# ios/Sources/KatcoreBindings/ and extracts the documents' Swift examples into
# the test target. Run on a Mac with Xcode and rustup; nothing it produces is
# committed. (On Linux, scripts/swift-test.sh does the same with a shared
# library and a system-library target instead of the XCFramework.)
#
#   ios/build-xcframework.sh [--profile mobile|release|dev]   (default: mobile)
#
# Slices: aarch64-apple-ios (devices); aarch64-apple-ios-sim + x86_64-apple-ios
# (simulator, one fat library); aarch64-apple-darwin + x86_64-apple-darwin
# (macOS, so that `swift test` runs the XCTests on the Mac).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/profile.sh
katcore_default_profile=mobile katcore_profile_args "$@"
[ "$(uname -s)" = Darwin ] || { echo "build-xcframework.sh: needs macOS with Xcode (xcodebuild, lipo)" >&2; exit 1; }

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
export IPHONEOS_DEPLOYMENT_TARGET=15.0 MACOSX_DEPLOYMENT_TARGET=12.0
for target in "${targets[@]}"; do
  echo "==> building libkatcore_ffi.a for $target ($profile)"
  cargo build --locked -p katcore-bindings --lib --profile "$profile" --target "$target"
done
lib() { echo "target/$1/$dir/libkatcore_ffi.a"; }

echo "==> generating the Swift bindings"
cargo build --locked -p katcore-bindings --features bindgen --bin uniffi-bindgen
generated=ios/Sources/KatcoreBindings
build=ios/build
rm -rf "$build" "$generated/Katcore.swift"
mkdir -p "$generated" "$build/headers" "$build/ios-simulator" "$build/macos"
target/debug/uniffi-bindgen generate "$(lib aarch64-apple-ios)" --language swift --out-dir "$build/swift" --no-format
scripts/patch-generated-swift.py "$build/swift/Katcore.swift"
mv "$build/swift/Katcore.swift" "$generated/"
cp "$build/swift/KatcoreFFI.h" "$build/headers/"
# An XCFramework's headers directory carries the C module as module.modulemap.
cp "$build/swift/KatcoreFFI.modulemap" "$build/headers/module.modulemap"

echo "==> assembling KatcoreFFI.xcframework"
lipo -create "$(lib aarch64-apple-ios-sim)" "$(lib x86_64-apple-ios)" -output "$build/ios-simulator/libkatcore_ffi.a"
lipo -create "$(lib aarch64-apple-darwin)" "$(lib x86_64-apple-darwin)" -output "$build/macos/libkatcore_ffi.a"
xcodebuild -create-xcframework \
  -library "$(lib aarch64-apple-ios)" -headers "$build/headers" \
  -library "$build/ios-simulator/libkatcore_ffi.a" -headers "$build/headers" \
  -library "$build/macos/libkatcore_ffi.a" -headers "$build/headers" \
  -output "$build/KatcoreFFI.xcframework"
ios/extract-doc-examples.sh
echo "==> ios/build/KatcoreFFI.xcframework and $generated/Katcore.swift are ready: swift test --package-path ios"
