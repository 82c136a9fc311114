"""Throughput vs n_hidden from the benchmark CSV, one column of panels per batch size.

    python -m benchmarks.plot                                  # benchmarks/results/train_step.csv -> .png
    python -m benchmarks.plot --csv DIR/train_step.csv --out DIR/train_step.png

Top row: useful GFLOP/s (2(2k+1)·B·Nv·Nh per update / time) with the same-shape torch.mm
rate as a dotted black line; bottom row: updates per second. Colour: library; solid
k=1, dashed k=10 (other k: dash-dot); each line is the median over the training
algorithms measured, the faint markers the algorithms themselves. Both axes are
logarithmic (pyrkm is one to two orders of magnitude below rkm).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

DEFAULT_CSV = Path(__file__).resolve().parent / "results" / "train_step.csv"
COLORS = {"rkm": "tab:blue", "rkm-noacct": "tab:cyan", "pyrkm": "tab:red", "sklearn": "tab:green",
          "sklearn-fit32": "tab:olive"}
MARKERS = {"CD": "o", "PCD": "s", "vRDM": "^"}


def _read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("status") == "ok" and r.get("ms_median")]
    for r in rows:
        for name in ("n_hidden", "batch", "k"):
            r[name] = int(r[name])
        for name in ("gflops", "updates_per_s", "gemm_gflops"):
            r[name] = float(r[name]) if r.get(name) else None
    return rows


def plot(csv_path: Path, out_path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    rows = _read(Path(csv_path))
    if not rows:
        raise SystemExit(f"{csv_path}: no measured rows to plot")
    batches = sorted({r["batch"] for r in rows})
    fig, axes = plt.subplots(2, len(batches), figsize=(max(6.5 * len(batches), 8.0), 8.5), squeeze=False, sharex=True)
    for col, B in enumerate(batches):
        sub = [r for r in rows if r["batch"] == B]
        for row, (metric, label) in enumerate((("gflops", "useful GFLOP/s"), ("updates_per_s", "updates / s"))):
            ax = axes[row][col]
            groups = defaultdict(list)
            for r in sub:
                groups[(r["lib"], r["k"])].append(r)
            for (lib, k), rs in sorted(groups.items(), key=lambda t: (list(COLORS).index(t[0][0]) if t[0][0] in COLORS else 99, t[0][1])):
                color = COLORS.get(lib, "gray")
                style = {1: "-", 10: "--"}.get(k, "-.")
                xs = sorted({r["n_hidden"] for r in rs})
                ys = [float(np.median([r[metric] for r in rs if r["n_hidden"] == x])) for x in xs]
                ax.plot(xs, ys, style, color=color, label=f"{lib}, k={k}", lw=1.8)
                for r in rs:
                    ax.plot(r["n_hidden"], r[metric], MARKERS.get(r["algo"], "x"), color=color, alpha=0.35, ms=4)
            if metric == "gflops":
                gemm = sorted({(r["n_hidden"], r["gemm_gflops"]) for r in sub if r["gemm_gflops"]})
                if gemm:
                    ax.plot([g[0] for g in gemm], [g[1] for g in gemm], ":", color="black", lw=1.5,
                            label=f"torch.mm ({B}x784)@(784xNh)")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"batch {B}: {label}")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
            if row == 1:
                ax.set_xlabel("n_hidden (n_visible = 784)")
            xt = sorted({r["n_hidden"] for r in sub})
            ax.set_xticks(xt)
            ax.set_xticklabels([str(x) for x in xt])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    algos = sorted({r["algo"] for r in rows})
    for a in algos:
        handles.append(plt.Line2D([], [], ls="", marker=MARKERS.get(a, "x"), color="gray", alpha=0.6))
        labels.append(f"{a} (markers)")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3 * len(batches)), fontsize=8, frameon=False)
    fig.suptitle("Training-update throughput vs n_hidden (float32, CPU)")
    fig.tight_layout(rect=(0, 0.11 if len(batches) == 1 else 0.08, 1, 0.97))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=120)
    plt.close(fig)
    return out_path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.plot", description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", type=Path, default=DEFAULT_CSV, help="benchmark CSV (default benchmarks/results/train_step.csv)")
    p.add_argument("--out", type=Path, help="PNG to write (default: train_step.png beside the CSV)")
    a = p.parse_args(argv)
    out = plot(a.csv, a.out or a.csv.with_suffix(".png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
