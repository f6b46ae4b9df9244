#!/usr/bin/env python3
"""Checks the project's room rules on every crate's sources (the developers'
guide, "Rooms stay small and clear"):

- no source file over 800 lines;
- no two modules importing each other: module A names something of module B
  (`crate::b::…`, or `super::b::…` from a sibling) and B names something of
  A. A module and its own descendants may name each other (a child's tests,
  a parent declaring its children), and comments and `#[cfg(test)] mod
  tests` blocks do not count.

Prints each breach and exits 1 if there is one. Run by scripts/test.sh.
"""

import os
import re
import sys

CRATES = ["core/src", "clinic/src", "bindings/src", "cli/src", "tests/src"]
MAX_LINES = 800
PATH = r"[a-z_][a-z0-9_]*(?:::[a-z_][a-z0-9_]*)*"


def modules(root):
    """Module path (`web::pages`) to file, for every `.rs` file under root."""
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] in ("lib", "main", "mod"):
                parts = parts[:-1]
            found["::".join(parts)] = path
    return found


def code_of(path):
    """The file's text without comment lines and without its inline test module."""
    lines = [line for line in open(path, encoding="utf-8").read().split("\n") if not line.lstrip().startswith("//")]
    text = "\n".join(lines)
    tests = text.find("#[cfg(test)]\nmod tests {")
    return text if tests < 0 else text[:tests]


def related(a, b):
    return a == b or a.startswith(b + "::") or b.startswith(a + "::")


def check(root):
    found = modules(root)
    breaches = []

    def resolve(path):
        segments = path.split("::")
        for end in range(len(segments), 0, -1):
            candidate = "::".join(segments[:end])
            if candidate in found:
                return candidate
        return None

    edges = set()
    for module, path in found.items():
        count = sum(1 for _ in open(path, encoding="utf-8"))
        if count > MAX_LINES:
            breaches.append(f"{path}: {count} lines (the limit is {MAX_LINES})")
        code = code_of(path)
        targets = [resolve(ref) for ref in re.findall(r"\bcrate::(" + PATH + ")", code)]
        parent = module.split("::")[:-1]
        for ref in re.findall(r"\bsuper::(" + PATH + ")", code):
            targets.append(resolve("::".join(parent + ref.split("::"))))
        edges.update((module, target) for target in targets if target and not related(module, target))
    for a, b in sorted({tuple(sorted(edge)) for edge in edges if (edge[1], edge[0]) in edges}):
        breaches.append(f"{root}: `{a}` and `{b}` import each other")
    return breaches


def main():
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    breaches = [breach for root in CRATES if os.path.isdir(root) for breach in check(root)]
    for breach in breaches:
        print(breach, file=sys.stderr)
    if breaches:
        sys.exit(1)
    print(f"rooms: every file of {', '.join(CRATES)} is under {MAX_LINES} lines, and no two modules import each other")


if __name__ == "__main__":
    main()
