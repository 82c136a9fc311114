"""Run configurations: defaults, presets, TOML files, their checks, and the learning-rate schedule.

The configuration has three tables: ``[model]`` (the 25 constructor arguments of
:class:`rkm.RKM` except ``model_name``/``n_visible``, plus ``seed``, ``device``,
``threshold_sharing`` and ``fast_matmul``), ``[data]`` and ``[run]``; :data:`DEFAULTS` lists every key.
A run folder keeps its resolved configuration as ``config.toml`` (:mod:`rkm.app.run`).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from .. import hyperparams
from ..errors import ConfigError
from ..io import _files
from ..io.savepoints import atomic_write

__all__ = [
    "DEFAULTS",
    "PRESETS",
    "Resolved",
    "learning_rate",
    "merge",
    "read_config_file",
    "resolve",
    "resolve_config",
    "toml_value",
    "validate",
    "write_config",
]

DEFAULTS: dict[str, dict[str, Any]] = hyperparams.config_defaults()
"""Every configuration key and its default (from the table of settings, :mod:`rkm.hyperparams`).
``model.average_data`` is a switch: True initialises the visible bias to the training-data mean
(the seed's ``average_data``); ``model.centering = true`` implies it. ``data.threshold`` unset
means 0.5 for the built-in image datasets and "the values must already be 0/1" for array files.
``run.lr_final`` set anneals the learning rate geometrically from ``model.lr`` to it over the
updates after the fraction ``run.anneal_start`` of ``max_epochs`` (:func:`learning_rate`)."""

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "demo": {
        "model": {"n_hidden": 1000, "k": 20, "lr": 0.02, "max_epochs": 4000, "batch_size": 64, "train_algo": "RDM",
                  "centering": True, "model_beta": 0.2, "optimizer": "SGD", "seed": 0},
        "data": {"dataset": "mnist-5k"},
        "run": {"name": "demo", "log_every": 500, "generate_k": 20, "lr_final": 0.002, "anneal_start": 0.7},
    },
    "bars": {
        "model": {"n_hidden": 32, "k": 3, "lr": 0.05, "max_epochs": 1500, "batch_size": 16, "train_algo": "PCD",
                  "seed": 0},
        "data": {"dataset": "bars-and-stripes", "size": 4},
        "run": {"name": "bars", "log_every": 100, "generate_k": 100, "n_generate": 30, "n_eval": 30},
    },
}
"""Ready-made configurations: ``demo`` (the ``make demo`` job) and ``bars`` (seconds).

The demo trains non-persistently from noise (RDM, k = 20, centred gradients) and generates with
the same 20 steps from noise: a model trained so generates every digit (``docs/quality.md``);
the PCD-1 demo before it reconstructed as well but generated mostly 0s and 5s from noise."""


def merge(config: dict, updates: dict, where: str, sources: dict[tuple[str, str], str] | None = None,
          labels: Mapping[tuple[str, str], str] | None = None) -> dict:
    """Return ``config`` with the tables of ``updates`` merged in; unknown keys are errors.

    ``sources``, when given, records for each key merged where its value came from: its
    ``labels`` entry, else ``where``.
    """
    merged = copy.deepcopy(config)
    for section, values in updates.items():
        if section not in DEFAULTS:
            raise ConfigError(f"unknown config table [{section}] in {where}; use [model], [data] or [run].")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] in {where} must be a table of key = value lines.")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                known = ", ".join(sorted(DEFAULTS[section]))
                raise ConfigError(f"unknown config key {section}.{key} in {where}; known keys: {known}.")
            labelled = labels is not None and (section, key) in labels  # a flag: its name says where
            merged[section][key] = hyperparams.SETTINGS[(section, key)].parse(value, "" if labelled else where)
            if sources is not None:
                sources[(section, key)] = (labels or {}).get((section, key), where)
    return merged


def validate(config: dict) -> dict:
    """Check every value of a resolved configuration as a run would use it; returns ``config``.

    Each value passes its setting's check, then the model's settings the rules between them
    (:func:`rkm.hyperparams.check_model`, for a machine of one visible unit: the data is not
    read yet) and the memory its training needs (:func:`rkm.hyperparams.check_memory`, likewise).
    Raises a ConfigError naming the first bad key, before anything is written or trained.
    """
    model = {}
    for section, values in config.items():
        for key, value in values.items():
            setting = hyperparams.SETTINGS[(section, key)]
            if key != "average_data":
                checked = setting.constructor_value(value)
                if section == "model":
                    model[key] = checked
    hyperparams.check_model(model)
    hyperparams.check_memory(model, model["device"])
    m, r = config["model"], config["run"]
    if r["init_device_state"] and not r["init_from"]:
        raise ConfigError("run.init_device_state takes the device state of the model run.init_from names; set "
                          "run.init_from (--init-from RUN_OR_SAVEPOINT) too.")
    if r["lr_final"] is not None and r["lr_final"] > m["lr"]:
        raise ConfigError(f"run.lr_final ({r['lr_final']}) must not exceed model.lr ({m['lr']}): it is the rate "
                          "the learning rate is annealed down to.", names=("lr_final", "lr"))
    return config


MAX_CONFIG_BYTES = 16 << 20
"""The largest configuration file read (16 MiB; a sweep's grid of thousands of values is a few hundred kB)."""


def read_config_file(path: str | os.PathLike) -> dict:
    """Parse a TOML configuration file (a regular file of at most 16 MiB, ``MAX_CONFIG_BYTES``) into nested tables."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    path = Path(path)
    text = _files.read_bytes(path, "config file", ConfigError, limit=MAX_CONFIG_BYTES)
    try:
        return tomllib.loads(text.decode("utf-8-sig"))  # the byte order mark some editors write is not TOML
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}); a TOML file is text.") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}.") from None
    except RecursionError:
        raise ConfigError(f"config file {path} nests its arrays or tables too deeply to be a configuration.") from None


def toml_value(value: Any) -> str:
    """A configuration value as TOML writes it (booleans, numbers, arrays, quoted text)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(str(value))


def write_config(config: dict, path: Path) -> None:
    """Write ``config`` as TOML (flat tables of scalars)."""
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items() if value is not None]
        lines.append("")
    atomic_write(path, "\n".join(lines).encode())


def _default_source(setting: hyperparams.Setting) -> str:
    return f"rkm train default (the constructor's: {setting.default_text})" if setting.differs else "default"


class Resolved(NamedTuple):
    """A resolved configuration and, for every key, where its value came from (:func:`resolve`)."""

    config: dict
    sources: dict[tuple[str, str], str]


def resolve(preset: str | None = None, config_file: str | os.PathLike | None = None, overrides: dict | None = None,
            labels: Mapping[tuple[str, str], str] | None = None,
            sources: dict[tuple[str, str], str] | None = None) -> Resolved:
    """Defaults, then a preset, then a TOML file, then command-line overrides; with each value's source.

    A source is ``'default'`` (the constructor's default), ``'rkm train default (...)'`` (a run's
    default where it differs from the constructor's, which it names), ``'preset NAME'``, the file's path, or the
    override's entry in ``labels`` (``'--lr'``), else ``'the command line'``. ``sources``, when
    given, is filled as the layers are read, so a caller knows them even when a value is refused.
    """
    config = copy.deepcopy(DEFAULTS)
    sources = {} if sources is None else sources
    sources.update({(s.section, s.name): _default_source(s) for s in hyperparams.TABLE if s.in_config})
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(PRESETS)}.")
        config = merge(config, PRESETS[preset], f"preset {preset}", sources)
    if config_file is not None:
        config = merge(config, read_config_file(config_file), str(config_file), sources)
    if overrides:
        config = merge(config, overrides, "the command line", sources, labels)
    _check_pulse_flags(config, sources)
    return Resolved(validate(config), sources)


