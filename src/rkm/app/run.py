"""Training runs on disk: configuration, run folder, metrics log, figures, summary.

A run folder holds::

    config.toml        the resolved configuration (re-usable with ``rkm train --config``)
    model_states/      save points (safetensors), the last one written on Ctrl-C too
    metrics.csv        one row every ``log_every`` updates (and ``quality_every``), :data:`METRIC_COLUMNS`
    figures/*.png      reconstructions, samples from noise, weights, biases, curves
    summary.json       headline numbers at the end of training
    data.json          name, sizes and SHA-256 of the data (checked on resume)
    .lock              locked by the ``rkm train`` that runs there (:mod:`rkm.app._runfolder`)

The configuration has three tables: ``[model]`` (the 25 constructor arguments of
:class:`rkm.RKM` except ``model_name``/``n_visible``, plus ``seed``, ``device``,
``threshold_sharing`` and ``fast_matmul``), ``[data]`` and ``[run]``; :data:`DEFAULTS` lists every key.
"""

from __future__ import annotations

import copy
import csv
import functools
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import hyperparams, plots
from ..core import devices
from ..errors import ConfigError, DataError
from ..evaluation import exact, metrics
from ..io.datasets import Dataset, load_dataset
from ..io.savepoints import atomic_write
from ..machine import RBM, RKM, load_model
from ..training import evaluation_rng, monitored_error
from ._runfolder import RunFolder

logger = logging.getLogger("rkm.app.run")

DEFAULTS: dict[str, dict[str, Any]] = hyperparams.config_defaults()
"""Every configuration key and its default (from the table of settings, :mod:`rkm.hyperparams`).
``model.average_data`` is a switch: True initialises the visible bias to the training-data mean
(the seed's ``average_data``); ``model.centering = true`` implies it. ``data.threshold`` unset
means 0.5 for the built-in image datasets and "the values must already be 0/1" for array files.
``run.lr_final`` set anneals the learning rate geometrically from ``model.lr`` to it over the
updates after the fraction ``run.anneal_start`` of ``max_epochs`` (:func:`learning_rate`)."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        "model": {"n_hidden": 1000, "k": 20, "lr": 0.02, "max_epochs": 4000, "batch_size": 64, "train_algo": "RDM",
                  "centering": True, "model_beta": 0.2, "optimizer": "SGD", "seed": 0},
        "data": {"dataset": "mnist-5k"},
        "run": {"name": "demo", "log_every": 500, "generate_k": 20, "lr_final": 0.002, "anneal_start": 0.7},
    },
    "bars": {
        "model": {"n_hidden": 32, "k": 3, "lr": 0.05, "max_epochs": 1500, "batch_size": 16, "train_algo": "PCD",
                  "seed": 0},
        "data": {"dataset": "bars-and-stripes", "size": 4},
        "run": {"name": "bars", "log_every": 100, "generate_k": 100, "n_generate": 30, "n_eval": 30},
    },
}
"""Ready-made configurations: ``demo`` (the ``make demo`` job) and ``bars`` (seconds).

The demo trains non-persistently from noise (RDM, k = 20, centred gradients) and generates with
the same 20 steps from noise: a model trained so generates every digit (``docs/quality.md``);
the PCD-1 demo before it reconstructed as well but generated mostly 0s and 5s from noise."""


@dataclass(frozen=True)
class Probe:
    """What a quality column reads: the model, samples it generated from noise, the held-out and the
    training rows."""

    model: RBM
    samples: np.ndarray
    test: np.ndarray
    train: np.ndarray

    @functools.cached_property
    def labels(self) -> dict[str, float]:
        """The shipped classifier's label statistics of the samples (:func:`rkm.evaluation.metrics.label_quality`)."""
        return metrics.label_quality(self.samples)


@dataclass(frozen=True)
class QualityColumn:
    """A column of ``metrics.csv`` on what the model learned: its name, the data it applies to, its
    measure (None: not defined on this row, an empty cell)."""

    name: str
    applies: Callable[[Dataset], bool]
    measure: Callable[[Probe], float | None]


def _fid(probe: Probe) -> float | None:
    return metrics.fid(probe.test, probe.samples) if len(probe.test) >= 2 and len(probe.samples) >= 2 else None


def _digits(dataset: Dataset) -> bool:
    return dataset.image_shape == (28, 28)


def _exact_kl(probe: Probe) -> float | None:
    return exact.kl_divergence(probe.model, probe.train) if exact.law_computable(probe.model) else None


