#!/usr/bin/env python3
"""Plots `zinc bench --csv` results: decode throughput vs batch size and roofline fraction
(weight-stream rate / the pinned H2D link measured at start) vs batch size, one line per
CSV file, labelled by its file name. Needs matplotlib (Debian: apt install python3-matplotlib).

usage: plot_bench.py CSV [CSV ...] --out DIR
writes DIR/decode_throughput.png and DIR/roofline_fraction.png
"""
import argparse
import csv
import os
import sys


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for need in ("batch", "decode_tok_s", "roofline_fraction"):
        if rows and need not in rows[0]:
            sys.exit(f"plot_bench.py: {path}: no '{need}' column (not a zinc bench --csv file?)")
    return sorted(rows, key=lambda r: float(r["batch"]))


def plot(series, column, ylabel, title, path, plt):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, rows in series:
        xs = [float(r["batch"]) for r in rows]
        ys = [float(r[column]) for r in rows]
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size (all ranks)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description="plot zinc bench CSV files")
    ap.add_argument("csv", nargs="+", help="zinc bench --csv outputs")
    ap.add_argument("--out", required=True, help="directory for the PNGs")
    args = ap.parse_args()
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot_bench.py: matplotlib is missing: install the Debian package python3-matplotlib "
              "(apt install python3-matplotlib)", file=sys.stderr)
        return 1
    series = [(os.path.basename(p), read_rows(p)) for p in args.csv]
    os.makedirs(args.out, exist_ok=True)
    plot(series, "decode_tok_s", "decode throughput (tok/s)", "zinc bench: decode throughput",
         os.path.join(args.out, "decode_throughput.png"), plt)
    plot(series, "roofline_fraction", "weight stream / H2D link", "zinc bench: roofline fraction",
         os.path.join(args.out, "roofline_fraction.png"), plt)
    print(f"wrote {args.out}/decode_throughput.png and {args.out}/roofline_fraction.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
