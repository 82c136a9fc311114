"""Safe save points: safetensors files that cannot run code, cannot lie, and are never half-written.

A save point is one file ``{model_name}_t{update}.safetensors`` holding every tensor of
the model's state (parameters, Adam moments, persistent chains, centering offsets,
energy and power, the random generator's state) and, in the safetensors header, string
metadata: ``format``, ``format_version``, ``class``, ``config`` and ``state`` (JSON: the
constructor arguments, the update counter, the seed...) and ``sha256``.

Format 3 (written now). ``sha256`` covers every other metadata field and every tensor's
name, dtype, shape and bytes, so any change to the header or the tensors is a
:class:`~rkm.errors.CheckpointError` naming the file. The header binds the file to its place:
its ``config`` names the model and its ``state`` holds the update and (format 3) the run it
belongs to, which :func:`rkm.load_model` and a run folder hold against the file's name and the
folder (``rkm.machine._loading``).

Format 2 (rkm before runs were bound; still read) is format 3 without the run: a save point of
a run folder written then is accepted there without the run check.

Format 1 (written before; still read). Its ``sha256`` covers the tensors' names, dtypes and
bytes only. Its header is checked by the schema (``rkm.machine._schema``: every key, type, value
range and tensor shape), but an altered value that stays valid (another ``lr``, ``epoch``,
``seed``, ``max_epochs`` or ``model_beta``) cannot be detected. Loading a format-1 or format-2
file and saving it again writes format 3.

Reading never trusts a byte it has not checked: only regular files are opened (a FIFO, a
device such as ``/dev/zero`` or a directory is refused without reading, and opening never
blocks), the 8-byte header length is bounded by the file's size and safetensors' 100 MB
limit, the file must be exactly as long as its header announces, and nothing is
unpickled: a pickle (pyrkm's format) or any other file is refused.

Writing never leaves a half-state: the bytes go to a temporary file created exclusively
(``O_CREAT | O_EXCL | O_NOFOLLOW``, an unpredictable name, so a planted symlink is never
followed) in the target folder, are synced, then renamed over the target, and the folder is
synced; every failure path removes the temporary file. Temporary files left by killed
processes are removed on the next write in that folder.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from ..core import _checks
from ..errors import CheckpointError, ConfigError, RKMError, StorageError
from . import _files

__all__ = ["save_model", "write_savepoint", "read_savepoint", "parse_savepoint", "list_savepoints", "savepoint_path",
    "atomic_write", "clean_temporaries", "storage_error", "json_object", "refuse_pickles", "glob_escape", "FORMAT",
    "FORMAT_VERSION", "READABLE_VERSIONS", "SUFFIX", "MAX_HEADER_BYTES", "METADATA_KEYS"]

logger = logging.getLogger("rkm.io.savepoints")

FORMAT = "rkm-savepoint"
FORMAT_VERSION = 3
"""The version this rkm writes."""
READABLE_VERSIONS = (1, 2, 3)
"""The versions this rkm reads."""
SUFFIX = ".safetensors"
MAX_HEADER_BYTES = 100_000_000
"""Longest header a save point may announce (safetensors' own limit)."""
METADATA_KEYS = frozenset({"format", "format_version", "class", "config", "state", "sha256"})
"""The metadata fields of a save point, in both versions."""

_TEMPORARY = re.compile(r"^\.(?:.+\.(?P<pid>\d+)-[0-9a-f]{16}|.+\.safetensors\.(?P<old>\d+))\.tmp$")
"""Temporary files of :func:`atomic_write`, ``.{target}.{pid}-{16 hex digits}.tmp``, and of the save
points of rkm before format 2, ``.{target}.safetensors.{pid}.tmp``."""


def savepoint_path(model_state_path: str | os.PathLike, name: str, update: int) -> Path:
    """Path of the save point of ``name`` at ``update``."""
    return Path(model_state_path) / f"{name}_t{int(update)}{SUFFIX}"


def list_savepoints(model_state_path: str | os.PathLike, name: str) -> list[tuple[int, Path]]:
    """``(update, path)`` of every save point of ``name``, oldest first."""
    folder = Path(model_state_path)
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"^{re.escape(name)}_t(\d+){re.escape(SUFFIX)}$")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.match(p.name))]
    return sorted(found)