def _tiny(dataset: Dataset) -> bool:
    return dataset.train.shape[1] <= exact.MAX_UNITS


QUALITY_COLUMNS: tuple[QualityColumn, ...] = (
    QualityColumn("label_entropy", _digits, lambda probe: probe.labels["label_entropy"]),
    QualityColumn("classes_covered", _digits, lambda probe: probe.labels["classes_covered"]),
    QualityColumn("fid", _digits, _fid),
    QualityColumn("exact_kl", _tiny, _exact_kl),
)
"""The quality columns of ``metrics.csv``, filled every ``run.quality_every`` updates and on the
last row, empty where a column does not apply to the data or was not computed on that row.
For 28x28 digits: the label entropy (nats; ``log 10 = 2.303`` for balanced classes) and the
fraction of the ten classes with at least 4% of ``run.n_quality`` samples generated from noise
with ``run.generate_k`` steps (:func:`rkm.evaluation.metrics.label_quality`), and their FID against the
held-out digits (:func:`rkm.evaluation.metrics.fid`; at least 2 of each). For data of at most 16 visible
units (bars-and-stripes 4x4) and a machine whose law :mod:`rkm.evaluation.exact` computes
(:func:`rkm.evaluation.exact.law_computable`): ``exact_kl``, KL(training data || the model's law) in nats.
A new column is one row here; a measure that needs more than :class:`Probe` holds adds it there."""

METRIC_COLUMNS = (
    "update", "elapsed_s", "updates_per_s", "train_error", "test_error", "power_f", "power_b", "energy",
    "relax_t_f_mean", "relax_t_b_mean", "power_f_w", "power_b_w", "energy_j", "relax_t_f_mean_s", "relax_t_b_mean_s",
    "swap_acceptance", *(column.name for column in QUALITY_COLUMNS),
)
"""Columns of ``metrics.csv``: the code-unit readings as pyrkm reports them, then the same in SI
(watts, joules, seconds; ``rkm.core.units.DEFAULT_UNITS``, see ``docs/energy.md``); what the negative
phase reports (``swap_acceptance``: parallel tempering's accepted fraction of swaps since the
start, :class:`rkm.training.phases.PT`; empty for the other phases); the quality columns
(:data:`QUALITY_COLUMNS`)."""


def physical_readings(model: RBM) -> dict[str, float]:
    """Power, energy and mean relaxation times of ``model``, in code units and in SI."""
    si = model.si()
    return {
        "power_f": float(model.power_f),
        "power_b": float(model.power_b),
        "energy": float(model.energy),
        "relax_t_f_mean": float(model.relax_t_f.mean()),
        "relax_t_b_mean": float(model.relax_t_b.mean()),
        "power_f_w": si.power_f_w,
        "power_b_w": si.power_b_w,
        "energy_j": si.energy_j,
        "relax_t_f_mean_s": float(si.relax_t_f_s.mean()),
        "relax_t_b_mean_s": float(si.relax_t_b_s.mean()),
    }


# ------------------------------------------------------------------ config
def merge(config: dict, updates: dict, where: str) -> dict:
    """Return ``config`` with the tables of ``updates`` merged in; unknown keys are errors."""
    merged = copy.deepcopy(config)
    for section, values in updates.items():
        if section not in DEFAULTS:
            raise ConfigError(f"unknown config table [{section}] in {where}; use [model], [data] or [run].")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] in {where} must be a table of key = value lines.")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                known = ", ".join(sorted(DEFAULTS[section]))
                raise ConfigError(f"unknown config key {section}.{key} in {where}; known keys: {known}.")
            merged[section][key] = hyperparams.SETTINGS[(section, key)].parse(value, where)
    return merged


def validate(config: dict) -> dict:
    """Check every value of a resolved configuration as a run would use it; returns ``config``.

    Raises a ConfigError naming the first bad key, before anything is written or trained.
    """
    for section, values in config.items():
        for key, value in values.items():
            setting = hyperparams.SETTINGS[(section, key)]
            if key != "average_data":
                setting.constructor_value(value)
    m, r = config["model"], config["run"]
    if m["min_W"] >= m["max_W"]:
        raise ConfigError(f"model.min_W ({m['min_W']}) must be smaller than model.max_W ({m['max_W']}).")
    devices.check_levels(m["conductance_range"], m["conductance_levels"])
    if r["lr_final"] is not None and r["lr_final"] > m["lr"]:
        raise ConfigError(f"run.lr_final ({r['lr_final']}) must not exceed model.lr ({m['lr']}): it is the rate "
                          "the learning rate is annealed down to.")
    return config


