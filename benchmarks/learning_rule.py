"""The learning-rule study: SGD, the local rule and pulse programming, on bars-and-stripes and mnist-5k.

    python -m benchmarks.learning_rule --out runs/learning-rule --jobs 2     # the study of docs/learning-rule.md

Every run trains ``rkm.RKM`` with one torch thread and is measured when it ends:

* **bars** (4x4 bars and stripes, the 30 patterns): the exact ``KL(data || stationary law)`` of the
  trained machine in nats (``rkm.evaluation.exact.kl_divergence``; a uniform model scores
  log(65536 / 30) = 7.69);
* **mnist** (the 4500 mnist-5k training digits, the 500 test digits): the held-out reconstruction
  error (k = 1, ``rkm.training.monitored_error``), and ``--samples`` digits generated from noise in
  the trained number of Gibbs steps k (under ``rkm.training.evaluation_rng``): their FID against the
  test digits (``rkm.evaluation.metrics.fid``) and the entropy of the digits the shipped classifier
  reads in them (``rkm.evaluation.metrics.label_quality``, nats; log 10 = 2.30 for every digit
  equally often);

and on both: the programming pulses per device and update (over all of training, and over its last
tenth, where a rule that has stopped sends none), the energy of an update's passes and its duration
on twin networks in ``rkm.core.units``' default units (``model.si()``; the learning step's own
time and energy per comparison and per pulse are 0 there, so an energy per pulse ``E`` adds
``E x pulses`` per update).

The configurations: ``sgd`` (the algorithmic rule, SGD), ``local`` (the local rule, SGD: the same
step up to rounding), ``local-levels`` and ``sgd-levels`` (comparators whose output voltages are
``--output-levels`` instead of 0 and 1, the two rules), and ``pulse-L<L>-dz<d>`` (the local rule,
one pulse per device and update, ``L`` log-spaced conductance levels in ``--range``, dead zone
``d``); bars sweeps the dead zone further than mnist. A seed gives every configuration the same
initial parameters and batches. Each run is one process (``--jobs`` at a time); its row is
appended to ``learning_rule.csv`` as soon as it ends and rows already there are not run again, so
an interrupted study resumes. At the end ``learning_rule.png`` and a Markdown table are written.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import _study

COLUMNS = ("dataset", "config", "seed", "exact_kl", "test_error", "fid", "label_entropy",
           "pulses_per_device", "pulses_per_device_last", "energy_per_update_j", "time_per_update_s",
           "train_seconds", "eval_seconds")
LEVELS = (8, 32, 128)


@dataclass(frozen=True)
class Data:
    """How one dataset's runs train."""

    n_hidden: int
    updates: int
    lr: float
    batch_size: int
    k: int
    train_algo: str
    model_beta: float
    n_chains: int | None = None
    centering: bool = False
    dead_zones: tuple[float, ...] = (0.0, 0.05)
    conductance_range: tuple[float, float] = (0.001, 1.0)


@dataclass(frozen=True)
class Settings:
    """What every run of the study shares."""

    bars: Data = Data(n_hidden=10, updates=5000, lr=0.05, batch_size=16, k=3, train_algo="PCD", model_beta=3.0,
                      n_chains=64, dead_zones=(0.0, 0.1, 0.3), conductance_range=(0.01, 10.0))
    mnist: Data = Data(n_hidden=200, updates=600, lr=0.02, batch_size=64, k=5, train_algo="RDM", model_beta=0.2,
                       centering=True, dead_zones=(0.0, 0.1), conductance_range=(0.001, 1.0))
    output_levels: tuple[float, float] = (0.1, 0.9)
    samples: int = 500
    datasets: tuple[str, ...] = ("bars", "mnist")


def configs(data: Data) -> dict[str, dict[str, Any]]:
    """The configurations of one dataset: their names and model settings."""
    out: dict[str, dict[str, Any]] = {
        "sgd": {}, "local": {"learning_rule": "local"},
        "sgd-levels": {"output": True}, "local-levels": {"learning_rule": "local", "output": True},
    }
    for levels in LEVELS:
        for dead_zone in data.dead_zones:
            out[f"pulse-L{levels}-dz{dead_zone:g}"] = {"learning_rule": "local", "optimizer": "pulse",
                                                     "conductance_levels": levels, "pulse_dead_zone": dead_zone}
    return out


