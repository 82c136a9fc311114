"""Files written by pyrkm 0.1.0, read without running code from them.

pyrkm pickled whole objects: its datasets' data files, and its models at every save
point (``{model_name}_t{epoch}.pkl``). Unpickling runs whatever the file names, so rkm
reads these files with a restricted unpickler: every global the pickle names is looked
up in an allow-list, and anything else stops the load with a
:class:`~rkm.errors.CheckpointError` that names it. Nothing is imported on the file's
behalf, and no code from the file runs.

Allowed, for :func:`unpickle` (data files): the builtin containers and scalars
(``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``,
``bytearray``, ``int``, ``float``, ``complex``, ``bool``, ``None``) and NumPy arrays,
scalars and dtypes; ``bytes`` and ``bytearray`` without their count form, codecs only
Latin-1, UTF-8 and ASCII. For pyrkm save points (:func:`read_pyrkm_savepoint`), also torch
tensors (their storage bytes are read by ``torch.load(weights_only=True)``; a view that
reaches past its storage is refused), torch dtypes and devices, ``collections.OrderedDict``,
and pyrkm's model classes ``pyrkm.rbm.RBM`` and ``pyrkm.rkm.RKM``, which are never
imported: they are mapped to a plain record of the object's attributes. A file is read only
if it is a regular file, and every length its opcodes declare is held against its size
before anything is built (:mod:`rkm.compat._unpickler`).

:func:`convert_pyrkm` turns a folder of pyrkm save points into rkm save points (through
the public constructors and :func:`rkm.save_model`), each checked exactly as
:func:`rkm.load_model` checks a save point before it is written, so a converted file always
loads; a file that cannot be converted is reported and the others are converted. The command
line runs it as ``rkm convert-pyrkm FOLDER``.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import hyperparams
from ..core import _checks
from ..core._checks import shown
from ..errors import CheckpointError, ConfigError, RKMError
from ..io.savepoints import save_model, savepoint_path
from ..machine import RBM, RKM, restore
from ._unpickler import PyrkmState, restricted_load

__all__ = ["Conversion", "PyrkmState", "convert_each", "convert_pyrkm", "read_pyrkm_savepoint", "unpickle"]

SAVEPOINT_PATTERN = re.compile(r"^(?P<name>.+)_t(?P<epoch>\d+)\.pkl$")
"""File names of pyrkm save points: ``{model_name}_t{epoch}.pkl``."""


def unpickle(file: str | os.PathLike) -> Any:
    """Load a data file pickled by pyrkm's datasets (e.g. CIFAR-style batches), safely.

    Parameters
    ----------
    file : str or path
        The pickle file.

    Returns
    -------
    object
        The unpickled data, read with ``encoding='bytes'`` as pyrkm did (so the keys of
        a Python 2 pickle are ``bytes``).

    Raises
    ------
    CheckpointError
        If the file names anything but builtin containers, strings, numbers and NumPy
        arrays (the message says which global; nothing from the file is run), is
        truncated, declares more bytes than it holds, or is not a regular file.
    DatasetNotFoundError
        If the file does not exist (a ``FileNotFoundError``, as in pyrkm).
    """
    return restricted_load(file, tensors=False, encoding="bytes")


def read_pyrkm_savepoint(path: str | os.PathLike) -> PyrkmState:
    """Read one pyrkm save point (``{model_name}_t{epoch}.pkl``) as a :class:`PyrkmState`.

    Raises
    ------
    CheckpointError
        If the pickle names anything outside the allow-list, or is not a pyrkm model.
    """
    obj = restricted_load(path, tensors=True)
    if not isinstance(obj, PyrkmState):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a pickled pyrkm RBM or RKM.")
    return obj


def _tensor(value: Any, name: str, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return torch.as_tensor(value)
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return torch.as_tensor(value)
    kind = f"array of {value.dtype}" if isinstance(value, np.ndarray) else type(value).__name__
    raise CheckpointError(f"{path}: the pyrkm attribute {name!r} is a {kind}, not a number or tensor of numbers.")


def _update(state: dict[str, Any], path: Path) -> int:
    epoch = state.get("epoch", 0)
    if (isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer))
            or not 0 <= int(epoch) <= hyperparams.MAX_COUNT):
        raise CheckpointError(f"{path}: the pyrkm attribute 'epoch' is {shown(epoch)}, not an update count (an integer "
                              f"from 0 to {hyperparams.MAX_COUNT}).")
    return int(epoch)


def _model_from_state(saved: PyrkmState, path: Path, seed: int) -> RBM:
    """The rkm model a pyrkm state describes, built through the public constructor and checked as
    :func:`rkm.load_model` checks a save point."""
    state = saved.state
    cls = RKM if saved.class_name == "RKM" else RBM
    seed_parameters = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                       if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    missing = {"model_name", "n_visible", "n_hidden", "W", "v_bias", "h_bias"} - set(state)
    if missing:
        raise CheckpointError(f"{path} is not a complete pyrkm model: it has no {', '.join(sorted(missing))}.")
    config = {n: state[n] for n in seed_parameters if n in state}
    update = _update(state, path)
    tensors = {n: _tensor(state[n], n, path) for n in ("W", "v_bias", "h_bias")}
    for name in ("persistent_chains", "m_dW", "m_dv", "m_dh", "v_dW", "v_dv", "v_dh", "ov", "oh"):
        if isinstance(state.get(name), torch.Tensor):
            tensors[name] = state[name].detach()
    for name in ("energy", "power_f", "power_b"):
        value = _tensor(state[name], name, path) if name in state else torch.zeros(())
        if value.numel() != 1:
            raise CheckpointError(f"{path}: the pyrkm attribute {name!r} has {value.numel()} values; it is one "
                                  "number.")
        tensors[name] = value.reshape(()).to(torch.float64)
    try:
        model = cls(**config, seed=seed, device="cpu")
        model.network.load_state_dict(tensors, rng=False)
        model.trainer.load_state_dict(tensors, update)
        tensors, header = model.savepoint()
        restore(tensors, header, device="cpu", source=path)
    except (RKMError, RuntimeError, TypeError, ValueError, RecursionError) as err:
        reason = "it nests its values too deeply" if isinstance(err, RecursionError) else str(err)
        raise CheckpointError(f"{path}: the pyrkm model cannot be rebuilt in rkm: {reason}") from None
    return model


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert_each` did with one pyrkm save point: ``target`` written, or ``error`` why not.

    Attributes
    ----------
    source : pathlib.Path
        The pyrkm save point.
    target : pathlib.Path or None
        The rkm save point written, or None.
    error : str
        Why nothing was written (empty when ``target`` is written).
    """

    source: Path
    target: Path | None
    error: str = ""