def read_config_file(path: str | os.PathLike) -> dict:
    """Parse a TOML configuration file into nested tables."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist.")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a regular file.")
    try:
        return tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); a TOML file is text.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}.") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def write_config(config: dict, path: Path) -> None:
    """Write ``config`` as TOML (flat tables of scalars)."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None]
        lines.append("")
    atomic_write(path, "\n".join(lines).encode())


def resolve_config(preset: str | None = None, config_file: str | os.PathLike | None = None,
                   overrides: dict | None = None) -> dict:
    """Defaults, then a preset, then a TOML file, then command-line overrides."""
    config = copy.deepcopy(DEFAULTS)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}.")
        config = merge(config, PRESETS[preset], f"preset {preset!r}")
    if config_file is not None:
        config = merge(config, read_config_file(config_file), str(config_file))
    if overrides:
        config = merge(config, overrides, "the command line")
    return validate(config)


def load_data(config: dict) -> Dataset:
    """The dataset a configuration names."""
    d = config["data"]
    return load_dataset(
        d["dataset"], threshold=d["threshold"], path=d["path"] or None, size=d["size"], protocol=d["protocol"]
    )


def build_model(config: dict, dataset: Dataset) -> RBM:
    """A new model from the ``[model]`` table, sized to ``dataset``."""
    m = {key: hyperparams.MODEL[key].constructor_value(value) for key, value in config["model"].items()
         if key != "average_data"}
    use_mean = config["model"]["average_data"] or m["centering"]
    m["average_data"] = torch.tensor(dataset.train.mean(axis=0)) if use_mean else None
    cls = RBM if m["energy_type"] == "hopfield" else RKM
    return cls(config["run"]["name"], dataset.n_visible, **m)


def learning_rate(config: dict, update: int) -> float:
    """Learning rate of the update after ``update``: ``model.lr``, annealed if ``run.lr_final`` is set.

    Persistent chains trail a model that moves fast; lowering the rate at the end lets
    them equilibrate, so the model stops favouring states the chains no longer visit
    (samples from noise then look like the data, not like blobs).
    """
    lr, final = config["model"]["lr"], config["run"]["lr_final"]
    total = config["model"]["max_epochs"]
    start = int(config["run"]["anneal_start"] * total)
    if final is None or update <= start:
        return lr
    return lr * (final / lr) ** min(1.0, (update - start) / max(1, total - start))


# ------------------------------------------------------------------- logging
def generation_steps(config: dict, model: RBM) -> int:
    """Gibbs steps of generation from noise: ``run.generate_k``, or the model's ``k`` where it is ``'k'``."""
    steps = config["run"]["generate_k"]
    return model.k if steps == "k" else int(steps)


def noise_samples(model: RBM, n: int, k: int) -> np.ndarray:
    """``n`` samples after ``k`` Gibbs steps from noise, drawn under :func:`rkm.training.evaluation_rng`."""
    with evaluation_rng(model):
        return model.generate(n, k)


@dataclass
class SampleQuality:
    """The quality columns of a run: those that apply to its data, when they are due, their samples.

    The last row generates ``n_final`` samples (the figures' and the summary's too, so
    :func:`finish` reuses them: :attr:`last`); its quality reads the first ``n`` of them.
    """

    columns: tuple[QualityColumn, ...]
    every: int
    n: int
    n_final: int
    test: np.ndarray
    train: np.ndarray
    last: tuple[int, np.ndarray] | None = None

    @classmethod
    def of(cls, config: dict, dataset: Dataset) -> SampleQuality:
        """The quality columns of ``config``'s run on ``dataset``."""
        r = config["run"]
        n_eval = min(r["n_eval"], len(dataset.test))
        columns = tuple(c for c in QUALITY_COLUMNS if c.applies(dataset))
        n_final = max(r["n_generate"], n_eval, r["n_quality"] if columns else 0)
        return cls(columns, r["quality_every"], r["n_quality"], n_final, dataset.test[:n_eval], dataset.train)

    def due(self, update: int, final: bool) -> bool:
        """Whether the row of ``update`` (the last of the run when ``final``) records the quality."""
        return bool(self.columns) and (final or (self.every > 0 and update % self.every == 0))

    def measure(self, model: RBM, k: int, final: bool) -> dict[str, float]:
        """The quality columns of the model as it is now (those defined on this row)."""
        samples = noise_samples(model, self.n_final if final else self.n, k)
        if final:
            self.last = (model.epoch, samples)
        probe = Probe(model, samples[: self.n], self.test, self.train)
        values = {column.name: column.measure(probe) for column in self.columns}
        return {name: value for name, value in values.items() if value is not None}

    def samples_at(self, update: int) -> np.ndarray | None:
        """The last row's samples if that row is at ``update``."""
        return self.last[1] if self.last is not None and self.last[0] == update else None


