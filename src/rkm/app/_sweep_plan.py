"""The plan of a sweep: its grid and seeds (options, ``[sweep]`` tables), and every run they make.

Every run is checked as a run would check it (:func:`plan`) before any starts.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, RKMError
from ..hyperparams import fast_matmul_setting
from ._sweep_record import differences
from .config import DEFAULTS, merge, read_config_file, resolve_config, validate
from .run import build_model, load_data


# ------------------------------------------------------------------ the grid
def parse_grid(items: Iterable[str]) -> dict[str, list[str]]:
    """The grid of ``--grid table.key=value1,value2,...`` options.

    Raises
    ------
    ConfigError
        An option without ``=``, a key without a table, an empty value or a key given twice.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or "." not in key:
            raise ConfigError(f"--grid expects table.key=value1,value2,... (e.g. model.offset=0,0.5,1), got {item!r}.")
        values = [v.strip() for v in text.split(",")]
        if "" in values:
            raise ConfigError(f"--grid {key} has an empty value in {text!r}; separate values by single commas.")
        if key in grid:
            raise ConfigError(f"--grid {key} is given twice; list all its values in one --grid.")
        grid[key] = values
    return grid


MAX_RUNS = 10_000
"""The most runs one sweep may have (combinations times seeds): more is several studies, each its own --out."""
MAX_SEED = 2**63 - 1
"""The largest seed (a model's generator takes seeds from 0 to 2**63 - 1)."""


def parse_seeds(text: str) -> list[int]:
    """``--seeds``: a count ``N`` (seeds 0 to N-1, at most :data:`MAX_RUNS`) or a comma-separated list of seeds."""
    parts = [p.strip() for p in str(text).split(",")]
    if "," in str(text) and "" in parts:
        raise ConfigError(f"--seeds {str(text)[:60]!r} has an empty seed; separate the seeds by single commas "
                          "(0,5,9).")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise ConfigError(f"--seeds takes a count (3: seeds 0, 1, 2) or a list (0,5,9) of whole numbers, got "
                          f"{str(text)[:60]!r}.") from None
    if "," not in str(text):
        if not numbers or not 1 <= numbers[0] <= MAX_RUNS:
            raise ConfigError(f"--seeds N needs N from 1 to {MAX_RUNS} (the most runs a sweep may have), got "
                              f"{str(text)[:60]!r}.")
        return list(range(numbers[0]))
    return check_seeds(numbers)


def check_seeds(seeds: Sequence[Any]) -> list[int]:
    """``seeds`` as a list of distinct integers from 0 to :data:`MAX_SEED`, at most :data:`MAX_RUNS` of them."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence):
        raise ConfigError(f"seeds must be a count or a list of integers, got {_short(seeds)}.")
    if not seeds or len(seeds) > MAX_RUNS:
        raise ConfigError(f"seeds must list from 1 to {MAX_RUNS} seeds, got {len(seeds)}.")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]
    if bad:
        raise ConfigError(f"seeds must be integers from 0 to {MAX_SEED}, got {_short(bad[0])}.")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds {_short(list(seeds))} list a seed twice.")
    return list(seeds)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def grid_from_table(table: Mapping, where: str) -> tuple[dict[str, list], list[int] | None]:
    """Grid and seeds of a ``[sweep]`` TOML table.

    ``[sweep]`` takes ``seeds`` (a count or a list) and tables ``[sweep.model]``,
    ``[sweep.data]``, ``[sweep.run]`` (or dotted keys ``model.offset = [...]``) whose
    values are lists of the settings to sweep.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"sweep in {where} is not a table; write [sweep] with seeds and tables [sweep.model], "
                          "[sweep.data], [sweep.run] of value lists.")
    grid: dict[str, list] = {}
    seeds = None
    for name, value in table.items():
        if name == "seeds":
            if isinstance(value, int) and not isinstance(value, bool):
                seeds = parse_seeds(str(value))
            elif isinstance(value, list):
                seeds = check_seeds(value)
            else:
                raise ConfigError(f"sweep.seeds in {where} must be a count or a list of seeds, got {_short(value)}.")
            continue
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"sweep.{name} in {where} is not a table; [sweep] takes seeds and tables [sweep.model], "
                "[sweep.data], [sweep.run] of value lists."
            )
        if name not in DEFAULTS:
            raise ConfigError(f"unknown table [sweep.{name}] in {where}; use [sweep.model], [sweep.data] or "
                              "[sweep.run].")
        for key, values in value.items():
            if not isinstance(values, list):
                raise ConfigError(
                    f"sweep.{name}.{key} in {where} must be a list of values, got {_short(values)}; "
                    f"put a fixed setting in [{name}] instead."
                )
            grid[f"{name}.{key}"] = values
    return grid, seeds