def _pyrkm_files(folder: str | os.PathLike) -> list[Path]:
    source = Path(folder)
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a folder; pass the folder of the pyrkm save points (*.pkl).")
    files = sorted(p for p in source.iterdir() if SAVEPOINT_PATTERN.match(p.name))
    if not files:
        raise CheckpointError(f"{source} holds no pyrkm save points (files named MODEL_t<update>.pkl).")
    return files


def convert_each(folder: str | os.PathLike, output: str | os.PathLike | None = None, *,
                 seed: int = 0) -> list[Conversion]:
    """Convert every pyrkm save point of ``folder`` that can be converted; one :class:`Conversion` per file.

    A file that cannot be read, rebuilt or checked (see :func:`convert_pyrkm`) is not written and
    its :class:`Conversion` says why; the other files are converted. A file whose model and update give
    the name of a save point this conversion already wrote (two pickles of one update) is not written
    either: a conversion never overwrites its own output.

    Parameters
    ----------
    folder : str or path-like
        The folder of pyrkm's ``*.pkl`` save points.
    output : str or path-like, optional
        Where the rkm save points go; default ``folder``.
    seed : int
        The seed the converted models record (pyrkm saved none).

    Returns
    -------
    list of Conversion
        One per pyrkm save point, in file-name order.

    Raises
    ------
    rkm.errors.CheckpointError
        ``folder`` is not a folder or holds no pyrkm save points (``MODEL_t<update>.pkl``).
    rkm.errors.ConfigError
        ``output`` is a file or a device, not a folder (found before anything is read).
    rkm.errors.StorageError
        A failure to write (a full disk) stops the conversion.
    """
    target = Path(folder) if output is None else _checks.folder("output", output)
    done: list[Conversion] = []
    written: dict[Path, Path] = {}
    for path in _pyrkm_files(folder):
        try:
            model = _model_from_state(read_pyrkm_savepoint(path), path, seed)
        except CheckpointError as err:
            done.append(Conversion(path, None, str(err)))
            continue
        name = savepoint_path(target, model.model_name, model.epoch)
        if name in written:
            done.append(Conversion(path, None, f"{path}: its model {model.model_name!r} at update {model.epoch} "
                                   f"would be written as {name}, which this conversion wrote from {written[name]}; "
                                   "not overwritten. Move one of the two pickles out of the folder and convert it on "
                                   "its own, into another folder."))
            continue
        written[name] = path
        done.append(Conversion(path, save_model(model, target)))
    return done


