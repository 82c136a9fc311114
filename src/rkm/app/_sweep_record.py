"""One OUT, one sweep: ``OUT/sweep.json`` records the base configuration and the swept keys of a sweep.

A sweep started on a folder that holds another sweep (another base configuration, or other swept keys) is
refused with one line before anything runs, so two studies are never mixed in one ``results.csv``. What a
re-run may change is what a resume of one run may change (:data:`rkm.app._runfolder.RESUMABLE`): a larger
``model.max_epochs`` extends every run, and more values or seeds of the same keys add runs. It may not leave
out a run the folder's sweep ran (the record lists them), or ``results.csv`` and ``summary.png`` would show
only part of the folder's runs. The record is checked and written under a lock on the folder, so concurrent
identical sweeps stay safe and two different ones cannot both claim it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..io import _files
from ..io.savepoints import atomic_write
from ._runfolder import RESUMABLE
from .config import DEFAULTS

RECORD_NAME = "sweep.json"
"""The record of the sweep in its folder."""
_LOCK_NAME = ".sweep.json.lock"
FORMAT = 1


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples as lists), for comparing a configuration with a recorded one."""
    return json.loads(json.dumps(value, default=str))


def differences(held: dict, wanted: dict) -> list[str]:
    """``table.key (old -> new)`` of every setting of two configurations that a resume may not change."""
    return [f"{t}.{k} ({held.get(t, {}).get(k)!r} -> {wanted[t][k]!r})" for t in DEFAULTS for k in DEFAULTS[t]
            if (t, k) not in RESUMABLE and held.get(t, {}).get(k) != wanted[t][k]]


def _check(record: dict, path: Path, base: dict, keys: list[str]) -> None:
    if not isinstance(record.get("base"), dict) or not isinstance(record.get("keys"), list):
        raise ConfigError(f"{path} is damaged (no base configuration or swept keys); restore it, or use another --out.")
    changed = differences(record["base"], base)
    if changed:
        raise ConfigError(f"{path.parent} holds a sweep of another base configuration ({', '.join(changed[:4])}"
                          f"{', ...' if len(changed) > 4 else ''}); use another --out for this one. (A re-run may "
                          "change only model.max_epochs, to extend the runs, and what runs log and draw.)")
    if sorted(record["keys"]) != sorted(keys):
        raise ConfigError(f"{path.parent} holds a sweep over {', '.join(record['keys']) or 'no key'}, not over "
                          f"{', '.join(keys) or 'no key'}; use another --out for this one.")
    held = record["base"].get("model", {}).get("max_epochs")
    if "model.max_epochs" not in keys and isinstance(held, int) and base["model"]["max_epochs"] < held:
        raise ConfigError(f"{path.parent} holds a sweep whose runs train {held} updates; a re-run can extend them "
                          f"(a larger model.max_epochs), not shorten them to {base['model']['max_epochs']}. Use "
                          "another --out.")


def _recorded(record: dict) -> tuple[dict[str, list], list]:
    """The grid and seeds a record holds (empty where damaged)."""
    grid, seeds = record.get("grid"), record.get("seeds")
    grid = {key: values for key, values in grid.items() if isinstance(values, list)} if isinstance(grid, dict) else {}
    return grid, seeds if isinstance(seeds, list) else []


def _left_out(record: dict, grid: dict[str, Sequence], seeds: Sequence[int], runs: Sequence[str]) -> list[str]:
    """The runs of the recorded sweep that this one leaves out: by run name, or, in a record of an rkm that did
    not list its runs, by grid value and seed."""
    if isinstance(record.get("runs"), list):
        return sorted(set(map(str, record["runs"])) - set(runs))
    held_grid, held_seeds = _recorded(record)
    left = [f"{key}={value}" for key, values in held_grid.items() for value in values
            if value not in _plain(list(grid.get(key, [])))]
    return left + [f"seed={seed}" for seed in held_seeds if seed not in seeds]


def _check_extends(record: dict, path: Path, grid: dict[str, Sequence], seeds: Sequence[int],
                   runs: Sequence[str]) -> None:
    left = _left_out(record, grid, seeds, runs)
    if left:
        held_grid, held_seeds = _recorded(record)
        held = "; ".join(f"{key}: {', '.join(map(str, values))}" for key, values in held_grid.items()) or "no grid"
        more = f" and {len(left) - 3} more" if len(left) > 3 else ""
        raise ConfigError(f"{path.parent} holds a sweep that also ran {', '.join(left[:3])}{more}, which this one "
                          "leaves out; a re-run may add grid values and seeds, not drop any, so that results.csv "
                          f"lists every run. Repeat its values ({held}; seeds {', '.join(map(str, held_seeds))}) and "
                          "add yours, or use another --out.")


def check_record(out: str | os.PathLike, base: dict, keys: list[str]) -> None:
    """Refuse, as :func:`claim` does, if ``out`` holds another sweep; writes nothing."""
    path = Path(out) / RECORD_NAME
    if os.path.lexists(path):
        _check(_files.read_json(path, "sweep record", ConfigError), path, _plain(base), keys)


def claim(out: str | os.PathLike, base: dict, grid: dict[str, Sequence], seeds: Sequence[int],
          runs: Sequence[str] = ()) -> None:
    """Record this sweep and its ``runs`` (their names) in ``out`` (``sweep.json``), or refuse if ``out`` holds
    another sweep.

    Raises
    ------
    ConfigError
        ``out`` holds a sweep of another base configuration (a resumable setting aside), of
        other swept keys, of runs longer than this sweep's ``model.max_epochs``, or of a run
        this sweep leaves out (a re-run may add grid values and seeds, not drop any); or its
        record is damaged.
    """
    from filelock import FileLock

    folder = Path(out)
    _files.make_folder(folder, "out")
    path = folder / RECORD_NAME
    plain = _plain(base)
    keys = list(grid)
    with FileLock(folder / _LOCK_NAME):
        check_record(folder, base, keys)
        if os.path.lexists(path):
            _check_extends(_files.read_json(path, "sweep record", ConfigError), path, grid, seeds, runs)
        record = {"format": FORMAT, "base": plain, "keys": keys,
                  "grid": {key: _plain(list(values)) for key, values in grid.items()}, "seeds": list(seeds),
                  "runs": sorted(runs)}
        atomic_write(path, (json.dumps(record, indent=2) + "\n").encode())
