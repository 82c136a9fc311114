"""The device study: an RKM trained on mnist-5k with few conductance levels and device-to-device spread.

    python -m benchmarks.nonideal --out runs/nonideal --jobs 2     # the study of docs/nonideal.md
    python -m benchmarks.nonideal --grid --out runs/nonideal-grid  # every (L, s) pair instead

Every run trains ``rkm.RKM`` (PCD-1, the demo's inverse temperature 0.2) on the 4500 mnist-5k
training digits, its devices realising conductances in ``--range`` (log-spaced levels by
default), and measures on the 500 test digits

* the held-out reconstruction error (k = 1, ``rkm.training.monitored_error``);
* the quality of ``--samples`` digits generated from random noise (``--gibbs`` Gibbs steps,
  drawn under ``rkm.training.evaluation_rng``): the FID on the shipped classifier's features
  against the test digits (``rkm.evaluation.metrics.fid``) and the entropy in bits of the digits the
  shipped classifier reads in them (``rkm.evaluation.fid.predict``; log2(10) = 3.32 for all ten equally
  often, 0 when every sample is one digit);
* ``model.energy``, the power of every pass of training summed (code units; every run makes
  the same passes, so its ratios are those of the mean power).

The runs are the ideal machine (no non-ideality, for reference), the range alone (a continuum
of conductances in ``--range``, no spread), the levels ``L`` in ``--levels`` without spread and
the spread ``s`` in ``--variability`` without levels (``--grid``: every pair). All runs of a seed start from
the same parameters (the devices draw after the initial parameters). Each run is one process
with one torch thread, ``--jobs`` at a time; its row is appended to ``nonideal.csv`` as soon as it
ends, and rows already there are not run again, so an interrupted study resumes. At the end
``nonideal.png`` plots every measure against each non-ideality (mean and standard deviation over
the seeds, each seed a dot, the ideal machine as a band), and a Markdown table and the rank
correlation of every measure with each non-ideality are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import _study

LEVELS: tuple[int | None, ...] = (2, 4, 8, 16, 64, None)
VARIABILITY: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.5)
COLUMNS = ("kind", "conductance_levels", "variability", "seed", "test_error", "fid", "label_entropy_bits",
           "energy", "train_seconds", "eval_seconds")
MEASURES = (("test_error", "held-out reconstruction error (k=1)"), ("fid", "FID of samples from noise"),
            ("label_entropy_bits", "entropy of the sampled digits (bits)"))


@dataclass(frozen=True)
class Settings:
    """What every run of the study shares."""

    n_hidden: int = 500
    updates: int = 3000
    lr: float = 0.02
    batch_size: int = 64
    model_beta: float = 0.2
    conductance_range: tuple[float, float] = (0.001, 1.0)
    level_spacing: str = "log"
    samples: int = 500
    gibbs: int = 200


@dataclass(frozen=True)
class Point:
    """One configuration: ``kind`` is 'ideal', 'range', 'levels', 'variability' or 'grid'."""

    kind: str
    levels: int | None
    variability: float

    @property
    def levels_label(self) -> str:
        return "none" if self.levels is None else str(self.levels)


def points(levels: tuple[int | None, ...], variability: tuple[float, ...], grid: bool) -> list[Point]:
    """The ideal machine, the range alone (L = none, s = 0), then the levels without spread and the
    spread without levels (or every pair of the grid)."""
    out = [Point("ideal", None, 0.0)]
    if grid:
        return out + [Point("grid", L, s) for L in levels for s in variability]
    out.append(Point("range", None, 0.0))
    out += [Point("levels", L, 0.0) for L in levels if L is not None]
    return out + [Point("variability", None, s) for s in variability if s > 0]


def label_entropy(labels: Any) -> float:
    """Entropy in bits of the frequencies of the labels."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no -0.0 for a single label


def run_one(settings: Settings, point: Point, seed: int) -> dict[str, Any]:
    """Train and evaluate one machine with one torch thread; the row of ``nonideal.csv``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(settings, point, seed)
    finally:
        torch.set_num_threads(threads)


def _run(settings: Settings, point: Point, seed: int) -> dict[str, Any]:
    import torch

    import rkm
    from rkm.evaluation import fid, metrics
    from rkm.io.datasets import load_dataset
    from rkm.training import evaluation_rng, monitored_error

    data = load_dataset("mnist-5k")
    devices: dict[str, Any] = {}
    if point.kind != "ideal":
        devices = dict(conductance_range=settings.conductance_range, conductance_levels=point.levels,
                       level_spacing=settings.level_spacing, variability=point.variability)
    model = rkm.RKM("nonideal", data.n_visible, settings.n_hidden, k=1, lr=settings.lr, batch_size=settings.batch_size,
                    train_algo="PCD", model_beta=settings.model_beta, max_epochs=settings.updates, seed=seed,
                    device="cpu", **devices)
    start = time.perf_counter()
    model.train(torch.tensor(data.train, dtype=torch.float32), save=False)
    trained = time.perf_counter()
    test = torch.tensor(data.test, dtype=torch.float32)
    with evaluation_rng(model):
        samples = model.generate(settings.samples, settings.gibbs)
    row = {
        "kind": point.kind, "conductance_levels": point.levels_label, "variability": point.variability, "seed": seed,
        "test_error": monitored_error(model, test),
        "fid": metrics.fid(data.test, samples),
        "label_entropy_bits": label_entropy(fid.predict(samples)),
        "energy": float(model.energy),
        "train_seconds": round(trained - start, 2),
    }
    row["eval_seconds"] = round(time.perf_counter() - trained, 2)
    return row


def _key(row: dict[str, Any]) -> tuple[str, str, float, int]:
    return str(row["kind"]), str(row["conductance_levels"]), float(row["variability"]), int(row["seed"])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``nonideal.csv``, numbers as floats (seeds as ints)."""
    return _study.read_rows(path, text=("kind", "conductance_levels"))