def split_sweep(raw: Mapping, where: str, start: dict = DEFAULTS) -> tuple[dict, dict[str, list], list[int] | None]:
    """``raw`` (tables of a configuration, possibly with a ``[sweep]`` table) as ``(config, grid, seeds)``.

    ``config`` is ``start`` (default :data:`rkm.app.config.DEFAULTS`) with the other tables merged
    in, unset values dropped, so a full resolved configuration is accepted as well as a
    partial one; ``seeds`` is None when the ``[sweep]`` table names none.
    """
    raw = dict(raw)
    sweep = raw.pop("sweep", None)
    updates = {t: {k: v for k, v in values.items() if v is not None} if isinstance(values, Mapping) else values
               for t, values in raw.items()}
    config = merge(start, updates, where)
    grid, seeds = grid_from_table(sweep, where) if sweep is not None else ({}, None)
    return config, grid, seeds


def load_sweep_config(config_file: str | os.PathLike | None = None, preset: str | None = None,
                      overrides: dict | None = None) -> tuple[dict, dict, list[int] | None]:
    """Base configuration, grid and seeds of a TOML file (with an optional ``[sweep]`` table).

    Defaults, then ``preset``, then the file, then ``overrides``, as :func:`rkm.app.config.resolve_config`.
    Returns ``(config, grid, seeds)`` as :func:`split_sweep`.
    """
    grid: dict[str, list] = {}
    seeds: list[int] | None = None
    config = resolve_config(preset)
    if config_file is not None:
        config, grid, seeds = split_sweep(read_config_file(config_file), str(config_file), config)
    if overrides:
        config = merge(config, overrides, "the command line")
    return config, grid, seeds


# ------------------------------------------------------------------ planning
@dataclass(frozen=True)
class Run:
    """One run of a sweep: its folder, swept values, seed and full configuration."""

    name: str
    path: Path
    values: dict[str, Any]
    seed: int
    config: dict


def _coerced_values(config: dict, key: str, raw_values: Sequence) -> list:
    """The values of one grid key, as the configuration machinery types them."""
    table, _, name = key.partition(".")
    if key == "model.seed":
        raise ConfigError("model.seed cannot be swept in the grid; list the seeds with --seeds (or sweep.seeds).")
    if not isinstance(raw_values, (list, tuple)) or not raw_values:
        raise ConfigError(f"grid {key} needs a non-empty list of values, got {raw_values!r}.")
    values = []
    for raw in raw_values:
        try:
            value = merge(config, {table: {name: raw}}, "the grid")[table][name]
        except ConfigError as err:
            if table not in DEFAULTS or name not in DEFAULTS[table]:
                raise
            raise ConfigError(f"bad grid value {key}={raw!r}: {err}") from None
        if value in values:
            raise ConfigError(f"grid {key} lists the value {raw!r} twice.")
        values.append(value)
    return values


