"""The metrics log of a run: the columns of ``metrics.csv``, its quality columns, the callback that writes it.

:class:`MetricsLog` is the ``train`` callback of a run (it also sets each update's learning
rate, :func:`rkm.app.config.learning_rate`, and moves the progress bar); :func:`read_metrics`
reads a ``metrics.csv`` back.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
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
    "QUICK_SAMPLES",
    "QUICK_STEPS",
    "QualityColumn",
    "RunClock",
    "SampleQuality",
    "evaluation_rows",
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
    """KL(training data || the model's law); None where the law is not computable or not unique (a chain
    trapped by deterministic units has several stationary laws: the run goes on, the column stays empty)."""
    if not exact.law_computable(probe.model):
        return None
    try:
        return exact.kl_divergence(probe.model, probe.train)
    except DataError as err:
        logger.warning("exact_kl left empty at update %d: %s", probe.model.epoch, err)
        return None


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
    "update", "elapsed_s", "train_s", "eval_s", "updates_per_s", "train_error", "test_error", "power_f", "power_b",
    "energy", "relax_t_f_mean", "relax_t_b_mean", "power_f_w", "power_b_w", "energy_j", "relax_t_f_mean_s",
    "relax_t_b_mean_s", "circuit_time_s", "pulses", "swap_acceptance", *(column.name for column in QUALITY_COLUMNS),
)
"""Columns of ``metrics.csv``: the update; the run's time so far in seconds, continued across resumes
(``train_s`` training, ``eval_s`` evaluation: these rows, their quality columns; ``elapsed_s`` the two
together) and the training speed since the previous row (``updates_per_s``, training time only); the
reconstruction errors (``test_error`` empty where the data has no held-out set); the code-unit
readings as pyrkm reports them, then the same in SI (watts, joules, seconds;
``rkm.core.units.DEFAULT_UNITS``, see ``docs/energy.md``), the duration of training on twin networks
(``circuit_time_s``) and the programming pulses of the row's update (``pulses``, empty for optimisers
that send none; see ``docs/learning-rule.md``); what the negative phase reports
(``swap_acceptance``: parallel tempering's accepted fraction of swaps since the start,
:class:`rkm.training.phases.PT`; empty for the other phases); the quality columns
(:data:`QUALITY_COLUMNS`)."""

QUICK_SAMPLES = 100
"""With ``run.quick``: at most this many samples from noise in the quality rows and the end-of-run evaluation."""
QUICK_STEPS = 100
"""With ``run.quick``: at most this many Gibbs steps for them."""


class RunClock:
    """The training and evaluation time of a run, in seconds, continued across resumes.

    Time counts as training from the clock's creation (a resumed run's clock goes on from its
    ``metrics.csv``: :meth:`continuing`) until :meth:`stop`, except
    while :meth:`evaluating`, which counts as evaluation.
    """

    def __init__(self, train_s: float = 0.0, eval_s: float = 0.0) -> None:
        self._train, self._eval = float(train_s), float(eval_s)
        self._mark: float | None = time.perf_counter()
        self._evaluating: float | None = None

    @classmethod
    def continuing(cls, rows: list[dict[str, float]]) -> RunClock:
        """A clock that goes on from the last of ``rows`` (``metrics.csv``; a log of an older rkm without
        ``train_s`` counts its ``elapsed_s`` as training)."""
        if not rows:
            return cls()
        last = rows[-1]
        return cls(last.get("train_s", last.get("elapsed_s", 0.0)), last.get("eval_s", 0.0))

    @property
    def train_s(self) -> float:
        """Seconds of training so far."""
        now = time.perf_counter() if self._evaluating is None else self._evaluating
        return self._train + (0.0 if self._mark is None else now - self._mark)

    @property
    def eval_s(self) -> float:
        """Seconds of evaluation so far (the running evaluation included)."""
        return self._eval + (0.0 if self._evaluating is None else time.perf_counter() - self._evaluating)

    def stop(self) -> None:
        """Training is over: from now on only :meth:`evaluating` counts."""
        if self._mark is not None:
            self._train += time.perf_counter() - self._mark
            self._mark = None

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Count the block as evaluation."""
        start = time.perf_counter()
        self._evaluating = start
        try:
            yield
        finally:
            end = time.perf_counter()
            self._eval += end - start
            self._evaluating = None
            if self._mark is not None:
                self._mark += end - start


def physical_readings(model: RBM) -> dict[str, float]:
    """Power, energy and mean relaxation times of ``model``, in code units and in SI; the circuit time of
    training and the last update's pulses (where the optimiser sends pulses)."""
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
        "circuit_time_s": si.circuit_time_s,
        **({} if model.trainer.last_pulses is None else {"pulses": model.trainer.last_pulses}),
    }


def generation_steps(config: dict, model: RBM, *, evaluation: bool = False) -> int:
    """Gibbs steps of generation from noise: ``run.generate_k``, or the model's ``k`` where it is ``'k'``;
    with ``evaluation`` (the quality rows, the end-of-run evaluation) at most :data:`QUICK_STEPS` when
    ``run.quick``."""
    steps = config["run"]["generate_k"]
    steps = model.k if steps == "k" else int(steps)
    return min(steps, QUICK_STEPS) if evaluation and config["run"]["quick"] else steps


