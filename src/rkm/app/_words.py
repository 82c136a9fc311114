"""Errors in the words of the ``rkm`` command: one translation table from setting to flag.

The library writes its messages in Python's words (``conductance_range=(0.001, 1)``,
``threshold=0.5``) and lists the names it used (:attr:`rkm.errors.RKMError.names`). The command
rewrites exactly those names where they appear as ``name=value``, ``table.name``, `` `name` ``,
or as a word with an underscore (a plain word such as ``offset`` only at the start): a setting
of :data:`rkm.hyperparams.TABLE` becomes its flag (``--conductance-range 0.001,1``), or its key
in the configuration file it came from (``model.lr (c.toml)``); an argument of one command becomes that command's option
(:data:`ARGUMENTS`: ``n_chains`` of the AIS is ``--ais-chains`` of ``rkm evaluate``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .. import hyperparams

ARGUMENTS: dict[str, dict[str, str | None]] = {
    "generate": {"n_samples": "-n", "k": "-k", "beta": "--beta", "seed": "--seed"},
    "reconstruct": {"n_samples": "-n", "k": "-k"},
    "evaluate": {"n_samples": "-n", "k": "-k", "n_chains": "--ais-chains", "n_betas": "--ais-betas",
                 "seed": "--ais-seed"},
    "train": {"resume": None, "restart": None, "run_dir": "--run-dir"},
    "sweep": {"resume": None, "restart": None, "out": "--out"},
    "energy": {"samples": "--samples", "sizes": "--sizes", "batches": "--batches", "threads": "--threads",
               "seed": "--seed", "min_time_s": "--min-time", "energy_window_s": "--energy-window",
               "idle_s": "--idle", "weight_std": "--weight-std", "bias_std": "--bias-std",
               "conductance_s": "--conductance-unit", "voltage_v": "--voltage-unit",
               "node_capacitance_f": "--node-capacitance", "settling_precision": "--settling-precision",
               "comparator_energy_j": "--comparator-energy", "comparison_energy_j": "--comparison-energy",
               "comparison_time_s": "--comparison-time", "pulse_energy_j": "--pulse-energy",
               "pulse_time_s": "--pulse-time", "devices": "--devices", "operations": "--operations",
               "update_model": "--update-model", "pulse_fraction": "--pulse-fraction", "k": "--k",
               "cpu_watts": "--cpu-watts"},
    "convert-pyrkm": {"output": "-o"},
}
"""The Python arguments a command's options set, by command (None: the command's own words already say it)."""

_SETTINGS_COMMANDS = ("train", "sweep", "generate", "reconstruct", "evaluate", "plot")
"""Commands whose settings are those of the table (a run's): the others name only their own options."""
_FLAGS = {s.name: "--" + s.cli_flag for s in hyperparams.TABLE if s.in_config and s.cli_flag}
_BOOLEANS = {s.name for s in hyperparams.TABLE if s.kind is bool}
_TABLES = {s.name: s.section for s in hyperparams.TABLE}
_VALUE = r"('[^']*'|\"[^\"]*\"|\([^)]*\)|\[[^\]]*\]|[^\s,;)]+)"


def _as_flag(flag: str, name: str, value: str) -> str:
    """``name=value`` as the command line writes it: ``--flag value``, ``--flag`` / ``--no-flag`` for a switch."""
    text = value.strip("'\"").removeprefix("torch.")
    if value[:1] in "([":
        text = ",".join(part.strip() for part in value[1:-1].split(","))
    if name in _BOOLEANS and text in ("True", "False", "true", "false"):
        return flag if text.lower() == "true" else "--no-" + flag[2:]
    return f"{flag} {text}"


def spelling(name: str, command: str, sources: Mapping[tuple[str, str], str] | None) -> str | None:
    """How the command names ``name``: its option, or ``table.key (FILE)`` when a file set it; None: no words."""
    extra = ARGUMENTS.get(command, {})
    if name in extra:
        return extra[name]
    if name not in _FLAGS or command not in _SETTINGS_COMMANDS:
        return ""
    source = (sources or {}).get((_TABLES[name], name), "")
    if source.endswith(".toml"):
        return f"{_TABLES[name]}.{name} ({source})"
    return _FLAGS[name]


def translate(message: str, names: tuple[str, ...], command: str,
              sources: Mapping[tuple[str, str], str] | None = None) -> str:
    """``message`` with each of ``names`` in the words of ``command`` (see the module docstring)."""
    plain = {name.split(".", 1)[1] if name.split(".", 1)[0] in ("model", "data", "run") else name for name in names}
    for name in sorted(plain, key=len, reverse=True):
        words = spelling(name, command, sources)
        if words == "":
            continue
        bare = rf"(?<![\w.\-]){re.escape(name)}(?![\w\-(])"
        if words is None:  # the option is named already: drop the Python aside
            message = re.sub(rf"\s*\({re.escape(name)}={_VALUE}\)", "", message)
            continue
        table = _TABLES.get(name)
        if table is not None:
            # "model.lr in FILE" says where already: only a bare key becomes the words
            message = re.sub(rf"(?<![\w.\-]){table}\.{re.escape(name)}(?![\w\-]| in )", words, message)
        if words.startswith("-"):
            message = re.sub(rf"(?<![\w.\-]){re.escape(name)}={_VALUE}", _assignment(words, name), message)
        message = message.replace(f"`{name}`", words)
        if "_" not in name:  # a plain word ("device", "threshold") is a setting where a sentence starts with it
            bare = "^" + bare
        message = re.sub(bare + "(=)?", _word(words), message)
    return message


def _assignment(flag: str, name: str) -> Callable[[re.Match[str]], str]:
    return lambda match: _as_flag(flag, name, match.group(1))


def _word(words: str) -> Callable[[re.Match[str]], str]:
    return lambda match: words + (" " if match.group(1) else "")