def run_one(settings: Settings, dataset: str, name: str, seed: int) -> dict[str, Any]:
    """Train and measure one machine with one torch thread; the row of ``learning_rule.csv``."""
    import torch

    torch.set_num_threads(1)
    import rkm
    from rkm.evaluation import exact, metrics
    from rkm.io.datasets import bars_and_stripes, load_dataset
    from rkm.training import evaluation_rng, monitored_error

    data: Data = getattr(settings, dataset)
    chosen = dict(configs(data)[name])
    if chosen.pop("output", False):
        chosen["comparator_levels"] = settings.output_levels
    if "conductance_levels" in chosen:
        chosen.update(conductance_range=data.conductance_range, level_spacing="log")
    if dataset == "bars":
        train = torch.tensor(bars_and_stripes(4), dtype=torch.float32)
        test = None
    else:
        mnist = load_dataset("mnist-5k")
        train, test = torch.tensor(mnist.train, dtype=torch.float32), torch.tensor(mnist.test, dtype=torch.float32)
    model = rkm.RKM("study", train.shape[1], data.n_hidden, k=data.k, lr=data.lr, batch_size=data.batch_size,
                    train_algo=data.train_algo, model_beta=data.model_beta, n_chains=data.n_chains,
                    centering=data.centering, average_data=train.mean(0) if data.centering else None,
                    max_epochs=data.updates, seed=seed, device="cpu", **chosen)
    row: dict[str, Any] = {"dataset": dataset, "config": name, "seed": seed}
    last_tenth = data.updates - data.updates // 10
    marks: dict[str, int] = {}

    def mark(m: Any) -> None:
        if m.epoch == last_tenth:
            marks["pulses"] = m.trainer.pulses

    start = time.perf_counter()
    model.train(train, save=False, callback=mark, print_every=data.updates + 1)
    trained = time.perf_counter()
    devices = model.n_hidden * model.n_visible + model.n_hidden + model.n_visible
    readings = model.si()
    late = readings.pulses - marks.get("pulses", 0)
    row.update(pulses_per_device=readings.pulses / devices / data.updates,
               pulses_per_device_last=late / devices / (data.updates - last_tenth),
               energy_per_update_j=readings.energy_j / data.updates,
               time_per_update_s=readings.circuit_time_s / data.updates)
    if dataset == "bars":
        row["exact_kl"] = exact.kl_divergence(model, train)
    else:
        assert test is not None
        row["test_error"] = monitored_error(model, test)
        with evaluation_rng(model):
            samples = model.generate(settings.samples, data.k)
        row["fid"] = metrics.fid(test.numpy(), samples)
        row["label_entropy"] = metrics.label_quality(samples)["label_entropy"]
    row["train_seconds"] = round(trained - start, 2)
    row["eval_seconds"] = round(time.perf_counter() - trained, 2)
    return row


def identity(updates: int) -> tuple[float, float, float]:
    """The bars machine of seed 0 trained ``updates`` updates in float64 with the algorithmic and with the local
    rule (ideal comparators): the largest difference of any parameter, and the two exact KLs."""
    import torch

    import rkm
    from rkm.evaluation import exact
    from rkm.io.datasets import bars_and_stripes

    train = torch.tensor(bars_and_stripes(4), dtype=torch.float64)
    data = Settings().bars
    models = [rkm.RKM("id", 16, data.n_hidden, k=data.k, lr=data.lr, batch_size=data.batch_size,
                      train_algo=data.train_algo, model_beta=data.model_beta, n_chains=data.n_chains,
                      max_epochs=updates, seed=0, device="cpu", mytype=torch.float64, learning_rule=rule)
              for rule in ("algorithmic", "local")]
    for model in models:
        model.train(train, save=False, print_every=updates + 1)
    a, b = models
    difference = max(float((getattr(a, n) - getattr(b, n)).abs().max()) for n in ("W", "v_bias", "h_bias"))
    return difference, exact.kl_divergence(a, train), exact.kl_divergence(b, train)


