"""One run of a sweep on a Dask worker: train, resume or skip it under its folder's lock.

Dask pickles :func:`train_one` by reference, so the workers import it from this module.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import torch

from ..io.savepoints import savepoint_path
from ._runfolder import RunFolder, read_summary
from .config import resolve_config
from .run import train_run

logger = logging.getLogger("rkm.app.sweep")

LOCK_NAME = ".sweep.lock"
"""File in each run folder that the worker training the run holds an exclusive lock on."""


def is_finished(run_dir: str | os.PathLike, config: dict) -> bool:
    """A run is finished when its ``summary.json`` is complete at ``max_epochs`` updates,
    its ``config.toml`` is ``config``, and (when it saves) its final save point exists."""
    run_dir = Path(run_dir)
    summary = read_summary(run_dir, "The run will be resumed to write it anew.")
    if summary is None:
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
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # a file where a folder goes (OUT/runs, the run's own folder)
        reason = "a file is in the way" if isinstance(err, (FileExistsError, NotADirectoryError)) else err.strerror
        error = f"cannot make the run folder {run_dir}: {reason}; move it away, or use another --out."
        logger.warning("run %s failed: %s", run_dir, error)
        return {"status": "failed", "action": "trained", "error": error, "wall_s": None}
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
    """One torch thread, and rkm's warnings on the worker's stderr (the worker process is the sweep's, so it
    configures its output as the rkm command does; rkm itself attaches only a NullHandler)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    base = logging.getLogger("rkm")
    if all(isinstance(h, logging.NullHandler) for h in base.handlers) and not logging.getLogger().handlers:
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