# ------------------------------------------------------------------ digests
def _tensor_bytes(tensor: torch.Tensor) -> memoryview:
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().data


def _digest_v1(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(str(tensors[name].dtype).encode())
        h.update(_tensor_bytes(tensors[name]))
    return h.hexdigest()


def _field(h: Any, data: bytes | memoryview) -> None:
    h.update(len(data).to_bytes(8, "little"))
    h.update(data)


def _digest(metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of every metadata field but ``sha256`` and every tensor's name, dtype, shape and bytes (formats 2
    and 3; the metadata includes ``format_version``, so a file cannot pass as the other version)."""
    h = hashlib.sha256(b"rkm-savepoint/2\n")
    fields = sorted(k for k in metadata if k != "sha256")
    _field(h, json.dumps(fields).encode())
    for key in fields:
        _field(h, metadata[key].encode("utf-8", "surrogatepass"))
    _field(h, json.dumps(sorted(tensors)).encode("utf-8", "surrogatepass"))
    for name in sorted(tensors):
        tensor = tensors[name]
        _field(h, f"{tensor.dtype}{list(tensor.shape)}".encode())
        _field(h, _tensor_bytes(tensor))
    return h.hexdigest()


# ------------------------------------------------------------------ writing
def _pid_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: keep the file
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True


def clean_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder``; returns the removed paths.

    A temporary file of a process that is still running is kept (it is writing); one that
    cannot be removed is logged and ignored.
    """
    removed = []
    try:
        entries = list(os.scandir(Path(folder)))
    except OSError:
        return []
    for entry in entries:
        match = _TEMPORARY.match(entry.name)
        if match is None or entry.is_dir(follow_symlinks=False):
            continue
        pid = int(match["pid"] or match["old"])
        if _pid_alive(pid):
            logger.info("kept %s: process %d, which made it, is running.", entry.path, pid)
            continue
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            continue
        except OSError as err:
            logger.warning("could not remove the stale temporary file %s (%s); it is ignored.", entry.path, err)
            continue
        logger.info("removed %s, a temporary file left by the ended process %d", entry.path, pid)
        removed.append(Path(entry.path))
    return removed


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(64):
        tmp = folder / f".{name}.{os.getpid()}-{secrets.token_hex(8)}.tmp"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(folder))


def _sync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    Raises the ``OSError`` of a failed write with ``path`` as its file name; the temporary
    file is removed on every failure path and the old file, if any, is untouched.
    """
    path = Path(path)
    folder = path.parent
    folder.mkdir(parents=True, exist_ok=True)
    clean_temporaries(folder)
    fd, tmp = _create_temporary(folder, path.name)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and exc.errno is not None and exc.filename is None:
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    _sync_folder(folder)


def write_savepoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Path:
    """Write a format-2 save point atomically: CPU ``tensors`` and a header of ``class``, ``config`` and ``state``.

    ``config`` and ``state`` are JSON-able dicts; ``sha256`` covers them and the tensors.
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "class": str(header["class"]),
        "config": json.dumps(header["config"]),
        "state": json.dumps(header["state"]),
    }
    metadata["sha256"] = _digest(metadata, tensors)
    path = Path(path)
    atomic_write(path, st_save(tensors, metadata=metadata))
    return path


def storage_error(err: OSError, path: str | os.PathLike, last: Path | None,
                  what: str = "the save point") -> StorageError:
    """The :class:`~rkm.errors.StorageError` of a failed write to ``path``: which file, why, and what is intact."""
    reason = err.strerror or str(err)
    intact = (f"The last good save point, {last}, is intact." if last is not None
              else "No save point had been written before.")
    error = StorageError(f"cannot write {what} {path}: {reason}. {intact} Free space (or make the folder "
                         "writable) and resume.")
    error.errno = err.errno
    return error