@dataclass
class MetricsLog:
    """The ``train`` callback of a run: the learning-rate schedule, the progress bar, and a
    row of ``metrics.csv`` every ``every`` updates."""

    path: Path
    every: int
    train_probe: torch.Tensor
    test: torch.Tensor | None
    started: float
    last_update: int
    last_time: float
    bar: Any = None

    def __post_init__(self) -> None:
        if not self.path.exists():
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(METRIC_COLUMNS)

    config: dict | None = None
    quality: SampleQuality | None = None

    def __call__(self, model: RBM) -> None:
        if self.config is not None:
            model.trainer.lr = learning_rate(self.config, model.epoch)
        if self.bar is not None:
            self.bar.update(1)
        final = model.epoch == model.max_epochs
        assess = self.quality is not None and self.config is not None and self.quality.due(model.epoch, final)
        if model.epoch % self.every and not final and not assess:
            return
        now = time.perf_counter()
        rate = (model.epoch - self.last_update) / max(now - self.last_time, 1e-9)
        row = {
            "update": model.epoch,
            "elapsed_s": round(now - self.started, 3),
            "updates_per_s": round(rate, 2),
            "train_error": monitored_error(model, self.train_probe),
            "test_error": monitored_error(model, self.test) if self.test is not None else "",
            **physical_readings(model),
            **model.trainer.phase.readings(),
        }
        if assess:
            assert self.quality is not None and self.config is not None
            row.update(self.quality.measure(model, generation_steps(self.config, model), final))
        with open(self.path, "a", newline="") as fh:
            csv.writer(fh).writerow([row.get(c, "") for c in METRIC_COLUMNS])
        self.last_update, self.last_time = model.epoch, time.perf_counter()
        if self.bar is not None:
            self.bar.set_postfix(
                {"test err": f"{row['test_error']:.4f}", "P_f": f"{row['power_f']:.4g}",
                 "P_b": f"{row['power_b']:.4g}"},
                refresh=False,
            )


