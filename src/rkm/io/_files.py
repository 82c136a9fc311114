"""Opening the files rkm reads (regular files only, opened without blocking, their size known first), and
refusing an output file that is not a regular file before any work.

Every reader of rkm (save points, data files, IDX files, pickles, configuration files, a run's
``metrics.csv``, ``summary.json`` and ``data.json``) opens its file here. The file is opened with
``O_NONBLOCK``, so opening a FIFO never waits for a writer, and anything ``fstat`` does not call a
regular file (a FIFO, a device such as ``/dev/zero``, a directory, a socket) is refused before a
byte is read. The caller gets the size, so it can hold what the file declares against what it
holds before it allocates.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..core import _checks
from ..errors import ConfigError, RKMError

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


def open_fd(path: str | os.PathLike, what: str, error: type[RKMError],
            missing: type[RKMError] | None = None) -> tuple[int, int]:
    """``(fd, size)`` of the regular file ``path``, opened for reading without blocking.

    ``what`` names the file in messages ("save point", "data file"...). A missing file raises
    ``missing`` (default ``error``), anything else that is not a regular file ``error``.
    """
    try:
        fd = os.open(path, _FLAGS)
    except FileNotFoundError:
        raise (missing or error)(f"{what} {path} does not exist.") from None
    except OSError as err:
        raise error(f"cannot open {what} {path}: {err.strerror or err}.") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is {_kind(info.st_mode)}, not a regular file; rkm reads {what}s only from regular "
                        "files.")
    except BaseException:
        os.close(fd)
        raise
    return fd, info.st_size


def _kind(mode: int) -> str:
    return next((label for test, label in _KINDS if test(mode)), "not a regular file")


def check_output(path: str | os.PathLike, label: str, remedy: str, error: type[RKMError], *,
                 replaced: bool = False) -> None:
    """Refuse, before any work, an output file ``path`` that exists and is not a regular file.

    Writing would fail at the end on a folder or a device, and block for ever on a FIFO. Where the
    writer ``replaced`` the file atomically (``savepoints.atomic_write``), only a folder is refused:
    anything else is replaced. The message is ``{label}{path} is a folder, not a regular file;
    {remedy}.``: ``label`` names the option that gave the path where there is one (``"--out "``),
    ``remedy`` says what to do.
    """
    if os.path.lexists(path) and not os.path.isfile(path) and (os.path.isdir(path) or not replaced):
        kind = _kind(os.stat(path).st_mode) if os.path.exists(path) else "a broken symbolic link"
        raise error(f"{label}{path} is {kind}, not a regular file; {remedy}.")


def check_output_folder(folder: str | os.PathLike, name: str, files: Iterable[str], writer: str) -> Path:
    """The output folder ``folder`` (given as ``name``), refused with a ConfigError where it is not a folder or
    cannot become one, or where one of the ``files`` that ``writer`` (say ``"rkm sweep"``) writes in it is not a
    regular file; before any work."""
    path = _checks.folder(name, folder)
    for file in files:
        check_output(path / file, "", f"{writer} writes {file} there: remove or rename it", ConfigError)
    return path


def make_folder(folder: Path, name: str) -> None:
    """Create the output folder ``folder`` (given as ``name``) and its parents, or a ConfigError saying why not."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{name} {folder} cannot be created ({err.strerror or err}); choose a folder where you can "
                          "write.", names=(name,)) from None


@contextlib.contextmanager
def regular_file(path: str | os.PathLike, what: str, error: type[RKMError],
                 missing: type[RKMError] | None = None) -> Iterator[tuple[BinaryIO, int]]:
    """``(file, size)`` of the regular file ``path`` (see :func:`open_fd`), closed on exit."""
    fd, size = open_fd(path, what, error, missing)
    with os.fdopen(fd, "rb") as fh:
        yield fh, size


def read_bytes(path: str | os.PathLike, what: str, error: type[RKMError], missing: type[RKMError] | None = None,
               limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; ``error`` if it is larger than ``limit`` bytes."""
    with regular_file(path, what, error, missing) as (fh, size):
        if limit is not None and size > limit:
            raise error(f"{path} is {size} bytes, more than a {what} may have ({limit}); it is not a {what}.")
        try:
            return fh.read()
        except OSError as err:
            raise error(f"cannot read {what} {path}: {err.strerror or err}.") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"duplicate keys {sorted({k for k in keys if keys.count(k) > 1})}")
    return dict(pairs)


def json_object(text: bytes | str, what: str, source: Any, error: type[RKMError],
                whole: bool = False) -> dict[str, Any]:
    """``text`` parsed as a JSON object with unique keys, or ``error`` naming ``source``.

    ``what`` names the text: a part of ``source`` ("header"), or ``source`` itself when ``whole``
    ("summary"). Any failure of the parser (bad syntax, bytes that are not UTF-8, nesting too
    deep for Python's recursion limit) is the same error.
    """
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        lead = f"{source} is not a readable {what}" if whole else f"{source} has an unreadable {what}"
        raise error(f"{lead} ({reason}); the file is corrupted.") from None
    if not isinstance(value, dict):
        lead = f"{source} is not a {what}: its JSON" if whole else f"{source} has a {what} that"
        raise error(f"{lead} is not an object; the file is corrupted.")
    return value


def read_json(path: str | os.PathLike, what: str, error: type[RKMError], limit: int = 64 << 20) -> dict[str, Any]:
    """The JSON object of the regular file ``path`` (at most ``limit`` bytes), or ``error`` naming it."""
    return json_object(read_bytes(path, what, error, limit=limit), what, Path(path), error, whole=True)
