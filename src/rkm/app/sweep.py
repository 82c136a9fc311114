"""Sweeps: every combination of a grid of settings, over several seeds, on Dask distributed.

Each combination and seed is its own run folder, trained by :func:`rkm.app.run.train_run`
exactly as ``rkm train`` would train it. The runs execute on Dask's distributed
scheduler: by default an embedded ``LocalCluster`` of one-thread worker processes, or any
existing Dask cluster (``dask scheduler`` / ``dask worker`` on several machines, SLURM or
PBS through dask-jobqueue, Kubernetes). Dask was chosen because the same code then runs
on a laptop and on a cluster, and because its scheduler already retries the task of a
worker that died (``distributed.scheduler.allowed-failures``, 3 by default) on another
worker, which is the fault tolerance a long sweep needs. ``docs/sweep.md`` has the recipes.

The folder ``out`` of a sweep holds::

    runs/NAME/      one run folder per combination and seed, NAME like offset=0.5_seed=1
    results.csv     one row per run: swept values, seed, status, summary metrics
    summary.png     each metric against each swept key, mean and range over the seeds

Re-running a sweep skips the finished runs (:func:`is_finished`) and resumes the others
from their last save point; a run that fails for a reason of its own is reported in
``results.csv`` with its error and does not stop the others.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import io
import itertools
import json
import logging
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, RKMError
from ..evaluation import metrics
from ..hyperparams import fast_matmul_setting
from ..io.savepoints import atomic_write, savepoint_path
from ._runfolder import RunFolder
from .config import DEFAULTS, merge, read_config_file, resolve_config, validate
from .run import build_model, load_data, train_run

logger = logging.getLogger("rkm.app.sweep")

LOCK_NAME = ".sweep.lock"
"""File in each run folder that the worker training the run holds an exclusive lock on."""

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


# ------------------------------------------------------------------ the grid
def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """The grid of ``--grid table.key=value1,value2,...`` options.

    Raises
    ------
    ConfigError
        An option without ``=``, a key without a table, an empty value or a key given twice.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise ConfigError(f"--grid expects table.key=value1,value2,... (e.g. model.offset=0,0.5,1), got {item!r}.")
        values = [v.strip() for v in text.split(",")]
        if "" in values:
            raise ConfigError(f"--grid {key} has an empty value in {text!r}; separate values by single commas.")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid.")
        grid[key] = values
    return grid


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count ``N`` (seeds 0 to N-1) or a comma-separated list of seeds."""
    parts = [p.strip() for p in str(text).split(",") if p.strip()]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds takes a count (3: seeds 0, 1, 2) or a list (0,5,9), got {text!r}.") from None
    if "," not in str(text):
        if not numbers or numbers[0] < 1:
            raise ConfigError(f"--seeds N needs N >= 1, got {text!r}.")
        return list(range(numbers[0]))
    return numbers


def grid_from_table(table: Mapping, where: str) -> tuple[dict[str, list], list[int] | None]:
    """Grid and seeds of a ``[sweep]`` TOML table.

    ``[sweep]`` takes ``seeds`` (a count or a list) and tables ``[sweep.model]``,
    ``[sweep.data]``, ``[sweep.run]`` (or dotted keys ``model.offset = [...]``) whose
    values are lists of the settings to sweep.
    """
    grid: dict[str, list] = {}
    seeds = None
    for name, value in table.items():
        if name == "seeds":
            seeds = parse_seeds(str(value)) if isinstance(value, int) and not isinstance(value, bool) else value
            if not isinstance(seeds, list):
                raise ConfigError(f"sweep.seeds in {where} must be a count or a list of seeds, got {value!r}.")
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"sweep.{name} in {where} is not a table; [sweep] takes seeds and tables [sweep.model], "
                "[sweep.data], [sweep.run] of value lists."
            )
        for key, values in value.items():
            if not isinstance(values, list):
                raise ConfigError(
                    f"sweep.{name}.{key} in {where} must be a list of values, got {values!r}; "
                    f"put a fixed setting in [{name}] instead."
                )
            grid[f"{name}.{key}"] = values
    return grid, seeds


def split_sweep(raw: Mapping, where: str, start: dict = DEFAULTS) -> tuple[dict, dict[str, list], list[int] | None]:
    """``raw`` (tables of a configuration, possibly with a ``[sweep]`` table) as ``(config, grid, seeds)``.

    ``config`` is ``start`` (default :data:`rkm.app.config.DEFAULTS`) with the other tables merged
    in, unset values dropped, so a full resolved configuration is accepted as well as a
    partial one; ``seeds`` is None when the ``[sweep]`` table names none.
    """
    raw = dict(raw)
    sweep = raw.pop("sweep", None)
    updates = {t: {k: v for k, v in values.items() if v is not None} if isinstance(values, Mapping) else values
               for t, values in raw.items()}
    config = merge(start, updates, where)
    grid, seeds = grid_from_table(sweep, where) if sweep is not None else ({}, None)
    return config, grid, seeds


def load_sweep_config(config_file: str | os.PathLike | None = None, preset: str | None = None,
                      overrides: dict | None = None) -> tuple[dict, dict, list[int] | None]:
    """Base configuration, grid and seeds of a TOML file (with an optional ``[sweep]`` table).

    Defaults, then ``preset``, then the file, then ``overrides``, as :func:`rkm.app.config.resolve_config`.
    Returns ``(config, grid, seeds)`` as :func:`split_sweep`.
    """
    grid: dict[str, list] = {}
    seeds: list[int] | None = None
    config = resolve_config(preset)
    if config_file is not None:
        config, grid, seeds = split_sweep(read_config_file(config_file), str(config_file), config)
    if overrides:
        config = merge(config, overrides, "the command line")
    return config, grid, seeds


# ------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Run:
    """One run of a sweep: its folder, swept values, seed and full configuration."""

    name: str
    path: Path
    values: dict[str, Any]
    seed: int
    config: dict


def _coerced_values(config: dict, key: str, raw_values: Sequence) -> list:
    """The values of one grid key, as the configuration machinery types them."""
    table, _, name = key.partition(".")
    if key == "model.seed":
        raise ConfigError("model.seed cannot be swept in the grid; list the seeds with --seeds (or sweep.seeds).")
    if not isinstance(raw_values, (list, tuple)) or not raw_values:
        raise ConfigError(f"grid {key} needs a non-empty list of values, got {raw_values!r}.")
    values = []
    for raw in raw_values:
        try:
            value = merge(config, {table: {name: raw}}, "the grid")[table][name]
        except ConfigError as err:
            if table not in DEFAULTS or name not in DEFAULTS[table]:
                raise
            raise ConfigError(f"bad grid value {key}={raw!r}: {err}") from None
        if value in values:
            raise ConfigError(f"grid {key} lists the value {raw!r} twice.")
        values.append(value)
    return values


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)) or "-"


def _check_machine_settings(config: dict, local: bool) -> dict:
    """The configuration to construct-check: on another machine's workers, device and
    fast_matmul are only checked for their form (what is available there is not known here)."""
    if local:
        return config
    m = config["model"]
    fast_matmul_setting(m["fast_matmul"])
    try:
        torch.device(m["device"])
    except (RuntimeError, TypeError):
        raise ConfigError(f"model.device={m['device']!r} is not a torch device; use 'cpu' or 'cuda'.") from None
    checked = copy.deepcopy(config)
    checked["model"].update(device="cpu", fast_matmul="auto")
    return checked


def _differences(a: dict, b: dict) -> list[str]:
    return [f"{t}.{k}" for t in DEFAULTS for k in DEFAULTS[t] if a[t][k] != b[t][k]]


def plan(base_config: dict, grid: Mapping[str, Sequence], seeds: Sequence[int], out: str | os.PathLike, *,
         local: bool = True) -> list[Run]:
    """Every run of a sweep, each checked as a run would check it, before anything starts.

    Parameters
    ----------
    base_config : dict
        A resolved configuration (:func:`rkm.app.config.resolve_config`).
    grid : mapping of str to sequence
        ``"table.key"`` -> values to sweep (strings as on the command line, or typed).
    seeds : sequence of int
        Seeds of each combination.
    out : path
        The sweep folder; runs go to ``out/runs/NAME``.
    local : bool
        The runs execute on this machine, so ``model.device`` and ``model.fast_matmul``
        are checked against it too.

    Raises
    ------
    ConfigError
        An unknown grid key, a value the configuration refuses, a combination whose
        model cannot be constructed, bad seeds, or an existing run folder that holds a
        run of another configuration. Data errors keep their type.
    """
    seeds = list(seeds)
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {seeds} lists a seed twice.")
    base = merge(base_config, {"run": {"progress": False}}, "the sweep")
    axes = {key: _coerced_values(base, key, values) for key, values in grid.items()}
    short = [key.partition(".")[2] for key in axes]
    labels = [s if short.count(s) == 1 else key for s, key in zip(short, axes)]
    root = Path(out).resolve() / "runs"
    datasets: dict[tuple, Any] = {}
    runs: list[Run] = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        updates: dict[str, dict] = {}
        for key, value in values.items():
            table, _, name = key.partition(".")
            updates.setdefault(table, {})[name] = value
        config = merge(base, updates, "the grid")
        described = ", ".join(f"{k}={v}" for k, v in values.items()) or "the base configuration"
        checked = _check_machine_settings(config, local)
        data_key = tuple(sorted(checked["data"].items()))
        try:
            validate(checked)
            if data_key not in datasets:
                datasets[data_key] = load_data(checked)
            build_model(checked, datasets[data_key])
        except RKMError as err:
            raise type(err)(f"grid combination {described}: {err}") from None
        prefix = "_".join(f"{label}={_slug(v)}" for label, v in zip(labels, combo))
        for seed in seeds:
            name = f"{prefix}_seed={seed}" if prefix else f"seed={seed}"
            runs.append(Run(name, root / name, values, seed, merge(config, {"model": {"seed": seed}}, "the sweep")))
    if len({r.name for r in runs}) != len(runs):
        raise ConfigError("two grid values give the same run folder name; make the values differ in letters or digits.")
    for run in runs:
        existing = run.path / "config.toml"
        if existing.is_file():
            held = resolve_config(config_file=existing)
            if held != run.config:
                keys = ", ".join(_differences(held, run.config)[:4])
                raise ConfigError(
                    f"{run.path} holds a run of another configuration ({keys} differ); "
                    "use another --out, or delete that folder to run it anew."
                )
    return runs


def is_finished(run_dir: str | os.PathLike, config: dict) -> bool:
    """A run is finished when its ``summary.json`` is complete at ``max_epochs`` updates,
    its ``config.toml`` is ``config``, and (when it saves) its final save point exists."""
    run_dir = Path(run_dir)
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False
    if not (run_dir / "config.toml").is_file() or resolve_config(config_file=run_dir / "config.toml") != config:
        return False
    final = config["model"]["max_epochs"]
    if summary.get("updates") != final:
        return False
    return not config["run"]["save"] or savepoint_path(run_dir / "model_states", config["run"]["name"], final).is_file()


# ------------------------------------------------------------------ one run, on a worker
def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def train_one(config: dict, run_dir: str | Path, topic: str | None = None, client_pid: int | None = None) -> dict:
    """Train, resume or skip one run of a sweep; the task a Dask worker executes.

    The run folder's lock (:data:`LOCK_NAME`) is taken first and held throughout, so a
    retry of a run whose worker died starts only once that worker's process is gone (the
    kernel releases the lock with the process). A run with a save point is resumed from
    its last one; a run interrupted before its first save point starts again.

    Parameters
    ----------
    config : dict
        The run's resolved configuration.
    run_dir : str
        Its folder.
    topic : str, optional
        Dask event topic on which the start of the run is announced (the progress bar).
    client_pid : int, optional
        Process id of the sweep's client: in any other process torch is set to one
        thread, so that concurrent runs do not compete for cores.

    Returns
    -------
    dict
        ``status`` ('ok' or 'failed'), ``action`` ('trained', 'resumed' or 'skipped'),
        ``error`` (one line, '' when ok) and ``wall_s`` (seconds of this attempt, None
        when skipped).
    """
    from filelock import FileLock

    if client_pid is not None and os.getpid() != client_pid:
        _worker_process_settings()
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(run_dir / LOCK_NAME):
        if topic is not None:
            _announce(topic, run_dir.name)
        if is_finished(run_dir, config):
            return {"status": "ok", "action": "skipped", "error": "", "wall_s": None}
        folder = RunFolder(run_dir, config["run"]["name"])
        resume = config["run"]["save"] and folder.latest() is not None
        restart = not resume and folder.holds_run()  # an attempt that died before its first save point
        action = "resumed" if resume else "trained"
        start = time.perf_counter()
        try:
            train_run(config, run_dir, resume=resume, restart=restart)
        except Exception as err:  # the run's own failure is its result; the sweep goes on
            logger.warning("run %s failed: %s", run_dir, one_line(err))
            return {"status": "failed", "action": action, "error": one_line(err), "wall_s": _seconds(start)}
        return {"status": "ok", "action": action, "error": "", "wall_s": _seconds(start)}


def _worker_process_settings() -> None:
    """One torch thread, and rkm's messages below warnings kept out of the worker's stderr."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    base = logging.getLogger("rkm")
    if not base.hasHandlers():
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        base.addHandler(handler)


