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
    "updates", "train_seconds", "test_reconstruction_error_k1", "energy", "power_f", "power_b",
    "relax_t_f_mean", "relax_t_b_mean",
)
"""Columns of ``results.csv`` copied from each run's ``summary.json``, before the sample-quality
metrics (the keys of :data:`rkm.evaluation.metrics.METRIC_KEYS` that any run has)."""

PLOTTED = ("test_reconstruction_error_k1", *metrics.METRIC_KEYS, "energy", "train_seconds")
"""Metrics drawn in ``summary.png``, where at least one run has them."""

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


def summary_figure(rows: list[dict], keys: Sequence[str]) -> Any:
    """Each metric (rows of panels) against each swept key (columns): the mean over the
    seeds with bars from their minimum to their maximum, one series per combination of
    the other swept keys (pooled when there are more than :data:`MAX_SERIES`)."""
    import matplotlib.pyplot as plt
    import numpy as np

    ok = [r for r in rows if r["status"] == "ok"]
    shown = [m for m in PLOTTED if any(isinstance(r.get(m), (int, float)) for r in ok)]
    keys = list(keys) or ["seed"]
    fig, axes = plt.subplots(max(1, len(shown)), len(keys), figsize=(3.6 * len(keys) + 1, 2.5 * max(1, len(shown))),
                             squeeze=False, layout="constrained")
    for j, key in enumerate(keys):
        levels = list(dict.fromkeys(r[key] for r in rows))
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in levels)
        xs = {v: (v if numeric else i) for i, v in enumerate(levels)}
        others = [k for k in keys if k != key and k != "seed"]
        groups: dict[str, list[dict]] = {}
        for r in ok:
            groups.setdefault(", ".join(f"{k}={r[k]}" for k in others), []).append(r)
        if len(groups) > MAX_SERIES:
            groups = {"pooled over " + ", ".join(others): ok}
        for i, metric in enumerate(shown):
            ax = axes[i, j]
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
            ax.set_xlabel(key if i == len(shown) - 1 else "")
            ax.set_ylabel(metric if j == 0 else "")
            if i == 0 and any(groups):
                ax.legend(fontsize="x-small")
    if not shown:
        axes[0, 0].set_title("no finished runs")
    fig.suptitle("mean over seeds, bars: min to max")
    return fig
