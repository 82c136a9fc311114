"""Safe save points: safetensors files that cannot run code when loaded.

A save point is one file ``{model_name}_t{update}.safetensors`` holding every tensor of
the model's state (parameters, Adam moments, persistent chains, centering offsets,
energy and power, the random generator's state) and, in the safetensors header, JSON
metadata: the constructor arguments, the update counter, the seed and a SHA-256 of the
tensor bytes. Files are written to a temporary name, synced, then renamed over the
target, so a crash mid-write leaves the previous save point intact. Loading never
unpickles: a pickle (pyrkm's format) or any other file is refused with a
:class:`~rkm.errors.CheckpointError`, and a truncated or altered file is detected.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError

logger = logging.getLogger("rkm.checkpoint")

FORMAT = "rkm-savepoint"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


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


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous().reshape(-1)
        h.update(name.encode())
        h.update(str(t.dtype).encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_savepoint(path: str | os.PathLike, tensors: dict[str, torch.Tensor], header: dict[str, Any]) -> Path:
    """Write a save point atomically: CPU ``tensors`` and a header of ``class``, ``config`` and ``state``.

    ``config`` and ``state`` are JSON-able dicts; the file records a SHA-256 of the tensors.
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "class": str(header["class"]),
        "config": json.dumps(header["config"]),
        "state": json.dumps(header["state"]),
        "sha256": _digest(tensors),
    }
    path = Path(path)
    atomic_write(path, st_save(tensors, metadata=metadata))
    return path


def save_model(model: Any, model_state_path: Any = "model_states/") -> Path:
    """Write the save point of ``model`` (anything with ``model_name``, ``epoch`` and ``savepoint()``,
    as :class:`rkm.RBM`) at its current update; returns its path."""
    tensors, header = model.savepoint()
    return write_savepoint(savepoint_path(model_state_path, model.model_name, model.epoch), tensors, header)


def _refusal(path: Path, head: bytes) -> CheckpointError:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        kind = "a pickle or torch.save archive (pyrkm's format)"
        return CheckpointError(
            f"{path} is {kind}, not an rkm save point. rkm never unpickles files: loading a "
            "pickle runs arbitrary code. Convert pyrkm save points with `rkm convert-pyrkm FOLDER`."
        )
    return CheckpointError(f"{path} is not an rkm save point (no safetensors header); it may be truncated or "
                           "another file.")


def read_savepoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify one save point; returns ``(tensors, header)`` with the header's ``class``,
    ``config`` and ``state``.

    Raises
    ------
    CheckpointError
        The file is a pickle, not safetensors, truncated, or its contents do not match
        the recorded digest.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"save point {path} does not exist.") from None
    if len(data) < 10:
        raise CheckpointError(f"{path} is truncated ({len(data)} bytes).")
    header_len = int.from_bytes(data[:8], "little")
    if data[8:9] != b"{":
        raise _refusal(path, data[:8])
    if 8 + header_len > len(data):
        raise CheckpointError(f"{path} is truncated: its header promises {header_len} bytes, the file has "
                              f"{len(data) - 8}.")
    try:
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
        tensors = st_load(data)
    except (SafetensorError, ValueError) as err:
        raise CheckpointError(f"{path} is truncated or corrupted: {err}") from None
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not an rkm save point.")
    if int(metadata.get("format_version", "0")) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer rkm (format {metadata['format_version']}); upgrade rkm.")
    if _digest(tensors) != metadata.get("sha256"):
        raise CheckpointError(f"{path} is corrupted: its tensors do not match the recorded SHA-256.")
    try:
        header = {"class": metadata["class"], "config": json.loads(metadata["config"]),
                  "state": json.loads(metadata["state"])}
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path} has an unreadable header ({err}).") from None
    return tensors, header


def refuse_pickles(model_state_path: str | os.PathLike, name: str) -> None:
    folder = Path(model_state_path)
    if folder.is_dir() and any(folder.glob(f"{glob_escape(name)}_t*.pkl")):
        raise CheckpointError(
            f"{folder} holds pickled save points of {name!r} (pyrkm's format) and no rkm save points. "
            "rkm never unpickles files: loading a pickle runs arbitrary code. Convert them with "
            f"`rkm convert-pyrkm {folder}` (rkm.legacy.convert_pyrkm), which reads them without running code."
        )


def glob_escape(text: str) -> str:
    """Escape glob metacharacters in ``text``."""
    return re.sub(r"([*?\[])", r"[\1]", text)
