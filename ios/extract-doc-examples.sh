#!/usr/bin/env bash
# Copies the Swift examples of docs/mobile.md, README.md and ios/README.md into the test
# target (Tests/KatcoreTests/DocExamples/, never committed), where
# DocExampleTests.swift calls them: the documents cannot drift from the API.
# Run by scripts/swift-test.sh (Linux) and build-xcframework.sh (Apple).
set -euo pipefail
cd "$(dirname "$0")"
out=Tests/KatcoreTests/DocExamples
mkdir -p "$out"
swift_blocks() { awk '/^```swift$/ { keep = 1; next } /^```$/ { keep = 0 } keep' "$1"; }
{ echo "// Extracted from docs/mobile.md by ios/extract-doc-examples.sh: edit the document, not this file."
  swift_blocks ../docs/mobile.md; } >"$out/MobileDocExample.swift"
{ echo "// Extracted from README.md by ios/extract-doc-examples.sh: edit the document, not this file."
  swift_blocks ../README.md; } >"$out/ReadmeExample.swift"
{ echo "// Extracted from ios/README.md by ios/extract-doc-examples.sh: edit the document, not this file."
  swift_blocks README.md; } >"$out/IosReadmeExample.swift"
