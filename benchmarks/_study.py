"""The machinery of a resumable study: its folder and settings, its CSV of rows, its worker processes.

A study runs tasks (one training run each) in ``jobs`` processes with one torch thread each;
each run's row is appended to the study's CSV as soon as it ends, and a study started again in
the same folder runs only the tasks whose rows are missing.
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any


def claim(out: Path, settings: dict[str, Any]) -> None:
    """Make ``out`` the folder of a study with ``settings`` (``settings.json``); refuse one with other settings."""
    out.mkdir(parents=True, exist_ok=True)
    recorded, wanted = out / "settings.json", json.dumps(settings, indent=1)
    if recorded.is_file() and recorded.read_text() != wanted:
        raise SystemExit(f"{out} holds a study with other settings ({recorded}); pass another --out.")
    recorded.write_text(wanted)


def results(run: Callable[..., dict[str, Any]], tasks: list[tuple[Any, ...]], jobs: int) -> Iterator[dict[str, Any]]:
    """``run(*task)`` of every task, as each ends: in this process (``jobs`` 1), or in ``jobs`` spawned
    processes with one thread each."""
    if jobs == 1:
        yield from (run(*task) for task in tasks)
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run, *task) for task in tasks]
        yield from (future.result() for future in as_completed(futures))


def append_row(path: Path, row: dict[str, Any], columns: tuple[str, ...]) -> None:
    """Append ``row`` to the CSV ``path`` (written with the header ``columns`` if it does not exist yet)."""
    new = not path.is_file()
    with open(path, "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, restval="")
        if new:
            writer.writeheader()
        writer.writerow(row)


def read_rows(path: Path, text: tuple[str, ...]) -> list[dict[str, Any]]:
    """The rows of the CSV ``path`` (none if it does not exist): the ``text`` columns as written, ``seed`` as
    an int, every other cell as a float, an empty cell as None."""
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        for name, value in row.items():
            if name not in text:
                row[name] = None if value == "" else int(value) if name == "seed" else float(value)
    return rows
