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

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from .errors import CheckpointError, ConfigError, DataError

logger = logging.getLogger("rkm.checkpoint")

FORMAT = "rkm-savepoint"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"
_OPTIONAL = ("m_dW", "m_dv", "m_dh", "v_dW", "v_dv", "v_dh", "persistent_chains", "ov", "oh", "average_data")
_DTYPES = {str(d).removeprefix("torch."): d for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def savepoint_path(model_state_path, name: str, update: int) -> Path:
    """Path of the save point of ``name`` at ``update``."""
    return Path(model_state_path) / f"{name}_t{int(update)}{SUFFIX}"


def list_savepoints(model_state_path, name: str) -> list[tuple[int, Path]]:
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


def model_tensors(model) -> dict[str, torch.Tensor]:
    """Every tensor of the model's training state, on the CPU."""
    tensors = {
        "W": model.W,
        "v_bias": model.v_bias,
        "h_bias": model.h_bias,
        "energy": model.energy,
        "power_f": model.power_f,
        "power_b": model.power_b,
        "rng_state": model.generator.get_state(),
    }
    for name in _OPTIONAL:
        value = getattr(model, name, None)
        if isinstance(value, torch.Tensor):
            tensors[name] = value
    return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}


def _config(model) -> dict:
    from .machine import constructor_arguments

    config = constructor_arguments(model)
    config["mytype"] = str(model.mytype).removeprefix("torch.")
    config["average_data"] = None
    return config


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


def save_model(model, model_state_path="model_states/") -> Path:
    """Write the save point of ``model`` at its current update; returns its path."""
    tensors = model_tensors(model)
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "class": type(model).__name__,
        "config": json.dumps(_config(model)),
        "state": json.dumps(
            {
                "epoch": int(model.epoch),
                "seed": model.seed,
                "threshold_sharing": model.threshold_sharing,
                "fast_matmul": model.fast_matmul,
                "rng_device": model.generator.device.type,
            }
        ),
        "sha256": _digest(tensors),
    }
    path = savepoint_path(model_state_path, model.model_name, model.epoch)
    atomic_write(path, st_save(tensors, metadata=metadata))
    return path


def _refusal(path: Path, head: bytes) -> CheckpointError:
    if head[:1] == b"\x80" or head[:2] == b"PK":
        kind = "a pickle or torch.save archive (pyrkm's format)"
        return CheckpointError(
            f"{path} is {kind}, not an rkm save point. rkm never unpickles files: loading a "
            "pickle runs arbitrary code. Convert pyrkm save points with `rkm convert-pyrkm FOLDER`."
        )
    return CheckpointError(f"{path} is not an rkm save point (no safetensors header); it may be truncated or another file.")


def read_savepoint(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Read and verify one save point; returns ``(tensors, metadata)``.

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
        raise CheckpointError(f"{path} is truncated: its header promises {header_len} bytes, the file has {len(data) - 8}.")
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
    return tensors, metadata


def restore(tensors: dict[str, torch.Tensor], metadata: dict[str, str], device=None):
    """Build the model a save point describes, in the exact state it was saved in."""
    from .machine import RBM, RKM

    config = json.loads(metadata["config"])
    state = json.loads(metadata["state"])
    config["mytype"] = _DTYPES[config["mytype"]]
    if "average_data" in tensors:
        config["average_data"] = tensors["average_data"]
    cls = {"RKM": RKM, "RBM": RBM}.get(metadata.get("class"), RKM)
    model = cls(**config, seed=state["seed"], device=device, threshold_sharing=state["threshold_sharing"])
    try:
        model.fast_matmul = state.get("fast_matmul")
    except ConfigError as err:
        logger.warning("save point asked for fast_matmul=True, unavailable here (%s); using the automatic setting.", err)
    model.W, model.v_bias, model.h_bias = tensors["W"], tensors["v_bias"], tensors["h_bias"]
    for name in _OPTIONAL:
        if name in tensors:
            setattr(model, name, tensors[name].to(model.device))
    for name in ("energy", "power_f", "power_b"):
        setattr(model, name, tensors[name].to(model.device))
    if state["rng_device"] == model.device.type:
        model.generator.set_state(tensors["rng_state"])
    else:
        logger.warning(
            "save point's random state is for %s but the model is on %s: reseeded, so the run will not "
            "repeat the original bit for bit.",
            state["rng_device"],
            model.device.type,
        )
        model.generator.manual_seed(int(state["seed"]) + int(state["epoch"]))
    model.epoch = int(state["epoch"])
    model.relax_t_f, model.relax_t_b = model.relaxation_times()
    return model


def _refuse_pickles(model_state_path, name: str) -> None:
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


def load_model(name, delete_previous=False, model_state_path="model_states/", *, device=None):
    """Load the latest save point of model ``name``.

    Parameters
    ----------
    name : str
        The model's ``model_name``.
    delete_previous : bool
        Delete every older save point of this model after a successful load.
    model_state_path : str
        Folder of the save points.
    device : str, optional
        Where to put the model (default: as a new model would choose).

    Returns
    -------
    (True, model) if a save point was found, else (False, []), as the reference.

    Raises
    ------
    CheckpointError
        The latest save point is truncated, corrupted or not an rkm save point (for
        example a pickle); nothing is deleted then.
    """
    points = list_savepoints(model_state_path, name)
    if not points:
        _refuse_pickles(model_state_path, name)
        logger.info("No load points for %s in %s", name, model_state_path)
        return False, []
    update, path = points[-1]
    tensors, metadata = read_savepoint(path)
    model = restore(tensors, metadata, device=device)
    logger.info("Model %s trained up to update %d, loaded from %s", name, update, path)
    if delete_previous:
        for _, old in points[:-1]:
            old.unlink(missing_ok=True)
    return True, model


def import_parameters(model, name: str, model_state_path="model_states/") -> bool:
    """Copy W, v_bias and h_bias of the latest save point of ``name`` into ``model``."""
    points = list_savepoints(model_state_path, name)
    if not points:
        _refuse_pickles(model_state_path, name)
        logger.info("No load points for %s in %s", name, model_state_path)
        return False
    update, path = points[-1]
    tensors, _ = read_savepoint(path)
    shapes = {k: tuple(tensors[k].shape) for k in ("W", "v_bias", "h_bias")}
    if shapes["W"] != (model.n_hidden, model.n_visible):
        raise DataError(
            f"save point {path} has W of shape {shapes['W']}, this model needs "
            f"{(model.n_hidden, model.n_visible)}; pretrain from a model of the same size."
        )
    model.W = tensors["W"].clone()
    model.v_bias = tensors["v_bias"].clone()
    model.h_bias = tensors["h_bias"].clone()
    model.relax_t_f, model.relax_t_b = model.relaxation_times()
    logger.info("Using as pretraining model %s at update %d", name, update)
    return True
