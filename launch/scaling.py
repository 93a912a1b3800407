#!/usr/bin/env python3
"""The scaling-study driver: `zinc bench` over GPU counts x batch sizes, strong scaling (a
fixed total batch split over the GPUs) and weak scaling (a fixed batch per GPU), under
mpirun or srun; rank 0's JSON rows are collected into one CSV with the roofline model of
docs/DESIGN.md section 7 for N ranks printed beside each point, and plotted (PNG, where the
system python has matplotlib: Debian python3-matplotlib).

usage: scaling.py --zinc BIN --out DIR [--counts 1,2,4,8] [--strong 128] [--weak 32]
                  [--launcher mpirun|srun] [--allgather-gbs N=GBS,...] [-- BENCH_ARGS...]
  e.g. scaling.py --zinc build/runtime/zinc --out runs/scale --counts 1,2,4 --strong 128 \\
         --weak 64 -- --model dummy:llama-2-70b --quant nf4 --gpu-memory-budget 48GiB
writes DIR/scaling.csv, DIR/N-MODE-BATCH.json (each run's bench JSON), DIR/*.png

Model per point (per rank; W = packed bytes gathered per decode step, from the run):
  weights H2D  W / N / B_h2d   (B_h2d: the link the run measured at start, one GPU alone;
                                N GPUs copying at once get less each: DESIGN.md's table)
  all-gather   W (N-1) / N / B_ag   (B_ag: --allgather-gbs, default the NCCL busbw that
                                DESIGN.md gives for 2 and 4 H200s: 268 and 324 GB/s)
  bound        the larger, and model tok/s = total batch / bound
"""
import argparse
import csv
import json
import os
import subprocess
import sys

DEFAULT_AG = {2: 268.0, 4: 324.0, 8: 324.0}  # GB/s, DESIGN.md section 7 (8: assumed as 4)
STAGES = ("copy_s", "gather_s", "dequantize_s", "wait_s")


def parse_counts(text):
    try:
        counts = [int(c) for c in text.split(",")]
    except ValueError:
        sys.exit(f"scaling.py: --counts '{text}': expected integers like 1,2,4")
    if not counts or min(counts) < 1:
        sys.exit("scaling.py: --counts must be positive")
    return counts


def parse_ag(text):
    out = dict(DEFAULT_AG)
    for item in filter(None, (text or "").split(",")):
        n, _, gbs = item.partition("=")
        try:
            out[int(n)] = float(gbs)
        except ValueError:
            sys.exit(f"scaling.py: --allgather-gbs '{item}': expected N=GBS")
    return out


def run_bench(args, n, batch_per_rank, json_path):
    launch = ["mpirun", "-np", str(n)] if args.launcher == "mpirun" else ["srun", "--mpi=pmix", "-n", str(n)]
    cmd = launch + [args.zinc, "bench", "--batch-size", str(batch_per_rank), "--json", json_path, "--quiet"] + args.bench
    print("$ " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit(f"scaling.py: the run at {n} GPUs, batch {batch_per_rank} per GPU failed ({done.returncode}):\n"
                 + done.stdout)
    with open(json_path) as f:
        return json.load(f)


def model_point(header, row, n, ag):
    w = float(row["stream_bytes_per_step"])
    h2d = float(header.get("h2d_gbs", 0)) * 1e9
    t_h2d = w / n / h2d if h2d > 0 and w > 0 else 0.0
    t_ag = w * (n - 1) / n / (ag.get(n, ag[max(ag)]) * 1e9) if n > 1 and w > 0 else 0.0
    bound = max(t_h2d, t_ag)
    return t_h2d, t_ag, bound, (float(row["batch"]) / bound if bound > 0 else 0.0)


def plot(rows, out, plt):
    for mode in ("strong", "weak"):
        part = [r for r in rows if r["mode"] == mode]
        if not part:
            continue
        panels = [("decode_tok_s", "decode tok/s"), ("per_gpu_efficiency", "per-GPU efficiency vs 1 GPU"),
                  ("roofline_fraction", "roofline fraction (weight stream / link)")]
        for key, label in panels:
            fig, ax = plt.subplots(figsize=(6.5, 4.2))
            for batch in sorted({r["batch_label"] for r in part}):
                pts = sorted((r for r in part if r["batch_label"] == batch), key=lambda r: r["gpus"])
                ax.plot([r["gpus"] for r in pts], [r[key] for r in pts], marker="o", label=batch)
                if key == "decode_tok_s":
                    ax.plot([r["gpus"] for r in pts], [r["model_tok_s"] for r in pts], ls="--", alpha=0.6,
                            label=batch + " (model)")
            ax.set_xlabel("GPUs")
            ax.set_ylabel(label)
            ax.set_title(f"{mode} scaling")
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
            fig.tight_layout()
            fig.savefig(os.path.join(out, f"{mode}_{key}.png"), dpi=120)
            plt.close(fig)
        fig, ax = plt.subplots(figsize=(6.5, 4.2))  # stage breakdown: busy seconds per decode step
        labels = [f"{r['gpus']} GPU, {r['batch_label']}" for r in part]
        bottom = [0.0] * len(part)
        for st in STAGES:
            vals = [r[st + "_per_step_ms"] for r in part]
            ax.bar(labels, vals, bottom=bottom, label=st[:-2])
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_ylabel("ms per decode step (rank 0)")
        ax.set_title(f"{mode} scaling: stage breakdown")
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out, f"{mode}_stages.png"), dpi=120)
        plt.close(fig)