def evaluation_rows(config: dict, dataset: Dataset) -> int:
    """Test rows of the errors and sample metrics: ``run.n_eval`` (at most :data:`QUICK_SAMPLES` when
    ``run.quick``), at most the test set.

    Parameters
    ----------
    config : dict
        The run's resolved configuration (its ``run`` table).
    dataset : rkm.io.datasets.Dataset
        The run's data.

    Returns
    -------
    int
    """
    n = min(config["run"]["n_eval"], len(dataset.test))
    return min(n, QUICK_SAMPLES) if config["run"]["quick"] else n


def noise_samples(model: RBM, n: int, k: int, progress: str | None = None) -> np.ndarray:
    """``n`` samples after ``k`` Gibbs steps from noise, drawn under :func:`rkm.training.evaluation_rng`.

    ``progress``: the description of a tqdm bar over the steps (the same samples as without it).
    """
    with evaluation_rng(model):
        if progress is None or k < 2:
            return model.generate(n, k)
        from tqdm.auto import tqdm

        v = torch.as_tensor(model.generate(n, 0), device=model.device)
        chunk = max(1, k // 100)
        with tqdm(total=k, desc=progress, unit="step", dynamic_ncols=True, smoothing=0) as bar:
            for done in range(0, k, chunk):
                steps = min(chunk, k - done)
                v = model.forward(v, steps)
                bar.update(steps)
        return v.cpu().numpy()


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
        n_eval = evaluation_rows(config, dataset)
        columns = tuple(c for c in QUALITY_COLUMNS if c.applies(dataset))
        n, n_final = r["n_quality"], max(r["n_generate"], n_eval, r["n_quality"] if columns else 0)
        if r["quick"]:
            n, n_final = min(n, QUICK_SAMPLES), min(n_final, QUICK_SAMPLES)
        return cls(columns, r["quality_every"], n, n_final, dataset.test[:n_eval], dataset.train)

    def due(self, update: int, final: bool) -> bool:
        """Whether the row of ``update`` (the last of the run when ``final``) records the quality."""
        return bool(self.columns) and (final or (self.every > 0 and update % self.every == 0))

    def measure(self, model: RBM, k: int, final: bool, progress: str | None = None) -> dict[str, float]:
        """The quality columns of the model as it is now (those defined on this row); ``progress``: see
        :func:`noise_samples`."""
        samples = noise_samples(model, self.n_final if final else self.n, k, progress)
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
    row of ``metrics.csv`` every ``every`` updates. The last row, at ``max_epochs``, is written by
    :meth:`MetricsLog.final` once training returned (after its save point)."""

    path: Path
    every: int
    train_probe: torch.Tensor
    test: torch.Tensor | None
    clock: RunClock
    last_update: int
    bar: Any = None
    config: dict | None = None
    quality: SampleQuality | None = None

    def __post_init__(self) -> None:
        self.last_train_s = self.clock.train_s
        if not self.path.exists():
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(METRIC_COLUMNS)

    def __call__(self, model: RBM) -> None:
        if self.config is not None:
            model.trainer.lr = learning_rate(self.config, model.epoch)
        if self.bar is not None:
            self.bar.update(1)
        if model.epoch == model.max_epochs:
            return
        assess = self.quality is not None and self.config is not None and self.quality.due(model.epoch, False)
        if model.epoch % self.every == 0 or assess:
            self.row(model, assess)

    def final(self, model: RBM, progress: str | None = None) -> None:
        """The last row (with the quality columns); ``progress``: a bar over its generation from noise."""
        self.row(model, self.quality is not None and self.config is not None, progress)

    def row(self, model: RBM, assess: bool, progress: str | None = None) -> None:
        """Append the row of the model as it is now (``assess``: with its quality columns)."""
        train_s = self.clock.train_s
        with self.clock.evaluating():
            rate = (model.epoch - self.last_update) / max(train_s - self.last_train_s, 1e-9)
            row = {
                "update": model.epoch,
                "train_s": round(train_s, 3),
                "updates_per_s": round(rate, 2),
                "train_error": monitored_error(model, self.train_probe),
                "test_error": monitored_error(model, self.test) if self.test is not None else "",
                **physical_readings(model),
                **model.trainer.phase.readings(),
            }
            if assess:
                assert self.quality is not None and self.config is not None
                final = model.epoch == model.max_epochs
                steps = generation_steps(self.config, model, evaluation=True)
                row.update(self.quality.measure(model, steps, final, progress))
            row["eval_s"] = round(self.clock.eval_s, 3)
            row["elapsed_s"] = round(train_s + self.clock.eval_s, 3)
            with open(self.path, "a", newline="") as fh:
                csv.writer(fh).writerow([row.get(c, "") for c in METRIC_COLUMNS])
        self.last_update, self.last_train_s = model.epoch, train_s
        if self.bar is not None:
            postfix = {"P_f": f"{row['power_f_w']:.4g} W", "P_b": f"{row['power_b_w']:.4g} W"}
            error = row["test_error"] if self.test is not None else row["train_error"]
            self.bar.set_postfix({"test err" if self.test is not None else "train err": f"{error:.4f}", **postfix},
                                 refresh=False)


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