def save_model(model: Any, model_state_path: Any = "model_states/") -> Path:
    """Write the save point of ``model`` (anything with ``model_name``, ``epoch`` and ``savepoint()``,
    as :class:`rkm.RBM`) at its current update; returns its path.

    Raises
    ------
    StorageError
        The file could not be written (disk full, read-only file system...); the message
        names it and the last good save point, which is untouched.
    """
    if not callable(getattr(model, "savepoint", None)):
        raise ConfigError(f"model must be an rkm.RBM or rkm.RKM, got {type(model).__name__}: only a model has a "
                          "save point.", names=("model",))
    model_state_path = _checks.folder("model_state_path", model_state_path)
    tensors, header = model.savepoint()
    path = savepoint_path(model_state_path, model.model_name, model.epoch)
    try:
        return write_savepoint(path, tensors, header)
    except OSError as err:
        if isinstance(err, RKMError):
            raise
        points = list_savepoints(model_state_path, model.model_name)
        raise storage_error(err, path, points[-1][1] if points else None) from err


# ------------------------------------------------------------------ reading
def _refusal(path: Any, head: bytes) -> CheckpointError:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        kind = "a pickle or torch.save archive (pyrkm's format)"
        return CheckpointError(
            f"{path} is {kind}, not an rkm save point. rkm never unpickles files: loading a "
            "pickle runs arbitrary code. Convert pyrkm save points with `rkm convert-pyrkm FOLDER`."
        )
    return CheckpointError(f"{path} is not an rkm save point (no safetensors header); it may be truncated or "
                           "another file.")


def json_object(text: bytes | str, what: str, source: Any) -> dict[str, Any]:
    """``text`` parsed as a JSON object with unique keys, or a CheckpointError naming ``source``."""
    return _files.json_object(text, what, source, CheckpointError)


def _header_length(head: bytes, size: int, source: Any) -> int:
    """The header length the first 8 bytes announce, checked against the file's ``size``."""
    if size < 10:
        raise CheckpointError(f"{source} is truncated ({size} bytes).")
    if head[8:9] != b"{":
        raise _refusal(source, head[:8])
    length = int.from_bytes(head[:8], "little")
    if length < 2 or length > MAX_HEADER_BYTES:
        raise CheckpointError(f"{source} announces a {length}-byte header, more than a save point may have "
                              f"({MAX_HEADER_BYTES}); the file is corrupted.")
    if 8 + length > size:
        raise CheckpointError(f"{source} is truncated: its header promises {length} bytes, the file has "
                              f"{size - 8}.")
    return length


def _parse_header(raw: bytes, source: Any) -> tuple[dict[str, str], int]:
    """The metadata and the tensor-data size of the safetensors header ``raw``."""
    table = json_object(raw, "header", source)
    metadata = table.pop("__metadata__", None)
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise CheckpointError(f"{source} is a safetensors file but not an rkm save point (no metadata of strings).")
    end = 0
    for name, entry in table.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)):
            raise CheckpointError(f"{source} has a malformed entry for tensor {name!r}; the file is corrupted.")
        end = max(end, offsets[1])
    return metadata, end


def _check_size(size: int, announced: int, source: Any) -> None:
    if size > announced:
        raise CheckpointError(f"{source} is {size} bytes, larger than the {announced} its header announces; "
                              "it is corrupted or not a save point.")
    if size < announced:
        raise CheckpointError(f"{source} is truncated: its header announces {announced} bytes, the file has {size}.")