def _slug(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", str(value)) or "-"


def _check_machine_settings(config: dict, local: bool) -> dict:
    """The configuration to construct-check: on another machine's workers, device and
    fast_matmul are only checked for their form (what is available there is not known here)."""
    if local:
        return config
    m = config["model"]
    fast_matmul_setting(m["fast_matmul"])
    try:
        torch.device(m["device"])
    except (RuntimeError, TypeError):
        raise ConfigError(f"model.device={m['device']!r} is not a torch device; use 'cpu' or 'cuda'.") from None
    checked = copy.deepcopy(config)
    checked["model"].update(device="cpu", fast_matmul="auto")
    return checked


def plan(base_config: dict, grid: Mapping[str, Sequence], seeds: Sequence[int], out: str | os.PathLike, *,
         local: bool = True, progress: bool = False) -> list[Run]:
    """Every run of a sweep, each checked as a run would check it, before anything starts.

    Parameters
    ----------
    base_config : dict
        A resolved configuration (:func:`rkm.app.config.resolve_config`).
    grid : mapping of str to sequence
        ``"table.key"`` -> values to sweep (strings as on the command line, or typed).
    seeds : sequence of int
        Seeds of each combination.
    out : path
        The sweep folder; runs go to ``out/runs/NAME``.
    local : bool
        The runs execute on this machine, so ``model.device`` and ``model.fast_matmul``
        are checked against it too.
    progress : bool
        Show a progress bar over the combinations when checking them takes more than two seconds.

    Raises
    ------
    ConfigError
        An unknown grid key, a value the configuration refuses, a combination whose
        model cannot be constructed, bad seeds, more than :data:`MAX_RUNS` runs, or an
        existing run folder that holds a run of another configuration (or a longer one).
        Data errors keep their type.
    """
    seeds = check_seeds(seeds)
    sizes = {key: len(values) if isinstance(values, Sequence) and not isinstance(values, str) else 1
             for key, values in grid.items()}
    total = math.prod(sizes.values()) * len(seeds)
    if total > MAX_RUNS:
        shape = " x ".join(str(n) for n in sizes.values()) or "1"
        raise ConfigError(f"the sweep would have {total} runs ({shape} combinations x {len(seeds)} seeds), more than "
                          f"the {MAX_RUNS} one sweep may have; split it into several sweeps, each with its own --out.")
    base = merge(base_config, {"run": {"progress": False}}, "the sweep")
    axes = {key: _coerced_values(base, key, values) for key, values in grid.items()}
    short = [key.partition(".")[2] for key in axes]
    labels = [s if short.count(s) == 1 else key for s, key in zip(short, axes)]
    root = Path(out).resolve() / "runs"
    datasets: dict[tuple, Any] = {}
    built: set[str] = set()
    runs: list[Run] = []
    from tqdm.auto import tqdm

    combinations = tqdm(itertools.product(*axes.values()), total=total // len(seeds), unit="combination",
                        desc="checking the grid", delay=2, disable=not progress, leave=False)
    for combo in combinations:
        values = dict(zip(axes, combo))
        updates: dict[str, dict] = {}
        for key, value in values.items():
            table, _, name = key.partition(".")
            updates.setdefault(table, {})[name] = value
        config = merge(base, updates, "the grid")
        described = ", ".join(f"{k}={v}" for k, v in values.items()) or "the base configuration"
        checked = _check_machine_settings(config, local)
        data_key = tuple(sorted(checked["data"].items()))
        model_key = json.dumps([checked["model"], data_key, checked["run"]["name"]], default=str)
        try:
            validate(checked)
            if data_key not in datasets:
                datasets[data_key] = load_data(checked)
            if model_key not in built:
                build_model(checked, datasets[data_key])
                built.add(model_key)
        except RKMError as err:
            raise type(err)(f"grid combination {described}: {err}") from None
        prefix = "_".join(f"{label}={_slug(v)}" for label, v in zip(labels, combo))
        for seed in seeds:
            name = f"{prefix}_seed={seed}" if prefix else f"seed={seed}"
            runs.append(Run(name, root / name, values, seed, merge(config, {"model": {"seed": seed}}, "the sweep")))
    if len({r.name for r in runs}) != len(runs):
        raise ConfigError("two grid values give the same run folder name; make the values differ in letters or digits.")
    for run in runs:
        _check_existing(run)
    return runs


def _check_existing(run: Run) -> None:
    """Refuse a run folder that holds a run of another configuration, or a longer run than this one."""
    existing = run.path / "config.toml"
    if not existing.is_file():
        return
    held = resolve_config(config_file=existing)
    keys = differences(held, run.config)
    if keys:
        raise ConfigError(f"{run.path} holds a run of another configuration ({', '.join(keys[:4])}); use another "
                          "--out, or delete that folder to run it anew.")
    if held["model"]["max_epochs"] > run.config["model"]["max_epochs"]:
        raise ConfigError(f"{run.path} holds a run of {held['model']['max_epochs']} updates; a sweep can extend its "
                          f"runs (a larger model.max_epochs), not shorten them to {run.config['model']['max_epochs']}.")
