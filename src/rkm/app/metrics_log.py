"""The metrics log of a run: the columns of ``metrics.csv``, its quality columns, the callback that writes it.

:class:`MetricsLog` is the ``train`` callback of a run (it also sets each update's learning
rate, :func:`rkm.app.config.learning_rate`, and moves the progress bar); :func:`read_metrics`
reads a ``metrics.csv`` back.
"""

from __future__ import annotations

import csv
import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from ..evaluation import exact, metrics
from ..io import _files
from ..io.datasets import Dataset
from ..machine import RBM
from ..training import evaluation_rng, monitored_error
from .config import learning_rate

logger = logging.getLogger("rkm.app.run")

__all__ = [
    "METRIC_COLUMNS",
    "QUALITY_COLUMNS",
    "MetricsLog",
    "Probe",
    "QualityColumn",
    "SampleQuality",
    "generation_steps",
    "noise_samples",
    "physical_readings",
    "read_metrics",
]

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


def is_digits(dataset: Dataset) -> bool:
    return dataset.image_shape == (28, 28)


def _exact_kl(probe: Probe) -> float | None:
    return exact.kl_divergence(probe.model, probe.train) if exact.law_computable(probe.model) else None


def _tiny(dataset: Dataset) -> bool:
    return dataset.train.shape[1] <= exact.MAX_UNITS


QUALITY_COLUMNS: tuple[QualityColumn, ...] = (
    QualityColumn("label_entropy", is_digits, lambda probe: probe.labels["label_entropy"]),
    QualityColumn("classes_covered", is_digits, lambda probe: probe.labels["classes_covered"]),
    QualityColumn("fid", is_digits, _fid),
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
    :func:`rkm.app.run.finish` reuses them: :attr:`last`); its quality reads the first ``n`` of them.
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
    """Rows of a ``metrics.csv`` as dicts of floats (empty cells dropped).

    The file is derived (training writes it), so damage is reported, not fatal: a line that is
    not a row of numbers under the header (junk, a short or long row, bytes that are not UTF-8)
    is left out, and one warning says how many were. A file that cannot be read at all (a
    FIFO, a folder, no header) is a :class:`~rkm.errors.DataError` naming it.
    """
    text = _files.read_bytes(path, "metrics log", DataError).decode("utf-8", "replace")
    lines = text.splitlines()
    header = csv_fields(lines[0]) if lines else None
    if not header or header[0] != METRIC_COLUMNS[0]:
        raise DataError(f"{path} is not a metrics log: its first line is not a header starting with "
                        f"{METRIC_COLUMNS[0]!r}.")
    rows, damaged = [], 0
    for line in lines[1:]:
        fields = csv_fields(line)
        values = _numbers(fields) if fields is not None and len(fields) == len(header) else None
        if values is None:
            damaged += 1
            continue
        rows.append({k: v for k, v in zip(header, values) if v is not None})
    if damaged:
        logger.warning("%s: left out %d damaged line(s) that are not rows of numbers under its header.", path, damaged)
    return rows


def csv_fields(line: str) -> list[str] | None:
    """The fields of one CSV line, or None if the csv module refuses it (a field past its size limit)."""
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return None


def _numbers(fields: list[str]) -> list[float | None] | None:
    """The cells of a row as floats (None for an empty cell), or None if one is not a number."""
    values: list[float | None] = []
    for field in fields:
        if field == "":
            values.append(None)
            continue
        try:
            values.append(float(field))
        except ValueError:
            return None
    return values
