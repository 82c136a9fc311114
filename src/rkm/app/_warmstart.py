"""Warm starts: a new run that starts from the parameters (and, if asked, the device state) of a trained model.

``run.init_from`` names the source: a run folder (its latest save point) or a save point file.
The new run is a run like any other (update 0, its own settings, its own energy account); only
its starting parameters ``W``, ``v_bias``, ``h_bias`` come from the source, clipped to the new
``[min_W, max_W]``, and with ``run.init_device_state`` also the source's device state (the
fixed device-to-device spread and comparator offsets of :class:`rkm.core.devices.Devices`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError
from ..io import savepoints
from ..machine import restore
from .config import read_config_file

__all__ = ["source_config", "source_savepoint", "warm_start"]

logger = logging.getLogger("rkm.app.run")

_WHAT = "--init-from (run.init_from) takes a run folder (its latest save point) or a save point file (.safetensors)"


def source_config(source: str | Path) -> Path | None:
    """The ``config.toml`` of the run that ``source`` (a run folder, or a save point in one) belongs to."""
    path = Path(source).expanduser()
    folder = path if path.is_dir() else path.parent.parent if path.parent.name == "model_states" else None
    return folder / "config.toml" if folder is not None and (folder / "config.toml").is_file() else None


def source_savepoint(source: str | Path) -> Path:
    """The save point file ``source`` names: itself, or the latest save point of a run folder."""
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"{source} does not exist; {_WHAT}.")
    if path.is_dir():
        config = source_config(path)
        if config is None:
            raise ConfigError(f"{path} is not a run folder (no config.toml); {_WHAT}.")
        name = read_config_file(config).get("run", {}).get("name", "rkm")
        points = savepoints.list_savepoints(path / "model_states", str(name))
        if not points:
            raise ConfigError(f"{path} has no save point to start from yet; {_WHAT}.")
        return points[-1][1].resolve()
    if path.suffix == ".safetensors" and path.is_file():
        return path.resolve()
    raise ConfigError(f"{source} is neither a run folder nor a save point file; {_WHAT}.")


def warm_start(model: Any, source: str | Path, device_state: bool) -> str:
    """Put the parameters of ``source``'s save point into ``model`` (a new model of the new run's
    settings), and with ``device_state`` its device state; returns which save point it was."""
    path = source_savepoint(source)
    trained = restore(*savepoints.read_savepoint(path), device=model.device, source=path)
    if trained.n_visible != model.n_visible:
        raise ConfigError(f"{path} is a machine of {trained.n_visible} visible units, the new run's data has "
                          f"{model.n_visible} values per row: start from it with data like its own (--dataset).")
    if trained.n_hidden != model.n_hidden:
        raise ConfigError(f"{path} is a machine of {trained.n_hidden} hidden units, the new run's has "
                          f"{model.n_hidden}: start from it with --n-hidden {trained.n_hidden} (n_hidden).")
    params = [p.detach().to(dtype=model.mytype).clone() for p in (trained.W, trained.v_bias, trained.h_bias)]
    model.W, model.v_bias, model.h_bias = params
    model.after_step_keepup()
    clipped = sum(int((p != q).sum()) for p, q in zip(params, (model.W, model.v_bias, model.h_bias)))
    if clipped:
        logger.warning("%d parameters of %s lie outside the new run's [min_W, max_W] = [%g, %g] and were clipped.",
                       clipped, path, model.min_W, model.max_W)
    if device_state:
        state = trained.devices.state_dict()
        if not state:
            raise ConfigError(f"{path} holds no device state (its model had neither variability nor "
                              "comparator_offset); start without --init-device-state (run.init_device_state).")
        model.devices.load_state_dict(state)
    _check_fit(model, path)
    return f"{path} (update {trained.epoch})"


FIT_CHANGE = 0.5
"""A warm start warns where its devices move the weights by more than this fraction of their mean magnitude."""


def _check_fit(model: Any, path: Path) -> None:
    """Warn where the new run's devices realise the source's weights far from their values: a conductance
    range or ladder of levels that does not fit them turns the trained machine into another one."""
    programmed = model.W.detach()
    realised = model.network.realised_parameters()[0]
    magnitude = programmed.abs()
    scale = float(magnitude.mean())
    change = float((realised - programmed).abs().mean()) / scale if scale > 0 else 0.0
    if change <= FIT_CHANGE:
        return
    distinct = int(torch.unique(realised.abs()).numel())
    low, high = (float(x) for x in torch.quantile(magnitude.flatten()[:1_000_000].float(),
                                                  torch.tensor([0.01, 0.99])))
    logger.warning("the new run's devices realise the weights of %s far from their values: the mean change is %.0f%% "
                   "of the mean |W| (%.3g), on %d distinct conductances, while 98%% of the trained |W| lie in "
                   "[%.3g, %.3g]. A conductance range and levels that cover them keep the machine (e.g. "
                   "--conductance-range %.2g,%.2g --level-spacing log; docs/nonideal.md).", path, 100 * change,
                   scale, distinct, low, high, max(low, 1e-6), high)