# --------------------------------------------------------------------------- the table and the figure
def _key(row: dict[str, Any]) -> tuple[str, str, int]:
    return str(row["dataset"]), str(row["config"]), int(row["seed"])


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows of a ``learning_rule.csv``; numbers as floats (seeds as ints), empty cells as None."""
    return _study.read_rows(path, text=("dataset", "config"))


def run_study(settings: Settings, seeds: int, out: Path, jobs: int = 2) -> list[dict[str, Any]]:
    """Run every (dataset, configuration, seed) not yet in ``out/learning_rule.csv``, ``jobs`` processes at a
    time (1: in this process); all rows."""
    _study.claim(out, asdict(settings))
    path = out / "learning_rule.csv"
    done = {_key(r) for r in read_rows(path)}
    pending = [(settings, d, c, s) for d in settings.datasets for s in range(seeds)
               for c in configs(getattr(settings, d)) if (d, c, s) not in done]
    _record(path, _study.results(run_one, pending, jobs), len(pending))
    return read_rows(path)


def _record(path: Path, finished: Any, total: int) -> None:
    for number, row in enumerate(finished, 1):
        _study.append_row(path, row, COLUMNS)
        measure = (f"KL {row['exact_kl']:.3f}" if row["dataset"] == "bars" else
                   f"FID {row['fid']:.0f}, error {row['test_error']:.4f}, entropy {row['label_entropy']:.2f}")
        print(f"[{number}/{total}] {row['dataset']} {row['config']} seed {row['seed']}: {measure}, pulses/device "
              f"{row['pulses_per_device']:.3f} ({row['train_seconds']:.0f} s + {row['eval_seconds']:.0f} s)",
              flush=True)


MEASURES = {"bars": ("exact_kl", "pulses_per_device", "pulses_per_device_last", "energy_per_update_j",
                     "time_per_update_s"),
            "mnist": ("test_error", "fid", "label_entropy", "pulses_per_device", "pulses_per_device_last",
                      "energy_per_update_j", "time_per_update_s")}
FORMATS = {"exact_kl": ".2f", "test_error": ".4f", "fid": ".0f", "label_entropy": ".2f",
           "pulses_per_device": ".3f", "pulses_per_device_last": ".3f", "energy_per_update_j": ".3g",
           "time_per_update_s": ".3g"}


def summarise(rows: list[dict[str, Any]], settings: Settings) -> dict[str, list[dict[str, Any]]]:
    """Mean and sample standard deviation over the seeds of every measure, per dataset and configuration
    (in the order of :func:`configs`)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for dataset in settings.datasets:
        entries = []
        for name in configs(getattr(settings, dataset)):
            members = [r for r in rows if r["dataset"] == dataset and r["config"] == name]
            if not members:
                continue
            entry: dict[str, Any] = {"config": name, "seeds": len(members)}
            for measure in MEASURES[dataset]:
                values = [float(m[measure]) for m in members]
                entry[measure] = statistics.fmean(values)
                entry[measure + "_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            entries.append(entry)
        out[dataset] = entries
    return out


def markdown(summary: dict[str, list[dict[str, Any]]]) -> str:
    """One Markdown table per dataset (mean ± standard deviation over the seeds)."""
    blocks = []
    for dataset, entries in summary.items():
        names = MEASURES[dataset]
        lines = [f"| {dataset} | seeds | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for e in entries:
            cells = [f"{e[n]:{FORMATS[n]}} ± {e[n + '_std']:{FORMATS[n]}}" for n in names]
            lines.append(f"| {e['config']} | {e['seeds']} | " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def plot(rows: list[dict[str, Any]], settings: Settings, path: Path) -> Path:
    """Bars: the exact KL and the pulses per device against the dead zone, one line per number of levels,
    the SGD and local runs as bands; mnist: FID, label entropy and test error of every configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    colours = {L: plt.cm.viridis(i / len(LEVELS)) for i, L in enumerate(LEVELS)}
    bars = [r for r in rows if r["dataset"] == "bars"]
    for ax, measure, title in ((axes[0][0], "exact_kl", "bars: exact KL(data || model) (nats)"),
                               (axes[0][1], "pulses_per_device", "bars: pulses per device and update"),
                               (axes[0][2], "pulses_per_device_last", "bars: the same over the last tenth")):
        for name, colour in (("sgd", "0.6"), ("local", "tab:orange")):
            values = [float(r[measure]) for r in bars if r["config"] == name]
            if values and measure == "exact_kl":
                mean, sd = statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0
                ax.axhspan(mean - sd, mean + sd, color=colour, alpha=0.3, label=f"{name} (mean ± sd)")
        if measure == "exact_kl":
            ax.axhline(math.log(65536 / 30), color="k", ls=":", lw=1, label="uniform law")
            ax.set_yscale("log")
        for L in LEVELS:
            series: dict[float, list[float]] = {}
            for r in bars:
                if r["config"].startswith(f"pulse-L{L}-"):
                    series.setdefault(float(r["config"].split("dz")[1]), []).append(float(r[measure]))
            if series:
                xs = sorted(series)
                ax.errorbar(xs, [statistics.fmean(series[x]) for x in xs],
                            yerr=[statistics.stdev(series[x]) if len(series[x]) > 1 else 0 for x in xs],
                            marker="o", capsize=3, color=colours[L], label=f"pulse, {L} levels")
                for x in xs:
                    ax.plot([x] * len(series[x]), series[x], ".", color=colours[L], alpha=0.4)
        ax.set(xlabel="dead zone", title=title)
        ax.legend(fontsize=7)
    mnist = [r for r in rows if r["dataset"] == "mnist"]
    names = [n for n in configs(settings.mnist) if any(r["config"] == n for r in mnist)]
    for ax, measure, title in ((axes[1][0], "fid", "mnist: FID of samples from noise"),
                               (axes[1][1], "label_entropy", "mnist: label entropy of the samples (nats)"),
                               (axes[1][2], "test_error", "mnist: held-out reconstruction error")):
        for i, name in enumerate(names):
            values = [float(r[measure]) for r in mnist if r["config"] == name]
            ax.plot([i] * len(values), values, ".", color="0.5")
            ax.errorbar([i], [statistics.fmean(values)], yerr=[statistics.stdev(values) if len(values) > 1 else 0],
                        marker="o", capsize=3, color="tab:blue")
        ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        ax.set_title(title)
    b, m = settings.bars, settings.mnist
    fig.suptitle(f"bars: {b.n_hidden} hidden, {b.updates} updates, levels in {b.conductance_range}; mnist-5k: "
                 f"{m.n_hidden} hidden, {m.updates} updates, levels in {m.conductance_range}; pulse rules: the local "
                 "signal, log-spaced levels", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/learning-rule"), help="folder of the CSV and PNG")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration (default 3)")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time, one thread each (default 2)")
    parser.add_argument("--datasets", default="bars,mnist", help="bars and/or mnist (default both)")
    args = parser.parse_args(argv)
    settings = Settings(datasets=tuple(d.strip() for d in args.datasets.split(",")))
    print(f"settings: {asdict(settings)}", flush=True)
    start = time.perf_counter()
    rows = run_study(settings, args.seeds, args.out, args.jobs)
    plot(rows, settings, args.out / "learning_rule.png")
    print(markdown(summarise(rows, settings)))
    updates = settings.bars.updates
    difference, kl_a, kl_b = identity(updates)
    print(f"bars, seed 0, float64, {updates} updates: algorithmic and local rule differ by at most {difference:.2e} in "
          f"any parameter; exact KL {kl_a:.6f} and {kl_b:.6f} nats")
    print(f"{len(rows)} rows in {args.out / 'learning_rule.csv'}; this call took {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
