"""Run folders that cannot be broken: one writer at a time, checked resumes and restarts, truthful logs.

:func:`rkm.app.run.train_run` (and so ``rkm train``) works on a run folder through a :class:`RunFolder`:

* **One writer.** It holds an exclusive OS lock (``fcntl.flock``) on ``RUN/.lock`` for the whole
  run, and writes its PID there. A second ``rkm train``, ``--resume`` or ``--restart`` of the
  same folder is refused with a :class:`~rkm.errors.RunInUseError` naming that PID. The OS
  releases the lock when the process ends, however it ends (``kill -9`` included), so the
  folder can be resumed at once. ``rkm generate``, ``evaluate`` and ``plot`` only read and do
  not take the lock.
* **Three states, three commands.** A folder holds no run, a run that stopped before its first
  save point, or a run with save points. A new run needs the first (``rkm train``), a restart
  the first two (``--restart``: the run starts over), a resume the last (``--resume``). Each
  refusal names the command that works in the folder's state, so two refusals never point at
  each other.
* **Checked resumes.** Before anything is written: the settings may differ from the run's
  ``config.toml`` only in :data:`RESUMABLE` (the others fix the trajectory); the data must be
  the data the run started with (``data.json`` records its SHA-256) and fit the model; the
  model of the latest save point must have the settings ``config.toml`` records. Then
  ``metrics.csv`` keeps only its rows up to the save point resumed from (each update once, in
  order; a row cut short by a kill is dropped), and ``config.toml`` records the new values.
* **Save points of this run only.** ``run.json`` names the run (32 random hexadecimal digits made
  when it starts); every save point records it (format 3), and one of another run (copied into
  ``model_states/``) is refused by a resume and by the commands that read the folder.
* **Full disks.** A write that fails for lack of space, a quota or a read-only file system
  ends in a :class:`~rkm.errors.StorageError` that names the file and the last good save point,
  which is never touched.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import hyperparams
from ..core import _checks
from ..errors import ConfigError, DataError, RKMError, RunInUseError, StorageError
from ..io import _files, savepoints
from ..io.datasets import Dataset
from ..machine._schema import RUN_PATTERN
from .metrics_log import csv_fields

try:
    import fcntl
except ImportError:  # not POSIX: no OS lock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("rkm.app.run")

LOCK_NAME = ".lock"
DATA_NAME = "data.json"
RUN_NAME = "run.json"
"""The run's identifier, made when the run starts; every save point of the run records it."""
RESUMABLE = frozenset({("model", "max_epochs"), ("run", "log_every"), ("run", "progress"), ("run", "n_generate"),
                       ("run", "generate_k"), ("run", "quality_every"), ("run", "n_quality"), ("run", "quick"),
                       ("data", "image_shape")})
"""The settings a resume may change: how long to train, how often to log, what the figures and the
quality columns show and how much the evaluation generates."""
WRITE_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})
"""The ``errno`` values of a write that failed for lack of room or a read-only file system."""
_UNTOUCHED_BY_RESUME = ("max_epochs", "lr", "device", "fast_matmul", "average_data", "seed")
"""Model settings that a save point's model is not compared on (they are set at load, or checked apart)."""


class RunLock:
    """An exclusive ``fcntl.flock`` on ``folder/.lock``, recording the holder's PID in the file."""

    def __init__(self, folder: Path) -> None:
        self.path, self.fd = folder / LOCK_NAME, -1

    def acquire(self) -> None:
        """Take the lock, or raise RunInUseError naming the process that holds it."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags, 0o666)
        except OSError as err:
            raise ConfigError(f"cannot open the lock file {self.path} ({err.strerror or err}); if it is a "
                              "symbolic link or a folder, remove it.") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError(f"{self.path} is not a regular file; remove it.")
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            holder = f"process {pid}" if pid.isdigit() else "another process"
            raise RunInUseError(f"{self.path.parent} is in use: {holder} (rkm train) holds its lock; wait for it "
                                "to finish or stop it, then run this again.") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        """Let the lock go (closing the file releases it)."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def fingerprint(dataset: Dataset) -> dict[str, Any]:
    """What ``data.json`` records of a run's data: name, sizes and a SHA-256 of the train and test rows."""
    h = hashlib.sha256()
    for part in (dataset.train, dataset.test):
        h.update(f"{part.dtype.str}{part.shape}".encode())
        h.update(np.ascontiguousarray(part).data)
    return {"dataset": dataset.name, "n_visible": int(dataset.n_visible), "train_rows": int(len(dataset.train)),
            "test_rows": int(len(dataset.test)), "sha256": h.hexdigest()}