def _decode(data: bytes, metadata: dict[str, str], source: Any) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{source} is a safetensors file but not an rkm save point.")
    readable = ", ".join(str(v) for v in READABLE_VERSIONS[:-1]) + f" and {READABLE_VERSIONS[-1]}"
    text = metadata.get("format_version", "")
    version = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None
    if version not in READABLE_VERSIONS:
        newer = " (written by a newer rkm: upgrade rkm)" if version is not None and version > FORMAT_VERSION else ""
        raise CheckpointError(f"{source} has save-point format version {text!r}{newer}; this rkm reads format "
                              f"versions {readable}.")
    if set(metadata) != METADATA_KEYS:
        missing, extra = sorted(METADATA_KEYS - set(metadata)), sorted(set(metadata) - METADATA_KEYS)
        raise CheckpointError(f"{source} has a corrupted header: metadata fields missing {missing}, unexpected "
                              f"{extra}.")
    try:
        tensors = st_load(data)
    except Exception as err:  # noqa: BLE001 - any failure of the parser on untrusted bytes is a corrupt file
        raise CheckpointError(f"{source} is truncated or corrupted: {err}") from None
    if version == 1:
        if _digest_v1(tensors) != metadata["sha256"]:
            raise CheckpointError(f"{source} is corrupted: its tensors do not match the recorded SHA-256.")
    elif _digest(metadata, tensors) != metadata["sha256"]:
        raise CheckpointError(f"{source} is corrupted or was altered: its header and tensors do not match the "
                              "recorded SHA-256.")
    header = {"class": metadata["class"], "config": json_object(metadata["config"], "config", source),
              "state": json_object(metadata["state"], "state", source), "format_version": version}
    return tensors, header


def parse_savepoint(data: bytes, source: Any = "the save point") -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Verify the bytes of a save point; returns ``(tensors, header)`` as :func:`read_savepoint`."""
    length = _header_length(data[:9], len(data), source)
    metadata, body = _parse_header(data[8 : 8 + length], source)
    _check_size(len(data), 8 + length + body, source)
    return _decode(data, metadata, source)


def _read_exactly(fd: int, n: int, source: Any) -> bytes:
    chunks, left = [], n
    while left:
        chunk = os.read(fd, min(left, 1 << 24))
        if not chunk:
            raise CheckpointError(f"{source} is truncated: it ended {left} bytes early while being read.")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_savepoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify one save point; returns ``(tensors, header)`` with the header's ``class``,
    ``config``, ``state`` and ``format_version``.

    Only the bytes the header announces are read, and only from a regular file.

    Raises
    ------
    CheckpointError
        The file is missing, not a regular file, a pickle, not safetensors, truncated, longer
        than announced, of an unreadable format version, or its contents do not match the
        recorded digest. The model-side schema is checked by :func:`rkm.machine.restore`.
    """
    path = Path(path)
    fd, size = _files.open_fd(path, "save point", CheckpointError)
    try:
        head = _read_exactly(fd, min(size, 9), path)
        length = _header_length(head, size, path)
        raw = head[8:] + _read_exactly(fd, length - 1, path)
        metadata, body = _parse_header(raw, path)
        _check_size(size, 8 + length + body, path)
        data = head[:8] + raw + _read_exactly(fd, body, path)
    except OSError as err:
        raise CheckpointError(f"cannot read save point {path}: {err.strerror or err}.") from None
    finally:
        os.close(fd)
    return _decode(data, metadata, path)


def refuse_pickles(model_state_path: str | os.PathLike, name: str) -> None:
    """Raise a CheckpointError if the folder holds pyrkm's pickled save points of ``name``."""
    folder = Path(model_state_path)
    if folder.is_dir() and any(folder.glob(f"{glob_escape(name)}_t*.pkl")):
        raise CheckpointError(
            f"{folder} holds pickled save points of {name!r} (pyrkm's format) and no rkm save points. "
            "rkm never unpickles files: loading a pickle runs arbitrary code. Convert them with "
            f"`rkm convert-pyrkm {folder}` (rkm.compat.pickles.convert_pyrkm), which reads them without running code."
        )


def glob_escape(text: str) -> str:
    """Escape glob metacharacters in ``text``."""
    return re.sub(r"([*?\[])", r"[\1]", text)