def read_metrics(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a ``metrics.csv`` as dicts of floats (empty cells dropped)."""
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


# ------------------------------------------------------------------ the run
def _tensor(model: RBM, array: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(array, dtype=model.mytype, device=model.device)


def train_run(config: dict, run_dir: str | os.PathLike, *, resume: bool = False, restart: bool = False) -> dict:
    """Train (``resume``: continue, ``restart``: start over) the run in ``run_dir``; returns the summary.

    The run holds the folder's lock throughout (:mod:`rkm.app._runfolder`): a second run of the
    same folder is refused. A resume checks every setting and the data against the saved run
    before it writes anything. On KeyboardInterrupt a resumable save point is written and the
    exception re-raised.
    """
    validate(config)
    folder = RunFolder(run_dir, config["run"]["name"])
    with folder.session():
        return _train(config, folder, resume, restart)


def _train(config: dict, folder: RunFolder, resume: bool, restart: bool) -> dict:
    run_dir, states = folder.path, folder.states
    if resume:
        folder.check_resume()
        saved = resolve_config(config_file=folder.config_path)
        folder.refuse_changes(saved, config)
        dataset = load_data(config)
        folder.check_data(dataset)
        model = load_model(config["run"]["name"], model_state_path=states, device=config["model"]["device"])[1]
        folder.check_model(model, saved, dataset)
        folder.truncate_metrics(model.epoch, METRIC_COLUMNS)
        model.max_epochs = config["model"]["max_epochs"]
        model.fast_matmul = hyperparams.fast_matmul_setting(config["model"]["fast_matmul"])
        if model.epoch >= model.max_epochs:
            logger.info("Run already at update %d of %d; raise --max-epochs to train on.", model.epoch,
                        model.max_epochs)
    else:
        if restart:
            folder.check_restart()
        else:
            folder.check_new()
        dataset = load_data(config)
        model = build_model(config, dataset)
        folder.clear()
    folder.record_data(dataset)
    write_config(config, run_dir / "config.toml")

    r = config["run"]
    n_eval = min(r["n_eval"], len(dataset.test))
    test = _tensor(model, dataset.test[:n_eval])
    probe = _tensor(model, dataset.train[:n_eval])
    bar = None
    if r["progress"]:
        from tqdm.auto import tqdm

        bar = tqdm(total=model.max_epochs, initial=model.epoch, unit="update", dynamic_ncols=True)
    now = time.perf_counter()
    quality = SampleQuality.of(config, dataset)
    log = MetricsLog(run_dir / "metrics.csv", r["log_every"], probe, test, now, model.epoch, now, bar, config,
                     quality)
    model.trainer.lr = learning_rate(config, model.epoch)
    train_data = _tensor(model, dataset.train)
    start = time.perf_counter()
    try:
        model.train(train_data, model_state_path=str(states), print_every=10**12, save=r["save"], callback=log)
    except DataError as err:
        raise DataError(f"{err} {folder.intact_note()}") from None
    finally:
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    return finish(model, dataset, run_dir, config, train_seconds=seconds, samples=quality.samples_at(model.epoch))


def finish(model: RBM, dataset: Dataset, run_dir: Path, config: dict, train_seconds: float | None = None,
           samples: np.ndarray | None = None) -> dict:
    """Figures and summary of a trained model; ``samples``: those the last row of ``metrics.csv``
    generated from noise at this update (:class:`SampleQuality`), generated here if None."""
    r = config["run"]
    figures = run_dir / "figures"
    figures.mkdir(exist_ok=True)
    n_eval = min(r["n_eval"], len(dataset.test))
    test = _tensor(model, dataset.test[:n_eval])
    steps = generation_steps(config, model)
    sample_quality = SampleQuality.of(config, dataset)
    if samples is None:
        samples = noise_samples(model, sample_quality.n_final, steps)
    with evaluation_rng(model):
        recon = model.forward(test[:16], 1).cpu().numpy()
    shape = dataset.image_shape
    write_figures(model, figures, test[:16].cpu().numpy(), recon, samples[: r["n_generate"]], shape,
                  run_dir / "metrics.csv")
    real = dataset.test[:n_eval]
    quality = metrics.evaluate_samples(real, samples[:n_eval], shape, include_fid=shape == (28, 28))
    if _digits(dataset):
        quality.update(metrics.label_quality(samples[: r["n_quality"]]))
    acceptance = getattr(model.trainer.phase, "acceptance", None)
    summary = {
        "run_dir": str(run_dir),
        "dataset": dataset.name,
        "updates": model.epoch,
        "train_seconds": None if train_seconds is None else round(train_seconds, 2),
        "test_reconstruction_error_k1": monitored_error(model, test),
        "test_samples": n_eval,
        "generated_samples": len(samples),
        "generate_k": steps,
        **physical_readings(model),
        **({} if acceptance is None else {"swap_acceptance": [round(float(a), 6) for a in acceptance]}),
        "sample_quality_vs_test": quality,
        "figures": sorted(str(p) for p in figures.glob("*.png")),
    }
    atomic_write(run_dir / "summary.json", json.dumps(summary, indent=2).encode())
    return summary


def write_figures(model: RBM, folder: Path, originals: np.ndarray, recon: np.ndarray, samples: np.ndarray,
                  shape: tuple[int, int] | None, metrics_csv: Path) -> None:
    """Every PNG of a run folder."""
    plots.save(plots.reconstructions(originals, recon, shape), folder / "reconstructions.png")
    title = f"Samples from noise (update {model.epoch})"
    plots.save(plots.image_grid(samples, shape, title=title), folder / "samples.png")
    plots.save(model.plot_weights(model.epoch, image_shape=shape), folder / "weights.png")
    plots.save(model.plot_bias(model.epoch), folder / "biases.png")
    if metrics_csv.exists():
        rows = read_metrics(metrics_csv)
        if rows:
            plots.save(plots.training_curves(rows), folder / "training_curves.png")


def load_run(run_dir: str | os.PathLike) -> tuple[dict, Dataset, RBM]:
    """Configuration, dataset and latest model of an existing run folder."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").is_file():
        raise ConfigError(f"{run_dir} is not a run folder (no config.toml); pass the folder `rkm train` created.")
    config = resolve_config(config_file=run_dir / "config.toml")
    found, model = load_model(config["run"]["name"], model_state_path=run_dir / "model_states",
                              device=config["model"]["device"])
    if not found:
        raise ConfigError(f"{run_dir} has no save point yet.")
    return config, load_data(config), model