def convert_pyrkm(folder: str | os.PathLike, output: str | os.PathLike | None = None, *, seed: int = 0,
                  strict: bool = False) -> list[Path]:
    """Convert every pyrkm save point in ``folder`` into an rkm save point.

    Each ``{model_name}_t{epoch}.pkl`` is read with the restricted unpickler
    (:func:`read_pyrkm_savepoint`; nothing from the file runs), rebuilt as an
    :class:`rkm.RKM` or :class:`rkm.RBM` with the same settings, parameters, update
    counter, energy, power, persistent chains, Adam moments and centering offsets, checked
    exactly as :func:`rkm.load_model` checks a save point (:func:`rkm.machine.restore`: shapes,
    ranges, the update counter, finite values), and only then written by
    :func:`rkm.save_model` as ``{model_name}_t{epoch}.safetensors``, which :func:`rkm.load_model`
    then reads. A file that fails is not written and the others are converted
    (:func:`convert_each` says what happened to each file).

    Parameters
    ----------
    folder : str or path
        Folder of the pyrkm save points (pyrkm's ``model_state_path``).
    output : str or path, optional
        Where to write the rkm save points; default ``folder`` itself.
    seed : int, keyword-only
        Seed of the converted models' random generators: pyrkm saved no seed or random
        state, so a converted run cannot continue pyrkm's random stream.
    strict : bool, keyword-only
        Raise when any file could not be converted (after converting the others).

    Returns
    -------
    list of pathlib.Path
        The save points written, sorted.

    Raises
    ------
    CheckpointError
        If ``folder`` holds no pyrkm save points, if none of them could be converted, or
        (``strict``) if one could not; the message names each file and why.
    """
    done = convert_each(folder, output, seed=seed)
    failed = [c for c in done if c.target is None]
    if failed and (strict or len(failed) == len(done)):
        reasons = " ".join(f"{c.error}" for c in failed)
        lead = "none of the" if len(failed) == len(done) else f"{len(failed)} of the"
        raise CheckpointError(f"{lead} {len(done)} pyrkm save points in {folder} could be converted: {reasons}")
    return sorted(c.target for c in done if c.target is not None)


# ------------------------------------------------------------------ command line
def add_convert_parser(subparsers: argparse._SubParsersAction, summary: str) -> argparse.ArgumentParser:
    """Register ``rkm convert-pyrkm FOLDER`` on the sub-parsers (``summary``: its line in ``rkm --help``)."""
    parser = subparsers.add_parser(
        "convert-pyrkm",
        help=summary,
        description="Read every pyrkm save point MODEL_t<update>.pkl in FOLDER with a restricted unpickler (no code "
        "from the files runs), check each model as rkm.load_model will, and write it as an rkm save point "
        "(safetensors). Prints what it did with each file; a file that cannot be converted (a truncated last save "
        "point of a killed job, say) is reported and the others are converted. Exit status 2 if none could be "
        "converted, or with --strict if any could not.",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of the pyrkm save points")
    parser.add_argument("-o", "--output", type=Path, help="where to write the rkm save points (default: FOLDER)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the converted models' generators (default 0)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 2 if any file could not be converted (the others are still converted)")
    return parser


def cmd_convert_pyrkm(args: argparse.Namespace) -> int:
    """Run ``rkm convert-pyrkm``: one line per file (converted, or why not), then a count."""
    if not 0 <= args.seed <= hyperparams.MAX_COUNT:
        raise ConfigError(f"--seed must be between 0 and {hyperparams.MAX_COUNT}, got {args.seed}.")
    done = convert_each(args.folder, args.output, seed=args.seed)
    for c in done:
        print(f"converted {c.source} -> {c.target}" if c.target is not None else f"not converted: {c.error}")
    failed = sum(c.target is None for c in done)
    print(f"{len(done) - failed} of {len(done)} pyrkm save points converted")
    if failed == len(done):
        raise CheckpointError(f"none of the {len(done)} pyrkm save points in {args.folder} could be converted (each "
                              "reason is above).")
    if failed and args.strict:
        raise CheckpointError(f"{failed} of the {len(done)} pyrkm save points in {args.folder} could not be converted "
                              "(--strict; each reason is above).")
    return 0
