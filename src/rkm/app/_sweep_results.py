"""The results of a sweep: a ``results.csv`` row per run, the file itself, and ``summary.png``."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import DataError, DatasetNotFoundError
from ..evaluation import metrics
from ..io import _files
from ..io.savepoints import atomic_write
from ._sweep_plan import Run
from ._sweep_worker import one_line

SUMMARY_COLUMNS = (
    "updates", "train_seconds", "test_reconstruction_error_k1", "energy", "energy_j", "power_f", "power_b",
    "relax_t_f_mean", "relax_t_b_mean",
)
"""Columns of ``results.csv`` copied from each run's ``summary.json``, before the sample-quality
metrics (the keys of :data:`rkm.evaluation.metrics.METRIC_KEYS` that any run has)."""

PLOTTED = ("test_reconstruction_error_k1", *metrics.METRIC_KEYS, "energy_j", "train_seconds")
"""Metrics drawn in ``summary.png``, where at least one run has them."""

LABELS: dict[str, tuple[str, str | None, str]] = {
    "test_reconstruction_error_k1": ("error", "fraction of pixels", "reconstruction of test rows, k = 1"),
    "aats_truth": ("AATS, real samples", "fraction", "ideal 0.5"),
    "aats_syn": ("AATS, generated samples", "fraction", "ideal 0.5"),
    "entropy_measure": ("entropy gap", None, "compressed mixed vs test data, ideal 0"),
    "covariance_error": ("covariance error", None, "ideal 0"),
    "third_moment_error": ("third-moment error", None, "ideal 0"),
    "power_spectrum_error": ("power-spectrum error", None, "ideal 0"),
    "fid": ("FID", None, "shipped classifier, ideal 0"),
    "energy_j": ("energy", "J", "dissipated in training"),
    "train_seconds": ("time", "s", "training"),
}
"""How each metric of :data:`PLOTTED` is named on ``summary.png``: the quantity and unit of its axis and the
panel's title (:func:`rkm.evaluation.metrics.evaluate_samples` defines the quality metrics)."""

CODE_UNIT_KEYS = frozenset({"model.offset", "model.g_v", "model.g_h", "model.min_W", "model.max_W",
                            "model.comparator_offset"})
"""Swept settings that are voltages or conductances in the circuit's code units (:mod:`rkm.core.units`)."""

MAX_SERIES = 6
"""More combinations of the other swept keys than this are pooled into one series in a panel."""


def result_row(run: Run, outcome: Mapping) -> dict[str, Any]:
    """The ``results.csv`` row of a run: its swept values, seed, outcome and summary."""
    row: dict[str, Any] = {"run": run.name, **run.values, "seed": run.seed}
    row.update(status=outcome["status"], action=outcome["action"], error=outcome["error"], wall_s=outcome["wall_s"])
    summary: dict = {}
    if outcome["status"] == "ok":
        try:
            summary = _files.read_json(run.path / "summary.json", "summary", DataError)
        except (DataError, DatasetNotFoundError) as err:
            row.update(status="failed",
                       error=f"{one_line(err)} (is the sweep folder on a file system the workers share?)")
    for key in SUMMARY_COLUMNS:
        row[key] = summary.get(key)
    quality = summary.get("sample_quality_vs_test")
    row.update(quality if isinstance(quality, dict) else {})
    return row


def _columns(rows: list[dict], keys: Sequence[str]) -> list[str]:
    fixed = ["run", *keys, "seed", "status", "action", "error", "wall_s", *SUMMARY_COLUMNS]
    quality = [k for k in metrics.METRIC_KEYS if any(k in row for row in rows)]
    return fixed + quality


def write_results(rows: list[dict], keys: Sequence[str], path: str | os.PathLike) -> None:
    """Write ``rows`` as ``results.csv`` (atomically; empty cells for missing values)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=_columns(rows, keys), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(Path(path), buffer.getvalue().encode())


def _x_key(rows: list[dict], keys: list[str]) -> str:
    """The swept key along x: the numeric one with the most levels, else the first."""
    def numeric(key: str) -> bool:
        return all(isinstance(r[key], (int, float)) and not isinstance(r[key], bool) for r in rows)

    levels = {key: len({r[key] for r in rows}) for key in keys}
    ranked = sorted(keys, key=lambda key: (not numeric(key), -levels[key], keys.index(key)))
    return ranked[0]


def summary_figure(rows: list[dict], keys: Sequence[str]) -> Any:
    """One panel per metric (``PLOTTED``, where a finished run has it) against one swept key:
    the mean over the seeds with bars from their minimum to their maximum, one series per
    combination of the other swept keys (pooled when there are more than ``MAX_SERIES``),
    one legend for all panels.

    The key along x is the numeric one with the most levels (else the first); the other keys'
    values tell the series apart.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .. import plotstyle

    ok = [r for r in rows if r["status"] == "ok"]
    shown = [m for m in PLOTTED if any(isinstance(r.get(m), (int, float)) for r in ok)]
    keys = list(keys) or ["seed"]
    key = _x_key(rows, keys)
    levels = list(dict.fromkeys(r[key] for r in rows))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)
    xs = {v: (v if numeric else i) for i, v in enumerate(levels)}
    others = [k for k in keys if k not in (key, "seed")]
    groups: dict[str, list[dict]] = {}
    for r in ok:
        groups.setdefault(", ".join(f"{k}={r[k]}" for k in others), []).append(r)
    if len(groups) > MAX_SERIES:
        groups = {"pooled over " + ", ".join(others): ok}
    seeds = len({r["seed"] for r in ok})
    with plotstyle.style():
        n = max(1, len(shown))
        ncols = plotstyle.panel_columns(n)
        fig = plt.figure(figsize=(3.8 * ncols, 3.0 * -(-n // ncols) + 0.6))
        axes = plotstyle.panel_grid(fig, len(shown))
        for ax, metric in zip(axes, shown):
            for label, members in groups.items():
                points = []
                for level in levels:
                    ys = [r[metric] for r in members if r[key] == level and isinstance(r.get(metric), (int, float))]
                    if ys:
                        points.append((xs[level], np.mean(ys), min(ys), max(ys)))
                if points:
                    x, mean, low, high = (np.array(c, dtype=float) for c in zip(*points))
                    spread = np.maximum([mean - low, high - mean], 0.0)  # the mean may round past equal values
                    ax.errorbar(x, mean, yerr=spread, marker="o", capsize=3, label=label or None)
            if not numeric:
                ax.set_xticks(list(xs.values()), [str(v) for v in levels])
                ax.set_xlim(-0.5, len(levels) - 0.5)
            name, unit, title = LABELS[metric]
            ax.set(xlabel=plotstyle.quantity(key, plotstyle.CODE_UNITS if key in CODE_UNIT_KEYS else None),
                   ylabel=plotstyle.quantity(name, unit), title=title)
            ax.grid(True)
        if shown:
            fig.suptitle(f"mean over {seeds} seed{'s' if seeds != 1 else ''}, bars: minimum to maximum")
            plotstyle.figure_legend(fig, axes, loc="outside lower center")
        else:
            fig.text(0.5, 0.5, "no finished runs: see results.csv", ha="center", va="center")
    return fig