def run_study(settings: Settings, todo: list[Point], seeds: int, out: Path, jobs: int = 2) -> list[dict[str, Any]]:
    """Run every (point, seed) not yet in ``out/nonideal.csv``, ``jobs`` processes at a time (1: in this
    process); all rows."""
    _study.claim(out, asdict(settings))
    path = out / "nonideal.csv"
    done = {_key(r) for r in read_rows(path)}
    pending = [(settings, p, s) for s in range(seeds) for p in todo
               if (p.kind, p.levels_label, p.variability, s) not in done]
    _record(path, _study.results(run_one, pending, jobs), len(pending))
    return read_rows(path)


def _record(path: Path, finished: Any, total: int) -> None:
    for number, row in enumerate(finished, 1):
        _study.append_row(path, row, COLUMNS)
        print(f"[{number}/{total}] {row['kind']} L={row['conductance_levels']} s={row['variability']} "
              f"seed {row['seed']}: error {row['test_error']:.4f}, FID {row['fid']:.0f}, "
              f"entropy {row['label_entropy_bits']:.2f} bits ({row['train_seconds']:.0f} s + "
              f"{row['eval_seconds']:.0f} s)", flush=True)


def _sd(values: list[float]) -> float:
    """Sample standard deviation (0 for one value)."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over the seeds of every measure, one row per configuration."""
    groups: dict[tuple[str, str, float], list[dict[str, Any]]] = {}
    kinds = ("ideal", "range", "levels", "variability", "grid")
    for row in sorted(rows, key=lambda r: (kinds.index(r["kind"]), r["conductance_levels"] == "none",
                                           int(r["conductance_levels"]) if r["conductance_levels"] != "none" else 0,
                                           float(r["variability"]), int(r["seed"]))):
        groups.setdefault(_key(row)[:3], []).append(row)
    out = []
    for (kind, levels, s), members in groups.items():
        entry: dict[str, Any] = {"kind": kind, "conductance_levels": levels, "variability": s, "seeds": len(members)}
        for name, _ in (*MEASURES, ("energy", ""), ("train_seconds", "")):
            values = [float(m[name]) for m in members]
            entry[name] = statistics.fmean(values)
            entry[name + "_std"] = _sd(values)
        out.append(entry)
    return out


FORMATS = {"test_error": ".4f", "fid": ".0f", "label_entropy_bits": ".2f", "energy": ".3g"}


def _cell(entry: dict[str, Any], name: str) -> str:
    return f"{entry[name]:{FORMATS[name]}} ± {entry[name + '_std']:{FORMATS[name]}}"


def markdown(summary: list[dict[str, Any]]) -> str:
    """The summary as a Markdown table (mean ± standard deviation over the seeds)."""
    lines = ["| runs | L | s | seeds | test error | FID | label entropy (bits) | model.energy (code units) | "
             "training (s) |", "|---|---|---|---|---|---|---|---|---|"]
    for e in summary:
        cells = [_cell(e, name) for name in (*(n for n, _ in MEASURES), "energy")]
        lines.append(f"| {e['kind']} | {e['conductance_levels']} | {e['variability']:g} | {e['seeds']} | "
                     + " | ".join(cells) + f" | {e['train_seconds']:.0f} |")
    return "\n".join(lines)


def levels_order(rows: list[dict[str, Any]]) -> list[str]:
    """The levels of the rows from few to many, 'none' (a continuum) last: the plot's x positions."""
    present = {str(r["conductance_levels"]) for r in rows if r["kind"] != "ideal"}
    return sorted((L for L in present if L != "none"), key=int) + (["none"] if "none" in present else [])


def trends(rows: list[dict[str, Any]]) -> list[str]:
    """Spearman's rank correlation of every measure with the levels (few to many, none last) and with the
    spread, over all runs of each sweep (the range-only runs are the end points of both)."""
    from scipy import stats

    order = levels_order(rows)
    sweeps = (("levels", lambda r: order.index(str(r["conductance_levels"]))), ("variability",
                                                                                lambda r: float(r["variability"])))
    out = []
    for kind, x_of in sweeps:
        runs = [r for r in rows if r["kind"] in ("range", kind)]
        if len({x_of(r) for r in runs}) < 2:
            continue
        for name in (*(n for n, _ in MEASURES), "energy"):
            rho, p = stats.spearmanr([x_of(r) for r in runs], [float(r[name]) for r in runs])
            out.append(f"{name} against {kind}: Spearman rho {rho:+.2f}, p = {p:.2g} ({len(runs)} runs)")
    return out


