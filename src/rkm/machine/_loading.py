"""Building a model from a save point: :func:`restore` and :func:`load_model`.

A save point is checked against the schema of its configuration (:mod:`rkm.machine._schema`)
before the model is built.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from .. import hyperparams
from ..core import _checks
from ..errors import CheckpointError, ConfigError, DataError
from ..io import savepoints
from . import _schema
from ._model import RBM, RKM

logger = logging.getLogger("rkm.training")


def restore(tensors: dict[str, torch.Tensor], header: dict[str, Any], device: Any = None, *,
            source: Any = "the save point") -> RBM:
    """Build the model a save point describes, in the exact state it was saved in.

    The header and tensors are checked against the schema (:mod:`rkm.machine._schema`) first; a
    CheckpointError that names ``source`` says what is wrong, and no model is returned.
    """
    config, state = _schema.check(tensors, header, source)
    device = _checks.device(device)
    if "average_data" in tensors:
        config["average_data"] = tensors["average_data"]
    cls = {"RKM": RKM, "RBM": RBM}[header["class"]]
    try:
        model = cls(**config, seed=state["seed"], device=device, threshold_sharing=state["threshold_sharing"])
    except (ConfigError, DataError) as err:
        raise CheckpointError(f"{source} describes a model that cannot be built here: {err}") from None
    fresh = {**model.network.state_dict(), **model.trainer.state_dict()}
    _schema.check_against(fresh, tensors, config, state, model.device, _schema.format_version(header), source)
    try:
        model.fast_matmul = state.get("fast_matmul")
    except ConfigError as err:
        logger.warning("save point asked for fast_matmul=True, unavailable here (%s); using the automatic setting.",
                       err)
    same_device = state["rng_device"] == model.device.type
    if same_device:
        _probe_generator(tensors["rng_state"], model.device, source)
    model.network.load_state_dict(tensors, rng=same_device)
    if not same_device:
        logger.warning("save point's random state is for %s but the model is on %s: reseeded, so the run will not "
                       "repeat the original bit for bit.", state["rng_device"], model.device.type)
        model.generator.manual_seed(int(state["seed"]) + int(state["epoch"]))
    model.trainer.load_state_dict(tensors, int(state["epoch"]))
    model.run_id = state["run"]
    return model


def _probe_generator(rng_state: torch.Tensor, device: torch.device, source: Any) -> None:
    """Restore ``rng_state`` into a scratch generator first, so a state torch refuses is a CheckpointError."""
    try:
        torch.Generator(device=device).set_state(rng_state)
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source} holds a random generator state that torch refuses ({err}); the file is "
                              "corrupted.") from None


def check_place(header: dict[str, Any], path: Any, name: str, update: int) -> None:
    """Refuse a save point whose header is not of the model ``name`` at ``update``, which its file name says.

    A file copied or renamed to another model's name or to another update (``cp x_t10 x_t99``)
    would otherwise pass for what its name claims, and a later update's name would make it the
    latest.
    """
    config, state = header.get("config", {}), header.get("state", {})
    held = (config.get("model_name"), state.get("epoch"))
    if held != (name, update):
        raise CheckpointError(
            f"{path} holds the model {held[0]!r} at update {held[1]!r}, not {name!r} at update {update} as its name "
            f"says: it was copied or renamed. Move it out of {Path(path).parent}; the latest save point that holds "
            "what its name says is then loaded."
        )


def load_model(name: str, delete_previous: bool = False, model_state_path: Any = "model_states/", *,
               device: Any = None) -> tuple[bool, Any]:
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
        example a pickle), or it holds another model or update than its name says (a
        copied or renamed file); nothing is deleted then.
    """
    name = hyperparams.MODEL["model_name"].validate(name)
    delete_previous = _checks.boolean("delete_previous", delete_previous)
    model_state_path = _checks.folder("model_state_path", model_state_path)
    points = savepoints.list_savepoints(model_state_path, name)
    if not points:
        savepoints.refuse_pickles(model_state_path, name)
        logger.info("No load points for %s in %s", name, model_state_path)
        return False, []
    update, path = points[-1]
    tensors, header = savepoints.read_savepoint(path)
    model = restore(tensors, header, device=device, source=path)
    check_place(header, path, name, update)
    logger.info("Model %s trained up to update %d, loaded from %s", name, update, path)
    if delete_previous:
        for _, old in points[:-1]:
            old.unlink(missing_ok=True)
    return True, model
