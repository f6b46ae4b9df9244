#!/usr/bin/env python3
"""Speeds up how UniFFI's generated Swift reads integers from a RustBuffer.

    scripts/patch-generated-swift.py PATH/Katcore.swift

Run by scripts/bindings.sh and ios/build-xcframework.sh on the Swift that
UniFFI 0.32 generates, before anything compiles it.

Every value Rust returns to Swift (a checklist evaluation is some hundreds
of integers: lengths, enum tags, instants) is read by the generated
`readInt`, which copies each integer out of the buffer's `Data` with
Foundation's generic `copyBytes(to:from:)`. On swift-corelibs-foundation
that generic call is not specialised across the module boundary, and looks
up generic metadata on every read: in `perf`, 80 % of a Swift
`SessionChecklist.evaluate()` was that reader, 13 % the Rust core. This
replaces the copy with one unaligned load from the same bytes, with the
same bounds check before it (BENCHMARKS.md, "FFI round trip from Swift":
53.0 µs -> 19.2 µs per evaluation, the same library).

The replacement is exact-match: if UniFFI's template changes, this script
fails and names what it did not find, rather than leaving a build that
silently differs. When UniFFI generates a reader of its own that is as fast,
delete this script and its two callers.
"""

import sys

ORIGINAL = """    var value: T = 0
    let _ = withUnsafeMutableBytes(of: &value, { reader.data.copyBytes(to: $0, from: range)})
    reader.offset = range.upperBound
    return value.bigEndian"""

REPLACEMENT = """    // katcore: one unaligned load instead of Foundation's generic copyBytes (scripts/patch-generated-swift.py).
    let value = reader.data.withUnsafeBytes { bytes in
        bytes.loadUnaligned(fromByteOffset: range.lowerBound - reader.data.startIndex, as: T.self)
    }
    reader.offset = range.upperBound
    return value.bigEndian"""


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        source = f.read()
    if REPLACEMENT in source:
        return 0  # already patched
    found = source.count(ORIGINAL)
    if found != 1:
        print(
            f"patch-generated-swift.py: expected UniFFI's readInt body exactly once in {path}, found it {found} times; "
            "has the UniFFI template changed? Check whether its reader is now fast, then update or delete this patch.",
            file=sys.stderr,
        )
        return 1
    with open(path, "w", encoding="utf-8") as f:
        f.write(source.replace(ORIGINAL, REPLACEMENT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
