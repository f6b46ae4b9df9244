#!/usr/bin/env python3
"""Plots target/growth.csv (from `cargo bench -p katcore --bench growth`) to docs/growth.png."""
import csv
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
rows = list(csv.DictReader(open(root / "target" / "growth.csv")))
if not rows:
    sys.exit("target/growth.csv is empty: run the growth benchmark first")
years = [float(r["years"]) for r in rows]
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
left.plot(years, [float(r["open_ms"]) for r in rows], "o-", label="CareStore::open (decrypt + load)")
left.plot(years, [float(r["bare_load_ms"]) for r in rows], "s--", label="bare AutoCommit::load")
if "first_view_ms" in rows[0]:
    left.plot(years, [float(r["first_view_ms"]) for r in rows], "^-", label="Device::first_view (what the app shows first)")
left.set_xlabel("years of record")
left.set_ylabel("median time, ms")
left.set_title("Open time")
left.legend()
right.plot(years, [float(r["file_bytes"]) / 2**20 for r in rows], "o-", color="tab:green")
right.set_xlabel("years of record")
right.set_ylabel("MiB on disk")
right.set_title("File size (compacted)")
for axis in (left, right):
    axis.grid(alpha=0.3)
    axis.set_xlim(left=0)
    axis.set_ylim(bottom=0)
fig.tight_layout()
fig.savefig(root / "docs" / "growth.png", dpi=110)
print(f"wrote {root / 'docs' / 'growth.png'}")
