"""Training protocols that generate the data from noise: sample quality against training time and energy.

    python -m benchmarks.quality --list                                  # the protocols
    python -m benchmarks.quality --protocols rdm20-h500,pcd-c1000 --seeds 1 --jobs 2
    python -m benchmarks.quality --protocols rdm20-h500 --seeds 5 --jobs 2

Every protocol of :data:`PROTOCOLS` is a set of ``rkm train --set TABLE.KEY=VALUE`` overrides of
:data:`BASE` (the demo preset of 2026-11) on mnist-5k (4500 training digits, 500 held out) with a
nominal time budget. Each
(protocol, seed) is one run folder ``OUT/PROTOCOL_sSEED``, trained by ``python -m rkm train`` with one
torch thread (``OMP_NUM_THREADS=1``), ``--jobs`` processes at a time; runs whose ``summary.json``
exists are kept and evaluations already written (``quality.json`` in the run folder) are not redone,
so an interrupted study resumes. The final model of every run is then evaluated in its own process:

* 500 digits generated from random binary noise by the protocol's ``generate_k`` Gibbs steps, drawn
  under ``rkm.training.evaluation_rng`` (a generator seeded by the run's seed and update, not the
  training stream; the same draw as the run's own summary);
* their ``rkm.evaluation.metrics.label_quality`` (label entropy in nats, classes with >= 4% of the samples,
  rarest class) and ``rkm.evaluation.metrics.fid`` against the held-out test digits (shipped classifier);
* the held-out reconstruction error (k = 1, as ``test_reconstruction_error_k1`` of the summary);
* training wall time, updates per second and dissipated energy (``energy_j``) from ``summary.json``.

One row per run goes to ``--csv`` (docs/quality.csv), the plot (label entropy, FID and reconstruction
error against training time and against energy, one marker per run, one colour per protocol) to
``--png`` (docs/quality.png), and a table of per-protocol medians and ranges is printed (Markdown).
Wall times depend on the load of the machine; ``updates_per_s`` records the rate each run got.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASE: dict[str, Any] = {
    "model.n_hidden": 1000, "model.k": 1, "model.lr": 0.01, "model.max_epochs": 20000, "model.batch_size": 64,
    "model.train_algo": "PCD", "model.model_beta": 0.2, "model.optimizer": "SGD", "data.dataset": "mnist-5k",
    "run.name": "demo", "run.log_every": 500, "run.generate_k": 1000, "run.lr_final": 0.001, "run.anneal_start": 0.7,
}
"""What every protocol changes: the demo preset of 2026-11 (PCD-1, 1000 hidden), spelled out so that
the protocols do not move when ``PRESETS['demo']`` does."""


@dataclass(frozen=True)
class Protocol:
    """One candidate: ``rkm train`` with :data:`BASE` and then ``overrides``, meant to train in ``budget_s``."""

    name: str
    budget_s: int
    about: str
    overrides: dict[str, Any] = field(default_factory=dict)



def _rdm(k: int, n_hidden: int, updates: int, lr: float, lr_final: float, algo: str = "RDM",
         **extra: Any) -> dict[str, Any]:
    return {"model.train_algo": algo, "model.k": k, "model.n_hidden": n_hidden, "model.max_epochs": updates,
            "model.lr": lr, "run.lr_final": lr_final, "run.generate_k": k, **extra}


PROTOCOLS: tuple[Protocol, ...] = (
    Protocol("demo", 420, "the demo preset of 2026-11 (BASE: PCD-1, 1000 hidden, 64 chains, 20000 updates)"),
    Protocol("rdm20-h500", 240, "RDM k=20 from noise, 500 hidden, 3000 updates, lr 0.02 -> 0.002",
             _rdm(20, 500, 3000, 0.02, 0.002)),
    Protocol("vrdm50-h200", 240, "vRDM k=50 from noise, 200 hidden, 2500 updates, lr 0.02 -> 0.002",
             _rdm(50, 200, 2500, 0.02, 0.002, algo="vRDM")),
    Protocol("rdm10-h500-adam", 240, "RDM k=10 from noise, 500 hidden, Adam lr 0.001 -> 0.0001, 4000 updates",
             _rdm(10, 500, 4000, 0.001, 0.0001, **{"model.optimizer": "Adam"})),
    Protocol("pcd-c1000-cent", 240, "PCD-1, 500 hidden, 1000 chains, centering, lr 0.01 -> 0.001, 3000 updates",
             {"model.n_hidden": 500, "model.n_chains": 1000, "model.centering": True, "model.max_epochs": 3000}),
    Protocol("rdm20-h500-cent", 240, "RDM k=20 from noise, 500 hidden, centering, 3000 updates, lr 0.02 -> 0.002",
             _rdm(20, 500, 3000, 0.02, 0.002, **{"model.centering": True})),
    Protocol("rdm20-h500-cent-4k", 420, "rdm20-h500-cent with 4000 updates",
             _rdm(20, 500, 4000, 0.02, 0.002, **{"model.centering": True})),
    Protocol("rdm20-h500-cent-12k", 1800, "rdm20-h500-cent with 12000 updates",
             _rdm(20, 500, 12000, 0.02, 0.002, **{"model.centering": True})),
    Protocol("rdm20-h1000-cent-6k", 1800, "T1: RDM k=20 from noise, 1000 hidden, centering, 6000 updates, "
             "lr 0.02 -> 0.002", _rdm(20, 1000, 6000, 0.02, 0.002, **{"model.centering": True})),
    Protocol("rdm20-h1000-cent-4k", 900, "the demo (T2): rdm20-h1000-cent-6k with 4000 updates",
             _rdm(20, 1000, 4000, 0.02, 0.002, **{"model.centering": True})),
    Protocol("pt4-h500-cent", 600, "PT: 4 rungs from 0.5 model_beta, 256 chains, k=1, 500 hidden, centering, "
             "3000 updates, lr 0.01 -> 0.001",
             {"model.train_algo": "PT", "model.n_temperatures": 4, "model.pt_beta_ratio": 0.5, "model.n_chains": 256,
              "model.n_hidden": 500, "model.centering": True, "model.max_epochs": 3000}),
    Protocol("rdm10-h500-adam-cent", 240, "RDM k=10 from noise, 500 hidden, centering, Adam lr 0.001 -> 0.0001, "
             "4000 updates",
             _rdm(10, 500, 4000, 0.001, 0.0001, **{"model.optimizer": "Adam", "model.centering": True})),
)
"""The candidates, by name (``--protocols``)."""

COLUMNS = ("protocol", "seed", "label_entropy", "classes_covered", "min_class_fraction", "fid",
           "test_reconstruction_error_k1", "generate_k", "updates", "train_seconds", "updates_per_s", "energy_j",
           "eval_seconds")
N_SAMPLES = 500


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")


def command(protocol: Protocol, seed: int, run: Path) -> list[str]:
    """The ``rkm train`` command line of one run."""
    cmd = [sys.executable, "-m", "rkm", "train", "--seed", str(seed), "--run-dir", str(run), "--no-progress"]
    for key, value in {**BASE, **protocol.overrides}.items():
        cmd += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    return cmd


def train(out: Path, protocol: Protocol, seed: int) -> Path:
    """Train one run unless its ``summary.json`` exists; its folder."""
    run = out / f"{protocol.name}_s{seed}"
    if not (run / "summary.json").is_file():
        if run.exists():
            import shutil

            shutil.rmtree(run)
        with open(out / f"{protocol.name}_s{seed}.log", "w") as log:
            subprocess.run(command(protocol, seed, run), env=_env(), stdout=log, stderr=subprocess.STDOUT, check=True)
    return run


def evaluate(run: str | os.PathLike) -> dict[str, Any]:
    """Quality of the final model of ``run`` (see the module docstring); written to ``run/quality.json``."""
    import time

    import torch

    from rkm.app.run import load_run
    from rkm.evaluation import metrics
    from rkm.training import evaluation_rng, monitored_error

    torch.set_num_threads(1)
    run = Path(run)
    start = time.perf_counter()
    config, dataset, model = load_run(run)
    k = config["run"]["generate_k"]
    with evaluation_rng(model):
        samples = model.generate(N_SAMPLES, k)
    test = torch.as_tensor(dataset.test, dtype=model.mytype)
    summary = json.loads((run / "summary.json").read_text())
    row: dict[str, Any] = {
        **metrics.label_quality(samples),
        "fid": metrics.fid(dataset.test, samples),
        "test_reconstruction_error_k1": monitored_error(model, test),
        "generate_k": k,
        "updates": summary["updates"],
        "train_seconds": summary["train_seconds"],
        "updates_per_s": round(summary["updates"] / summary["train_seconds"], 2),
        "energy_j": summary["energy_j"],
    }
    row["eval_seconds"] = round(time.perf_counter() - start, 2)
    (run / "quality.json").write_text(json.dumps(row, indent=1))
    return row


def resample(run: str | os.PathLike, steps: list[int]) -> list[tuple[int, float, float, float]]:
    """Label entropy, rarest class and FID of 500 samples of ``run``'s final model from noise after each
    number of Gibbs ``steps`` (every draw under ``evaluation_rng``, as :func:`evaluate`)."""
    import torch

    from rkm.app.run import load_run
    from rkm.evaluation import metrics
    from rkm.training import evaluation_rng

    torch.set_num_threads(1)
    _, dataset, model = load_run(run)
    out = []
    for k in steps:
        with evaluation_rng(model):
            samples = model.generate(N_SAMPLES, k)
        q = metrics.label_quality(samples)
        out.append((k, q["label_entropy"], q["min_class_fraction"], metrics.fid(dataset.test, samples)))
    return out


def _evaluate(run: Path) -> dict[str, Any]:
    if not (run / "quality.json").is_file():
        code = f"from benchmarks.quality import evaluate; evaluate({str(run)!r})"
        subprocess.run([sys.executable, "-c", code], env=_env(), check=True, cwd=Path(__file__).resolve().parents[1])
    return json.loads((run / "quality.json").read_text())


def run_one(out: Path, protocol: Protocol, seed: int) -> dict[str, Any]:
    """Train (if needed) and evaluate (if needed) one run; its row of the table."""
    row = {"protocol": protocol.name, "seed": seed, **_evaluate(train(out, protocol, seed))}
    print(f"{protocol.name} seed {seed}: entropy {row['label_entropy']:.2f} nats, rarest class "
          f"{row['min_class_fraction']:.1%}, FID {row['fid']:.0f}, reconstruction "
          f"{row['test_reconstruction_error_k1']:.4f} ({row['train_seconds']:.0f} s, {row['updates_per_s']:.1f} "
          "updates/s)", flush=True)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row[c] for c in COLUMNS})


MEASURES = (("label_entropy", "label entropy (nats)", ".2f"), ("min_class_fraction", "rarest class", ".3f"),
            ("fid", "FID", ".0f"), ("test_reconstruction_error_k1", "reconstruction error", ".4f"),
            ("train_seconds", "training (s)", ".0f"), ("updates_per_s", "updates/s", ".1f"),
            ("energy_j", "energy (J)", ".3g"))


def table(rows: list[dict[str, Any]]) -> str:
    """Per-protocol median (range) over the seeds, as Markdown."""
    lines = ["| protocol | seeds | " + " | ".join(label for _, label, _ in MEASURES) + " |",
             "|---|---|" + "---|" * len(MEASURES)]
    names = [p.name for p in PROTOCOLS if any(r["protocol"] == p.name for r in rows)]
    for name in names:
        members = [r for r in rows if r["protocol"] == name]
        cells = []
        for key, _, fmt in MEASURES:
            values = [float(r[key]) for r in members]
            cell = f"{statistics.median(values):{fmt}}"
            cells.append(cell if len(values) == 1 else f"{cell} ({min(values):{fmt}} to {max(values):{fmt}})")
        lines.append(f"| {name} | {len(members)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(path: Path, rows: list[dict[str, Any]]) -> None:
    """Label entropy, FID and reconstruction error against training time and energy, one marker per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [p.name for p in PROTOCOLS if any(r["protocol"] == p.name for r in rows)]
    markers = "os^vD<>phX*"
    fig, axes = plt.subplots(3, 2, figsize=(11, 11), sharex="col")
    targets = {"label_entropy": 2.2, "fid": 60, "test_reconstruction_error_k1": 0.030}
    for j, (xkey, xlabel) in enumerate((("train_seconds", "training wall time (s, one thread)"),
                                        ("energy_j", "energy dissipated in training (J)"))):
        for i, (ykey, ylabel) in enumerate((("label_entropy", "label entropy from noise (nats)"),
                                            ("fid", "FID from noise vs held-out digits"),
                                            ("test_reconstruction_error_k1", "held-out reconstruction error"))):
            ax = axes[i, j]
            for n, name in enumerate(names):
                members = [r for r in rows if r["protocol"] == name]
                ax.scatter([float(r[xkey]) for r in members], [float(r[ykey]) for r in members],
                           marker=markers[n % len(markers)], label=name, alpha=0.8)
            ax.axhline(targets[ykey], color="grey", ls="--", lw=1)
            if ykey == "fid":
                ax.set_yscale("log")
            ax.set_xscale("log")
            ax.set_ylabel(ylabel)
            if i == 2:
                ax.set_xlabel(xlabel)
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("mnist-5k: 500 digits from noise (dashed: the T1 targets)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def read_all(out: Path) -> list[dict[str, Any]]:
    """Rows of every evaluated run under ``out`` whose protocol is in the table."""
    known = {p.name for p in PROTOCOLS}
    rows = []
    for q in sorted(out.glob("*_s*/quality.json")):
        name, _, seed = q.parent.name.rpartition("_s")
        if name in known:
            rows.append({"protocol": name, "seed": int(seed), **json.loads(q.read_text())})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--protocols", default=",".join(x.name for x in PROTOCOLS),
                   help="comma-separated protocol names (default: all; see --list)")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds FIRST .. FIRST+N-1 (default 0)")
    p.add_argument("--jobs", type=int, default=2, help="processes at a time (default 2)")
    p.add_argument("--out", type=Path, default=Path("runs/quality"), help="run folders (default runs/quality)")
    p.add_argument("--csv", type=Path, default=Path("docs/quality.csv"))
    p.add_argument("--png", type=Path, default=Path("docs/quality.png"))
    p.add_argument("--list", action="store_true", help="print the protocols and their commands, then exit")
    p.add_argument("--report", action="store_true", help="train nothing: table, CSV and plot of the runs in --out")
    p.add_argument("--resample", type=Path, metavar="RUN",
                   help="train nothing: sample the final model of run folder RUN after each of --steps from noise")
    p.add_argument("--steps", default="10,20,40,100,1000",
                   help="Gibbs steps for --resample (default 10,20,40,100,1000)")
    a = p.parse_args(argv)
    if a.resample is not None:
        print("| steps | label entropy (nats) | rarest class | FID |\n|---|---|---|---|")
        for k, entropy, rarest, fid in resample(a.resample, [int(x) for x in a.steps.split(",")]):
            print(f"| {k} | {entropy:.2f} | {rarest:.3f} | {fid:.0f} |")
        return 0
    by_name = {x.name: x for x in PROTOCOLS}
    chosen = [x.strip() for x in a.protocols.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in by_name]
    if unknown or a.seeds < 1 or a.jobs < 1 or a.first_seed < 0:
        p.error(f"unknown protocol(s) {unknown} (see --list)" if unknown
                else "--seeds and --jobs must be >= 1, --first-seed >= 0")
    if a.list:
        for name in chosen:
            x = by_name[name]
            print(f"{name} ({x.budget_s} s): {x.about}\n  {' '.join(command(x, 0, a.out / (name + '_s0'))[1:])}")
        return 0
    if not a.report:
        a.out.mkdir(parents=True, exist_ok=True)
        tasks = [(by_name[name], seed) for seed in range(a.first_seed, a.first_seed + a.seeds) for name in chosen]
        with ThreadPoolExecutor(a.jobs) as pool:
            list(pool.map(lambda t: run_one(a.out, *t), tasks))
    rows = read_all(a.out)
    if not rows:
        p.error(f"no evaluated runs in {a.out}")
    write_csv(a.csv, rows)
    plot(a.png, rows)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