def _lines(rows: list[dict[str, Any]], by_levels: bool) -> list[tuple[str, dict[float, list[dict[str, Any]]]]]:
    """The lines of one column of the plot: ``(label, {x: rows})``, x the levels' position or the spread.

    The sweeps give one line (the levels at s = 0, or the spread without levels); a grid one
    line per value of the other non-ideality.
    """
    order = levels_order(rows)

    def x_of(row: dict[str, Any]) -> float:
        return float(order.index(str(row["conductance_levels"]))) if by_levels else float(row["variability"])

    grid = [r for r in rows if r["kind"] == "grid"]
    if not grid:
        kinds = ("range", "levels" if by_levels else "variability")
        groups = {"": [r for r in rows if r["kind"] in kinds]}
    else:
        groups = {}
        for r in grid:
            label = f"s = {r['variability']:g}" if by_levels else f"L = {r['conductance_levels']}"
            groups.setdefault(label, []).append(r)
    out = []
    for label, members in groups.items():
        series: dict[float, list[dict[str, Any]]] = {}
        for r in members:
            series.setdefault(x_of(r), []).append(r)
        out.append((label, series))
    return out


def plot(rows: list[dict[str, Any]], path: Path, settings: Settings) -> Path:
    """Every measure against the levels and against the spread, the ideal machine as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ideal = [r for r in rows if r["kind"] == "ideal"]
    grid = any(r["kind"] == "grid" for r in rows)
    labels = ("conductance levels L" + ("" if grid else " (s = 0)"), "device spread s" + ("" if grid else
                                                                                          " (no levels)"))
    fig, axes = plt.subplots(len(MEASURES), 2, figsize=(10, 3.0 * len(MEASURES)), squeeze=False)
    for col, by_levels in enumerate((True, False)):
        for row_index, (name, title) in enumerate(MEASURES):
            ax = axes[row_index][col]
            if ideal:
                values = [float(r[name]) for r in ideal]
                mean, std = statistics.fmean(values), _sd(values)
                ax.axhspan(mean - std, mean + std, color="0.85", label="ideal devices (mean ± sd)")
                ax.axhline(mean, color="0.5", lw=1)
            for label, series in _lines(rows, by_levels):
                xs = sorted(series)
                values_at = [[float(r[name]) for r in series[x]] for x in xs]
                line = ax.errorbar(xs, [statistics.fmean(v) for v in values_at],
                                   yerr=[_sd(v) for v in values_at], marker="o", capsize=3,
                                   label=label or "mean ± sd over seeds")
                for x, v in zip(xs, values_at):
                    ax.plot([x] * len(v), v, ".", color=line[0].get_color(), alpha=0.4)
            if by_levels:
                ax.set_xticks(range(len(levels_order(rows))), levels_order(rows))
            ax.set_xlabel(labels[col])
            ax.set_ylabel(title)
            if row_index == 0:
                ax.legend(fontsize=7)
    low, high = settings.conductance_range
    fig.suptitle(f"RKM on mnist-5k, {settings.n_hidden} hidden units, {settings.updates} updates; conductances in "
                 f"[{low:g}, {high:g}], {settings.level_spacing}-spaced levels", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _levels(text: str) -> tuple[int | None, ...]:
    return tuple(None if part.strip().lower() == "none" else int(part) for part in text.split(","))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(part) for part in text.split(","))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Settings()
    parser.add_argument("--out", type=Path, default=Path("runs/nonideal"), help="folder of nonideal.csv and .png")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--levels", type=_levels, default=LEVELS, help="levels, 'none' for a continuum")
    parser.add_argument("--variability", type=_floats, default=VARIABILITY, help="spreads s")
    parser.add_argument("--grid", action="store_true", help="every (L, s) pair instead of the two sweeps")
    parser.add_argument("--n-hidden", type=int, default=d.n_hidden)
    parser.add_argument("--updates", type=int, default=d.updates)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--range", type=_floats, default=d.conductance_range, help="g_min,g_max")
    parser.add_argument("--spacing", default=d.level_spacing, choices=("linear", "log"))
    parser.add_argument("--samples", type=int, default=d.samples, help="samples generated from noise")
    parser.add_argument("--gibbs", type=int, default=d.gibbs, help="Gibbs steps of the samples")
    args = parser.parse_args(argv)
    low, high = args.range
    settings = Settings(n_hidden=args.n_hidden, updates=args.updates, lr=args.lr, conductance_range=(low, high),
                        level_spacing=args.spacing, samples=args.samples, gibbs=args.gibbs)
    print(f"settings: {asdict(settings)}", flush=True)
    start = time.perf_counter()
    rows = run_study(settings, points(args.levels, args.variability, args.grid), args.seeds, args.out, args.jobs)
    plot(rows, args.out / "nonideal.png", settings)
    print(markdown(summarise(rows)))
    print("\n".join(trends(rows)))
    print(f"{len(rows)} rows in {args.out / 'nonideal.csv'}; this call took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