PULSE_KEYS = ("pulse_step", "pulse_step_unit", "pulse_dead_zone")
"""The model keys that only ``optimizer = "pulse"`` reads."""


def _check_pulse_flags(config: dict, sources: Mapping[tuple[str, str], str]) -> None:
    """Refuse a pulse flag given on the command line for another optimizer: it would be ignored without a word."""
    optimizer = config["model"]["optimizer"]
    flags = [sources[("model", key)] for key in PULSE_KEYS if sources.get(("model", key), "").startswith("--")]
    if flags and optimizer != "pulse":
        raise ConfigError(f"{flags[0]} sets the programming pulses of --optimizer pulse, but the optimizer is "
                          f"{optimizer} ({sources[('model', 'optimizer')]}): add --optimizer pulse, or leave "
                          f"{flags[0]} out.", names=("optimizer",))


def resolve_config(preset: str | None = None, config_file: str | os.PathLike | None = None,
                   overrides: dict | None = None) -> dict:
    """Defaults, then a preset, then a TOML file, then command-line overrides (:func:`resolve`)."""
    return resolve(preset, config_file, overrides).config


def learning_rate(config: dict, update: int) -> float:
    """Learning rate of the update after ``update``: ``model.lr``, annealed if ``run.lr_final`` is set.

    Persistent chains trail a model that moves fast; lowering the rate at the end lets
    them equilibrate, so the model stops favouring states the chains no longer visit
    (samples from noise then look like the data, not like blobs).
    """
    lr, final = config["model"]["lr"], config["run"]["lr_final"]
    total = config["model"]["max_epochs"]
    start = int(config["run"]["anneal_start"] * total)
    if final is None or update <= start:
        return lr
    return lr * (final / lr) ** min(1.0, (update - start) / max(1, total - start))