def _seconds(start: float) -> float:
    return round(time.perf_counter() - start, 3)


def _announce(topic: str, name: str) -> None:
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # called outside a Dask worker
        return
    worker.log_event(topic, name)


# ------------------------------------------------------------------ results
def result_row(run: Run, outcome: Mapping) -> dict[str, Any]:
    """The ``results.csv`` row of a run: its swept values, seed, outcome and summary."""
    row: dict[str, Any] = {"run": run.name, **run.values, "seed": run.seed}
    row.update(status=outcome["status"], action=outcome["action"], error=outcome["error"], wall_s=outcome["wall_s"])
    summary: dict = {}
    if outcome["status"] == "ok":
        try:
            summary = json.loads((run.path / "summary.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError) as err:
            row.update(status="failed",
                       error=f"{one_line(err)} (is the sweep folder on a file system the workers share?)")
    for key in SUMMARY_COLUMNS:
        row[key] = summary.get(key)
    row.update(summary.get("sample_quality_vs_test", {}))
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


def _table(rows: list[dict]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the engine
class _Progress:
    """The progress bar over runs: done (the bar), running and failed (its postfix)."""

    def __init__(self, total: int, skipped: int, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, initial=skipped, unit="run", desc="runs done", dynamic_ncols=True,
                        disable=not enabled)
        self.running: set[str] = set()
        self.done: set[str] = set()
        self.failed = 0
        self.lock = threading.Lock()
        self._show()

    def _show(self) -> None:
        self.bar.set_postfix_str(f"running {len(self.running)}, failed {self.failed}")

    def started(self, event: Any) -> None:
        """Handler of the Dask event a worker logs when it starts a run (it may arrive after the run's result)."""
        with self.lock:
            if event[1] not in self.done:
                self.running.add(event[1])
                self._show()

    def finished(self, name: str, failed: bool) -> None:
        with self.lock:
            self.running.discard(name)
            self.done.add(name)
            self.failed += failed
            self.bar.update(1)
            self._show()

    def close(self) -> None:
        self.bar.close()


def default_workers() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _client(client: Any, scheduler: str | None, workers: int | None) -> Iterator:
    """The given client, a client of ``scheduler`` (an address or a scheduler file), or
    an embedded LocalCluster of ``workers`` one-thread processes."""
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        where = {"scheduler_file": scheduler} if Path(scheduler).is_file() else {"address": scheduler}
        try:
            remote = Client(**where, timeout="20s")
        except (OSError, TimeoutError) as err:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler} ({one_line(err)}); start it with "
                "`dask scheduler`, or pass its address (tcp://HOST:PORT) or scheduler file."
            ) from None
        with remote:
            yield remote
        return
    n = default_workers() if workers is None else workers
    threads = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0",
                      env=threads) as cluster, Client(cluster) as local:
        yield local