class RunFolder:
    """The run folder ``path`` of the model ``name``: its state, its lock, its checks."""

    def __init__(self, path: str | os.PathLike, name: str) -> None:
        self.path = _checks.folder("run_dir", path)
        self.name = name
        self.states = self.path / "model_states"
        self.config_path, self.metrics_path = self.path / "config.toml", self.path / "metrics.csv"
        self.data_path, self.summary_path = self.path / DATA_NAME, self.path / "summary.json"
        self.run_path = self.path / RUN_NAME

    # ---------------------------------------------------------------- state
    def latest(self) -> tuple[int, Path] | None:
        """``(update, path)`` of the latest save point, or None."""
        points = savepoints.list_savepoints(self.states, self.name)
        return points[-1] if points else None

    def holds_run(self) -> bool:
        """Whether a run was started here (a config, a metrics log or a save point exists)."""
        return self.config_path.exists() or self.metrics_path.exists() or self.latest() is not None

    def intact_note(self) -> str:
        """Where the last good save point is, for error messages."""
        latest = self.latest()
        return (f"The last good save point, {latest[1]} (update {latest[0]}), is intact." if latest
                else "No save point had been written.")

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the folder's lock (creating the folder); turn a failed write into a StorageError.

        A folder this session created and left without a run is removed again.
        """
        created = not self.path.exists()
        self.check_outputs()
        _files.make_folder(self.path, "run_dir")
        lock = RunLock(self.path)
        lock.acquire()
        try:
            yield
        except OSError as err:
            if isinstance(err, RKMError) or err.errno not in WRITE_ERRORS:
                raise
            raise self.storage_error(err) from err
        finally:
            if created and not self.holds_run():
                for leftover in (lock.path, self.data_path, self.run_path):
                    with contextlib.suppress(OSError):
                        leftover.unlink()
            lock.release()
            if created and not self.holds_run():
                with contextlib.suppress(OSError):
                    self.path.rmdir()

    def check_outputs(self) -> None:
        """Refuse, before any work, a file the run writes that is a folder, or a folder it writes in that is not
        a folder (the writes would fail at the end; a FIFO in a file's place is replaced, see the readers)."""
        for path, what in ((self.config_path, "settings"), (self.metrics_path, "metrics log"),
                           (self.summary_path, "summary"), (self.data_path, "data record"), (self.run_path, "record")):
            _files.check_output(path, "", f"the run writes its {what} there: remove or rename it", ConfigError,
                                replaced=True)
        for folder in (self.states, self.path / "figures"):
            if os.path.lexists(folder) and not folder.is_dir():
                raise ConfigError(f"{folder} is not a folder; the run writes its {folder.name.replace('_', ' ')} in "
                                  "it: remove or rename it.")

    def owns(self, path: str | os.PathLike) -> bool:
        """Whether ``path`` is one of the files the run keeps (its settings, records, metrics, summary, lock)
        or lies in its ``model_states/``: no other command may write there."""
        where = Path(os.path.realpath(path))
        kept = (self.config_path, self.metrics_path, self.summary_path, self.data_path, self.run_path,
                self.path / LOCK_NAME)
        states = Path(os.path.realpath(self.states))
        return any(where == Path(os.path.realpath(p)) for p in kept) or states in where.parents

    def storage_error(self, err: OSError) -> StorageError:
        """The StorageError of a failed write in this folder: which file, why, and the last good save point."""
        latest = self.latest()
        return savepoints.storage_error(err, err.filename or self.path, latest[1] if latest else None, "the file")

    # -------------------------------------------------------------- commands
    def check_new(self) -> None:
        """Refuse to start a new run over an existing one, naming the command that continues it."""
        latest = self.latest()
        if latest is not None:
            raise ConfigError(f"{self.path} already holds a run with save points (the latest at update {latest[0]}); "
                              f"continue it with `rkm train --resume {self.path}` (resume=True), or choose another "
                              "--run-dir.", names=("resume", "restart"))
        if self.holds_run():
            raise ConfigError(f"{self.path} holds a run that stopped before its first save point; start it over with "
                              f"`rkm train --restart {self.path}` (restart=True), or choose another --run-dir.",
                              names=("resume", "restart"))

    def check_restart(self) -> None:
        """Refuse to restart a run that has save points (a restart would discard them)."""
        latest = self.latest()
        if latest is not None:
            raise ConfigError(f"{self.path} has save points (the latest at update {latest[0]}), which a restart would "
                              f"discard; continue the run with `rkm train --resume {self.path}` (resume=True), or "
                              f"delete {self.states} to start over.", names=("resume", "restart"))
        self.check_named()

    def check_named(self) -> None:
        """Refuse a folder whose save points are all of another model than the run's ``name`` (its config.toml
        was edited or replaced): resuming would find none, restarting would write beside them."""
        if self.latest() is not None or not self.states.is_dir():
            return
        others = sorted({p.name.rsplit("_t", 1)[0] for p in self.states.glob("*_t*.safetensors")})
        if others:
            raise ConfigError(f"{self.config_path} names the run {self.name!r}, but {self.states} holds save points "
                              f"of {', '.join(map(repr, others))} only: {self.config_path} does not match the run's "
                              "save points. Put the run's own config.toml back (its run.name).")

    def check_resume(self) -> None:
        """Refuse to resume a folder without a run or without a save point, naming the command that works."""
        if not self.config_path.is_file():
            raise ConfigError(f"{self.path} is not a run folder (no config.toml); start a run there with "
                              f"`rkm train --run-dir {self.path}`.")
        if self.latest() is None:
            savepoints.refuse_pickles(self.states, self.name)
            self.check_named()
            raise ConfigError(f"{self.path} has no save point to resume from: the run stopped before its first one. "
                              f"Start it over with `rkm train --restart {self.path}` (restart=True).")

    def clear(self) -> None:
        """Remove what a run that stopped before its first save point left: its log, summary, data and run record."""
        for path in (self.metrics_path, self.summary_path, self.data_path, self.run_path):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        if self.states.is_dir():
            savepoints.clean_temporaries(self.states)

    # ------------------------------------------------------------------ the run
    def start_run(self) -> str:
        """A new run's identifier, written to ``run.json`` (atomically)."""
        run = secrets.token_hex(16)
        savepoints.atomic_write(self.run_path, (json.dumps({"run": run}) + "\n").encode())
        return run

    def recorded_run(self) -> str | None:
        """The identifier ``run.json`` records, or None when there is none (a run of an older rkm)."""
        if not os.path.lexists(self.run_path):
            return None
        run = _files.read_json(self.run_path, "run record", ConfigError).get("run")
        if not isinstance(run, str) or not RUN_PATTERN.match(run):
            raise ConfigError(f"{self.run_path} is damaged: it records the run {run!r}, not 32 hexadecimal digits. "
                              "Remove it (the save points' own run is then adopted).")
        return run

    def check_run(self, model: Any) -> None:
        """Refuse a model loaded from a save point of another run than this folder's (copied into it)."""
        recorded = self.recorded_run()
        if recorded is not None and model.run_id is not None and model.run_id != recorded:
            latest = self.latest()
            source = latest[1] if latest else self.states
            if self._first_run() == model.run_id:
                raise ConfigError(f"{self.run_path} names the run {recorded}, but the save points in {self.states} "
                                  f"belong to the run {model.run_id}: {RUN_NAME} was copied here from another run "
                                  f"folder. Remove {self.run_path} (the save points' run is then adopted).")
            raise ConfigError(f"{source} belongs to another run (run {model.run_id}, this folder's is {recorded}): it "
                              "was copied here from another run folder. Move it away; the run's own latest save point "
                              "is then used.")

    def _first_run(self) -> str | None:
        """The run the earliest save point records (None where it records none or cannot be read)."""
        points = savepoints.list_savepoints(self.states, self.name)
        try:
            run = savepoints.read_savepoint(points[0][1])[1]["state"].get("run") if points else None
        except RKMError:
            return None
        return run if isinstance(run, str) else None

    def bind(self, model: Any) -> None:
        """Set ``model.run_id`` to this folder's run: the recorded one (a save point of another is refused),
        else the save point's own, else a new one (a run of an older rkm); ``run.json`` then records it."""
        self.check_run(model)
        run = self.recorded_run() or model.run_id
        if run is None:
            run = self.start_run()
        elif not self.run_path.exists():
            savepoints.atomic_write(self.run_path, (json.dumps({"run": run}) + "\n").encode())
        model.run_id = run

    # ---------------------------------------------------------------- resume
    @staticmethod
    def refuse_changes(saved: dict, wanted: dict) -> None:
        """Raise a ConfigError listing every setting that differs from the run's and may not change on resume."""
        changed = [f"{table}.{key} ({saved[table][key]!r} -> {value!r})" for table, values in wanted.items()
                   for key, value in values.items()
                   if saved[table].get(key) != value and (table, key) not in RESUMABLE]
        if changed:
            allowed = ", ".join(f"{t}.{k}" for t, k in sorted(RESUMABLE))
            raise ConfigError(f"a resume cannot change {', '.join(changed)}: the run was trained with the old values. "
                              f"Only {allowed} may change; for other settings start a new run (rkm train --config "
                              "RUN/config.toml ... --run-dir NEW).")

    def check_data(self, dataset: Dataset) -> None:
        """Raise a ConfigError if the data is not the data the run started with (``data.json``)."""
        if not os.path.lexists(self.data_path):
            logger.info("%s has no %s (a run of an older rkm): its data cannot be compared.", self.path, DATA_NAME)
            return
        recorded = _files.read_json(self.data_path, "data record", ConfigError)
        if not (isinstance(recorded.get("dataset"), str) and isinstance(recorded.get("sha256"), str)
                and isinstance(recorded.get("train_rows"), int)):
            raise ConfigError(f"{self.data_path} is damaged: it records no dataset, SHA-256 and row count. Restore it "
                              "from a copy of the run, or remove it (the data is then not compared with the run's).")
        now = fingerprint(dataset)
        if recorded != now:
            raise ConfigError(f"the data of {self.path} changed since the run started ({self.data_path} records "
                              f"{recorded.get('dataset')!r} with SHA-256 {str(recorded.get('sha256'))[:12]}..., "
                              f"{recorded.get('train_rows')} training rows; it is now {now['dataset']!r}, "
                              f"{now['sha256'][:12]}..., {now['train_rows']} rows). Restore the data, or start a "
                              "new run.")

    def record_data(self, dataset: Dataset) -> None:
        """Write ``data.json`` (atomically)."""
        savepoints.atomic_write(self.data_path, (json.dumps(fingerprint(dataset), indent=2) + "\n").encode())

    def check_model(self, model: Any, config: dict, dataset: Dataset) -> None:
        """Raise a ConfigError if the save point's model does not have the settings of ``config`` or fit the data."""
        latest = self.latest()
        source = latest[1] if latest else self.states
        if dataset.n_visible != model.n_visible:
            raise ConfigError(f"the data has {dataset.n_visible} values per row but the model of {source} has "
                              f"{model.n_visible} visible units: it is not the run's data. Use the run's own data, as "
                              f"{self.config_path} and {self.data_path} record it.")
        m = config["model"]
        differences = [f"model.{key} = {value!r} there, {getattr(model, key)!r} in the save point"
                       for key, value in m.items() if key not in _UNTOUCHED_BY_RESUME
                       and getattr(model, key) != hyperparams.MODEL[key].constructor_value(value)]
        if m["seed"] is not None and model.seed != m["seed"]:
            differences.append(f"model.seed = {m['seed']} there, {model.seed} in the save point")
        if (m["average_data"] or m["centering"]) != (model.average_data is not None):
            differences.append("model.average_data differs")
        if config["run"]["lr_final"] is None and model.lr != m["lr"]:
            differences.append(f"model.lr = {m['lr']!r} there, {model.lr!r} in the save point")
        if differences:
            raise ConfigError(f"{self.config_path} does not match its save point {source}: "
                              f"{'; '.join(differences)}. The file was changed after the run started (an older rkm "
                              "rewrote it on a refused --resume); put the save point's values back, or start a new "
                              "run.")

    def truncate_metrics(self, update: int, columns: tuple[str, ...]) -> None:
        """Keep the rows of ``metrics.csv`` up to ``update``, each update once and in order, under ``columns``.

        Rows past the save point resumed from, repeated or unordered rows, and a last row cut
        short by a kill (no line end) are dropped. A log written with other columns (an older
        rkm) keeps its values under the names ``columns`` shares with its header, the new
        columns empty. The file is rewritten atomically, and only if that changes it.
        """
        if not os.path.lexists(self.metrics_path):
            logger.warning("%s is missing; it is written anew from update %d on (its rows before are lost).",
                           self.metrics_path, update)
            return
        try:
            raw = _files.read_bytes(self.metrics_path, "metrics log", ConfigError)
        except ConfigError as err:
            logger.warning("%s; it is written anew from update %d on (its rows before are lost).", str(err).rstrip("."),
                           update)
            raw = b""
        lines = raw.split(b"\n")[:-1]  # the last piece has no line end: empty, or cut short
        rows = [csv_fields(line.decode("utf-8", "replace").rstrip("\r")) or [] for line in lines]
        headed = bool(rows and rows[0] and rows[0][0] == columns[0])
        header = rows[0] if headed else list(columns)
        kept, last, damaged = [",".join(columns)], -1, 0
        for fields in rows[1 if headed else 0:]:
            if len(fields) != len(header) or not (fields[0].isascii() and fields[0].isdigit()):
                damaged += 1
            elif last < int(fields[0]) <= update:
                values = dict(zip(header, fields))
                kept.append(_csv_line([values.get(name, "") for name in columns]))
                last = int(fields[0])
            elif int(fields[0]) <= update:
                damaged += 1
        if damaged:
            logger.warning("%s had %d damaged, repeated or unordered rows; they are dropped (the other rows are kept).",
                           self.metrics_path, damaged)
        text = ("\r\n".join(kept) + "\r\n").encode()
        if text != raw:
            savepoints.atomic_write(self.metrics_path, text)


def read_summary(run_dir: str | os.PathLike, then: str = "It will be written anew.") -> dict | None:
    """The run's ``summary.json``, or None where it is missing, damaged or not a regular file (a FIFO, a
    device): it is derived, so a damaged one is logged, with ``then`` (what writes it anew), and treated as
    absent."""
    path = Path(run_dir) / "summary.json"
    if not os.path.lexists(path):
        return None
    try:
        return _files.read_json(path, "summary file", DataError)
    except DataError as err:
        logger.warning("%s %s", err, then)
        return None


def _csv_line(fields: list[str]) -> str:
    """One row as ``csv.writer`` writes it, without the line end."""
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow(fields)
    return out.getvalue()
