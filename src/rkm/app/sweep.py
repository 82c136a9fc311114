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

    sweep.json      the base configuration and swept keys: one OUT holds one sweep
    runs/NAME/      one run folder per combination and seed, NAME like offset=0.5_seed=1
    results.csv     one row per run: swept values, seed, status, summary metrics
    summary.png     each metric against each swept key, mean and range over the seeds

Re-running a sweep skips the finished runs (:func:`is_finished`) and resumes the others
from their last save point; a re-run with a larger ``model.max_epochs`` extends every run by
resuming it. Another sweep (another base configuration or other swept keys) on the same
``out`` is refused (``rkm.app._sweep_record``). A run that fails for a reason of its own is
reported in ``results.csv`` with its error and does not stop the others.

The plan of a sweep (grid, seeds, runs), the task a worker executes and the results live in
the internal modules ``_sweep_plan``, ``_sweep_worker`` and ``_sweep_results``; this module
holds the entry :func:`run_sweep`, its execution on Dask and the ``rkm sweep`` command, and
names what a user calls of the others.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import _files
from ._commands import HELP, folder
from ._sweep_cluster import checked_scheduler, cluster_client, default_workers
from ._sweep_plan import MAX_RUNS, Run, load_sweep_config, parse_grid, parse_seeds, plan, split_sweep
from ._sweep_record import RECORD_NAME, check_record, claim
from ._sweep_results import SUMMARY_COLUMNS, result_row, summary_figure, write_results
from ._sweep_worker import LOCK_NAME, is_finished, one_line, train_one

__all__ = [
    "LOCK_NAME",
    "MAX_RUNS",
    "RECORD_NAME",
    "SUMMARY_COLUMNS",
    "Run",
    "default_workers",
    "is_finished",
    "load_sweep_config",
    "parse_grid",
    "parse_seeds",
    "plan",
    "result_row",
    "run_sweep",
    "split_sweep",
    "summary_figure",
    "train_one",
    "write_results",
]


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
        Bad grid keys or values, seeds or options, more than :data:`MAX_RUNS` runs, or an
        ``out`` that holds another sweep, is not a folder, or holds a folder where a file
        of the sweep goes, found before any run starts.
    """
    if not str(out).strip():
        raise ConfigError("out is empty; name the sweep folder, e.g. out='sweeps/NAME'.")
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
    out = _files.check_output_folder(out, "out", ("results.csv", "summary.png", RECORD_NAME), "rkm sweep")
    check_record(out, config, list(grid))
    runs = plan(config, grid, seeds, out, local=client is None and scheduler is None, progress=progress)
    _check_folders([Path(out) / "runs", *(run.path for run in runs)])
    address = None if scheduler is None else checked_scheduler(scheduler)
    claim(out, config, grid, seeds, [run.name for run in runs])
    keys = list(grid)
    skipped = {"status": "ok", "action": "skipped", "error": "", "wall_s": None}
    outcomes = {run.name: skipped for run in runs if is_finished(run.path, run.config)}
    todo = [run for run in runs if run.name not in outcomes]

    def rows() -> list[dict]:
        return [result_row(r, outcomes[r.name]) for r in runs if r.name in outcomes]

    bar = _Progress(len(runs), len(outcomes), progress)
    try:
        if todo:
            with cluster_client(client, address, workers) as active:
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


def _check_folders(paths: list[Path]) -> None:
    """Refuse, before any work, a sweep folder, its ``runs/`` or a run folder that is there but not a folder."""
    for path in paths:
        if os.path.lexists(path) and not path.is_dir():
            raise ConfigError(f"{path} is a file, not a folder; move it away, or use another --out.")


# ------------------------------------------------------------------ the command
def add_command(subparsers: Any) -> None:
    """Register ``rkm sweep`` on the ``rkm`` command's sub-parsers."""
    p = subparsers.add_parser(
        "sweep",
        help=HELP["sweep"],
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
    p.add_argument("--out", type=folder("--out sweeps/NAME"), required=True, help="the sweep folder, e.g. sweeps/NAME")
    p.add_argument("--workers", type=int, help="worker processes of the embedded cluster (default: available cores)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run on this Dask scheduler (tcp://HOST:PORT or scheduler file)")
    p.add_argument("--set", action="append", metavar="TABLE.KEY=VALUE", help="any setting of the base configuration")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def cmd_sweep(args: argparse.Namespace, overrides: dict) -> int:
    """``rkm sweep``: run the sweep, print where the results are; ``overrides`` are the flags' settings."""
    import distributed  # configures its loggers when imported

    if not args.verbose:  # Dask's own messages (a worker killed as the cluster closes...) only with -v
        logging.getLogger(distributed.__name__).setLevel(logging.ERROR)
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