def _execute(client: Any, runs: list[Run], progress: _Progress) -> Iterator[tuple[Run, dict]]:
    """Submit ``runs`` to ``client``; yield ``(run, outcome)`` as they complete."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:12]
    topic = f"rkm-sweep-{token}"
    client.subscribe_topic(topic, progress.started)
    futures = {
        client.submit(train_one, run.config, str(run.path), topic, os.getpid(), key=f"rkm-run-{run.name}-{token}"): run
        for run in runs
    }
    try:
        for future in as_completed(futures):
            run = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # a worker that died too often (KilledWorker) or a lost task
                outcome = {"status": "failed", "action": "", "error": one_line(err), "wall_s": None}
            progress.finished(run.name, outcome["status"] == "failed")
            yield run, outcome
    finally:
        client.unsubscribe_topic(topic)
        for future in futures:
            future.release()


def run_sweep(base_config: dict | str | os.PathLike, grid: Mapping[str, Sequence] | None = None,
              seeds: int | Sequence[int] | None = None, out: str | os.PathLike = "sweeps/sweep", client: Any = None, *,
              workers: int | None = None, scheduler: str | None = None, progress: bool = True) -> Any:
    """Run every combination of ``grid`` for every seed, each as its own run folder.

    Parameters
    ----------
    base_config : dict or path
        The configuration every run starts from: tables as :data:`rkm.app.config.DEFAULTS`
        (full or partial), or a TOML file. A ``[sweep]`` table in either adds grid
        entries (``[sweep.model] offset = [0, 0.5]``) and ``seeds``.
    grid : mapping of str to sequence, optional
        ``"table.key"`` -> values, e.g. ``{"model.offset": [0, 0.5, 1]}``; overrides the
        same keys of a ``[sweep]`` table.
    seeds : int or sequence of int, optional
        A count (seeds 0 to N-1) or the seeds; default the ``[sweep]`` table's, else
        the base configuration's ``model.seed``.
    out : path
        The sweep folder (``runs/``, ``results.csv``, ``summary.png``). On a cluster it
        must be on a file system that the workers share.
    client : distributed.Client, optional
        Run on this client's cluster.
    workers : int, optional
        Without ``client`` or ``scheduler``: processes of the embedded LocalCluster
        (default: the cores available to this process).
    scheduler : str, optional
        Address (``tcp://host:8786``) or scheduler file of an existing Dask cluster.
    progress : bool
        Show a progress bar over the runs.

    Returns
    -------
    pandas.DataFrame or list of dict
        The rows of ``results.csv`` (a DataFrame when pandas is installed).

    Raises
    ------
    ConfigError
        Bad grid keys or values, seeds or options, found before any run starts.
    """
    if isinstance(base_config, (str, os.PathLike)):
        config, file_grid, file_seeds = load_sweep_config(base_config)
    else:
        config, file_grid, file_seeds = split_sweep(base_config, "base_config")
    grid = {**file_grid, **(grid or {})}
    if seeds is None:
        seeds = file_seeds
    return _table(_sweep(config, grid, seeds, out, client, workers, scheduler, progress))


def _sweep(config: dict, grid: dict, seeds: Any, out: Any, client: Any, workers: int | None,
           scheduler: str | None, progress: bool) -> list[dict]:
    """:func:`run_sweep` on a resolved configuration; returns the rows of ``results.csv``."""
    if seeds is None:
        seeds = [config["model"]["seed"]]
    elif isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = parse_seeds(str(seeds))
    if client is not None and (scheduler is not None or workers is not None):
        raise ConfigError("pass client, scheduler or workers, not more than one.")
    if scheduler is not None and workers is not None:
        raise ConfigError("--workers is for the embedded cluster; with --scheduler the cluster has its own workers.")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}.")
    runs = plan(config, grid, seeds, out, local=client is None and scheduler is None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    keys = list(grid)
    skipped = {"status": "ok", "action": "skipped", "error": "", "wall_s": None}
    outcomes = {run.name: skipped for run in runs if is_finished(run.path, run.config)}
    todo = [run for run in runs if run.name not in outcomes]

    def rows() -> list[dict]:
        return [result_row(r, outcomes[r.name]) for r in runs if r.name in outcomes]

    bar = _Progress(len(runs), len(outcomes), progress)
    try:
        if todo:
            with _client(client, scheduler, workers) as active:
                for run, outcome in _execute(active, todo, bar):
                    outcomes[run.name] = outcome
                    write_results(rows(), keys, out / "results.csv")
    finally:
        bar.close()
    table = rows()
    write_results(table, keys, out / "results.csv")
    from .. import plots

    plots.save(summary_figure(table, keys), out / "summary.png")
    return table


# ------------------------------------------------------------------ the command
def add_command(subparsers: Any) -> None:
    """Register ``rkm sweep`` on the ``rkm`` command's sub-parsers."""
    p = subparsers.add_parser(
        "sweep",
        help="train every combination of a grid of settings over several seeds (Dask)",
        description="Train every combination of the --grid values (and of a [sweep] table in --config) for "
        "every seed, each as its own run folder under OUT/runs/, on an embedded Dask LocalCluster or an "
        "existing Dask cluster (--scheduler). Writes OUT/results.csv (one row per run) and OUT/summary.png. "
        "Re-running the same command skips finished runs and resumes interrupted ones. Exit status 1 when "
        "a run failed (its error is in results.csv).",
    )
    p.add_argument("--config", type=Path, help="TOML base configuration, optionally with a [sweep] table")
    p.add_argument("--preset", help="ready-made base configuration: demo or bars")
    p.add_argument("--grid", action="append", metavar="TABLE.KEY=V1,V2,...",
                   help="values of one setting to sweep (repeat for more settings)")
    p.add_argument("--seeds", metavar="N|S1,S2,...", help="seeds per combination: a count (seeds 0..N-1) or a list")
    p.add_argument("--out", type=Path, required=True, help="the sweep folder, e.g. sweeps/NAME")
    p.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: available cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://HOST:PORT or scheduler file)")
    p.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="any setting of the base configuration")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_sweep(args: argparse.Namespace, overrides: dict) -> int:
    """``rkm sweep``: run the sweep, print where the results are; ``overrides`` are the flags' settings."""
    import distributed  # configures its loggers when imported

    if not args.verbose:  # the embedded scheduler's and nannies' messages
        logging.getLogger(distributed.__name__).setLevel(logging.WARNING)
    config, grid, seeds = load_sweep_config(args.config, args.preset, overrides)
    for key, values in parse_grid(args.grid or []).items():
        grid[key] = values
    if args.seeds is not None:
        seeds = parse_seeds(args.seeds)
    try:
        rows = _sweep(config, grid, seeds, args.out, None, args.workers, args.scheduler, not args.no_progress)
    except KeyboardInterrupt:
        print(f"\ninterrupted; run the same command again to resume the sweep in {args.out}", file=sys.stderr)
        return 130
    failed = [r for r in rows if r["status"] == "failed"]
    counts = {a: sum(r["action"] == a for r in rows if r["status"] == "ok") for a in ("trained", "resumed", "skipped")}
    print(f"{len(rows)} runs: {len(rows) - len(failed)} ok ({counts['trained']} trained, {counts['resumed']} resumed, "
          f"{counts['skipped']} already finished), {len(failed)} failed")
    for r in failed:
        print(f"  failed {r['run']}: {r['error']}")
    print(f"results: {args.out / 'results.csv'}")
    print(f"summary: {args.out / 'summary.png'}")
    return 1 if failed else 0