def main():
    argv = sys.argv[1:]
    bench = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--zinc", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--counts", default="1,2,4,8")
    p.add_argument("--strong", default="", help="total batch sizes, comma-separated")
    p.add_argument("--weak", default="", help="batch sizes per GPU, comma-separated")
    p.add_argument("--launcher", choices=("mpirun", "srun"), default="mpirun")
    p.add_argument("--allgather-gbs", default="")
    args = p.parse_args(argv)
    args.bench = bench
    counts, ag = parse_counts(args.counts), parse_ag(args.allgather_gbs)
    strong = [int(b) for b in args.strong.split(",") if b]
    weak = [int(b) for b in args.weak.split(",") if b]
    if not strong and not weak:
        sys.exit("scaling.py: give --strong TOTAL_BATCHES and/or --weak BATCHES_PER_GPU")
    os.makedirs(args.out, exist_ok=True)
    points = [("strong", n, b, b // n) for b in strong for n in counts if b % n == 0]
    points += [("weak", n, b * n, b) for b in weak for n in counts]
    rows, base = [], {}
    for mode, n, total, per in points:
        j = run_bench(args, n, per, os.path.join(args.out, f"{n}-{mode}-{total}.json"))
        (row,) = j["rows"]
        t_h2d, t_ag, bound, model = model_point(j["header"], row, n, ag)
        steps = max(float(row["decode_tokens"]) / max(float(row["batch"]), 1), 1)
        label = f"batch {total}" if mode == "strong" else f"{per}/GPU"
        r = {"mode": mode, "gpus": n, "batch": total, "batch_per_gpu": per, "batch_label": label,
             "decode_tok_s": float(row["decode_tok_s"]), "tok_s_per_gpu": float(row["decode_tok_s"]) / n,
             "step_ms": float(row["decode_step_ms"]), "roofline_fraction": float(row["roofline_fraction"]),
             "stream_bytes_per_step": float(row["stream_bytes_per_step"]), "h2d_gbs": j["header"]["h2d_gbs"],
             "model_h2d_ms": t_h2d * 1e3, "model_allgather_ms": t_ag * 1e3, "model_bound_ms": bound * 1e3,
             "model_tok_s": model}
        for st in STAGES:
            r[st + "_per_step_ms"] = float(row[st]) / steps * 1e3
        if n == min(counts):
            base[(mode, label)] = r["tok_s_per_gpu"]
        b0 = base.get((mode, label))
        r["per_gpu_efficiency"] = r["tok_s_per_gpu"] / b0 if b0 else 0.0
        rows.append(r)
        print(f"  {mode:6} {n} GPU  batch {total:5} ({per}/GPU): {r['decode_tok_s']:10.1f} tok/s, "
              f"step {r['step_ms']:.2f} ms; model: H2D {t_h2d * 1e3:.2f} ms, all-gather {t_ag * 1e3:.2f} ms "
              f"-> {model:.1f} tok/s; per-GPU efficiency {r['per_gpu_efficiency']:.3f}", flush=True)
    path = os.path.join(args.out, "scaling.csv")
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {path}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("scaling.py: no matplotlib (Debian: apt install python3-matplotlib): no plots")
        return
    plot(rows, args.out, plt)
    print(f"plots in {args.out}")


if __name__ == "__main__":
    main()
