#!/usr/bin/env bash
# Builds the katcore_ffi library and generates its Kotlin and Swift bindings
# from it with the workspace's own uniffi-bindgen (UniFFI library mode: the
# interface is read from the compiled library, so the bindings always match
# it). Generated code is never committed.
#
#   scripts/bindings.sh [--profile dev|release|mobile]   (default: dev)
#
# Output, in target/bindings/<profile dir>/:
#   kotlin/org/katcore/katcore_ffi.kt
#   swift/Katcore.swift (with scripts/patch-generated-swift.py's faster reader),
#   swift/KatcoreFFI.h, swift/KatcoreFFI.modulemap
#   lib/libkatcore_ffi.so (.dylib on macOS): a stripped copy, what an app ships
#
# Bindings are generated from the unstripped build in target/<profile dir>/,
# whose symbols carry UniFFI's metadata; only the copy in lib/ is stripped.
set -euo pipefail
cd "$(dirname "$0")/.."
# Cargo's output directory (honours CARGO_TARGET_DIR).
target="${CARGO_TARGET_DIR:-target}"

. scripts/lib/profile.sh
katcore_profile_args "$@"
case "$(uname -s)" in
  Darwin) libfile=libkatcore_ffi.dylib; strip_flags=(-x) ;;
  *) libfile=libkatcore_ffi.so; strip_flags=(--strip-unneeded) ;;
esac

echo "==> building katcore_ffi ($profile)"
cargo build --locked -p katcore-bindings --lib --profile "$profile"
echo "==> building uniffi-bindgen"
cargo build --locked -p katcore-bindings --features bindgen --bin uniffi-bindgen

lib="$target/$dir/$libfile"
out="$target/bindings/$dir"
rm -rf "$out"
mkdir -p "$out/kotlin" "$out/swift" "$out/lib"
echo "==> generating Kotlin and Swift from $lib"
$target/debug/uniffi-bindgen generate "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
$target/debug/uniffi-bindgen generate "$lib" --language swift --out-dir "$out/swift" --no-format
# A faster integer reader in the generated Swift (the script says why).
scripts/patch-generated-swift.py "$out/swift/Katcore.swift"

cp "$lib" "$out/lib/$libfile"
strip "${strip_flags[@]}" "$out/lib/$libfile"
size() { wc -c <"$1" | tr -d ' '; }
echo "==> $out/lib/$libfile: $(size "$out/lib/$libfile") bytes stripped ($(size "$lib") unstripped)"
