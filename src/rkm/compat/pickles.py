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
scalars and dtypes. For pyrkm save points (:func:`read_pyrkm_savepoint`), also torch
tensors (their storage bytes are read by ``torch.load(weights_only=True)``), torch
dtypes and devices, ``collections.OrderedDict``, and pyrkm's model classes
``pyrkm.rbm.RBM`` and ``pyrkm.rkm.RKM``, which are never imported: they are mapped to a
plain record of the object's attributes.

:func:`convert_pyrkm` turns a folder of pyrkm save points into rkm save points (through
the public constructors and :func:`rkm.save_model`); the command line runs it as
``rkm convert-pyrkm FOLDER``.
"""

from __future__ import annotations

import argparse
import builtins
import codecs
import collections
import inspect
import io
import os
import pickle
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError, DatasetNotFoundError, RKMError
from ..io.savepoints import save_model
from ..machine import RBM, RKM

__all__ = ["PyrkmState", "convert_pyrkm", "read_pyrkm_savepoint", "unpickle"]

_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "str", "bytes", "bytearray", "int", "float", "complex",
             "bool"}
_NUMPY_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric")
_PYRKM_CLASSES = {("pyrkm.rbm", "RBM"): "RBM", ("pyrkm.rkm", "RKM"): "RKM"}
SAVEPOINT_PATTERN = re.compile(r"^(?P<name>.+)_t(?P<epoch>\d+)\.pkl$")
"""File names of pyrkm save points: ``{model_name}_t{epoch}.pkl``."""


class PyrkmState:
    """What a pickled pyrkm model held, as a plain record; pyrkm is never imported.

    Attributes
    ----------
    class_name : str
        ``'RBM'`` or ``'RKM'``, the pyrkm class the pickle named.
    state : dict
        The object's attributes (tensors, numbers, strings), as pickled.
    """

    class_name = "RKM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.state: dict[str, Any] = {}

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) from objects with __slots__
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise CheckpointError(f"a pickled pyrkm model holds {type(state).__name__} instead of its attributes.")
        self.state = dict(state)

    def __repr__(self) -> str:
        return f"PyrkmState(class_name={self.class_name!r}, attributes={sorted(self.state)})"


def _state_class(name: str) -> type:
    return type(f"Pyrkm{name}State", (PyrkmState,), {"class_name": name})


def _storage_from_bytes(data: bytes) -> torch.TypedStorage | torch.UntypedStorage:
    """A tensor storage pickled inside a plain pickle: read by torch's own weights-only loader."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("a pickled tensor storage is not bytes.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
        try:
            return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as err:
            raise CheckpointError(f"a pickled tensor holds something other than tensor data: {err}") from None


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals (see the module docstring)."""

    def __init__(self, file: BinaryIO, *, tensors: bool, encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self._tensors = tensors

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return getattr(builtins, name)
        if module == "_codecs" and name == "encode":  # how protocol 2 stores bytes
            return codecs.encode
        if module in _NUMPY_MODULES and name in ("_reconstruct", "scalar", "_frombuffer", "ndarray", "dtype"):
            return self._numpy(name)
        if self._tensors:
            found = self._torch(module, name)
            if found is not None:
                return found
        kind = "data files" if not self._tensors else "pyrkm save points"
        raise CheckpointError(
            f"refused to load {module}.{name}: rkm reads {kind} with a restricted unpickler that admits only "
            "plain data (containers, strings, numbers, NumPy arrays"
            + (", torch tensors, pyrkm's RBM/RKM" if self._tensors else "")
            + "), because unpickling anything else can run code. Load files you trust with the tool that wrote them."
        )

    @staticmethod
    def _numpy(name: str) -> Callable[..., Any]:
        if name == "ndarray":
            return np.ndarray
        if name == "dtype":
            return np.dtype
        core = np._core if hasattr(np, "_core") else np.core  # NumPy 2 renamed numpy.core
        module = core.multiarray if name in ("_reconstruct", "scalar") else core.numeric
        return getattr(module, name)

    @staticmethod
    def _torch(module: str, name: str) -> Callable[..., Any] | None:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return torch._utils._rebuild_tensor_v2
        if module == "torch.storage" and name == "_load_from_bytes":
            return _storage_from_bytes
        if module == "torch" and name == "device":
            return torch.device
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if (module, name) in _PYRKM_CLASSES:
            return _state_class(_PYRKM_CLASSES[(module, name)])
        return None

    def persistent_load(self, pid: Any) -> NoReturn:
        raise CheckpointError("refused a persistent reference in the pickle: plain pickles of data have none.")


def _restricted_load(file: str | os.PathLike, *, tensors: bool, encoding: str = "ASCII") -> Any:
    path = Path(file)
    try:
        with open(path, "rb") as fh:
            return _RestrictedUnpickler(fh, tensors=tensors, encoding=encoding).load()
    except FileNotFoundError:
        raise (CheckpointError if tensors else DatasetNotFoundError)(f"{path} does not exist.") from None
    except RKMError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            RuntimeError) as err:
        raise CheckpointError(
            f"{path} is not a readable pickle ({type(err).__name__}: {err}); it may be truncated."
        ) from None


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
        arrays (the message says which global; nothing from the file is run), or is
        truncated.
    DatasetNotFoundError
        If the file does not exist (a ``FileNotFoundError``, as in pyrkm).
    """
    return _restricted_load(file, tensors=False, encoding="bytes")


def read_pyrkm_savepoint(path: str | os.PathLike) -> PyrkmState:
    """Read one pyrkm save point (``{model_name}_t{epoch}.pkl``) as a :class:`PyrkmState`.

    Raises
    ------
    CheckpointError
        If the pickle names anything outside the allow-list, or is not a pyrkm model.
    """
    obj = _restricted_load(path, tensors=True)
    if not isinstance(obj, PyrkmState):
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a pickled pyrkm RBM or RKM.")
    return obj


def _tensor(value: Any, name: str, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, (np.ndarray, int, float)) and not isinstance(value, bool):
        return torch.as_tensor(value)
    raise CheckpointError(f"{path}: the pyrkm attribute {name!r} is a {type(value).__name__}, not a number or tensor.")


def _model_from_state(saved: PyrkmState, path: Path, seed: int) -> RBM:
    """The rkm model a pyrkm state describes, built through the public constructor."""
    state = saved.state
    cls = RKM if saved.class_name == "RKM" else RBM
    seed_parameters = [p.name for p in inspect.signature(cls.__init__).parameters.values()
                       if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]
    missing = {"model_name", "n_visible", "n_hidden", "W", "v_bias", "h_bias"} - set(state)
    if missing:
        raise CheckpointError(f"{path} is not a complete pyrkm model: it has no {', '.join(sorted(missing))}.")
    config = {n: state[n] for n in seed_parameters if n in state}
    try:
        model = cls(**config, seed=seed, device="cpu")
    except RKMError as err:
        raise CheckpointError(f"{path}: the pyrkm model cannot be rebuilt in rkm: {err}") from None
    tensors = {n: _tensor(state[n], n, path) for n in ("W", "v_bias", "h_bias")}
    for name in ("persistent_chains", "m_dW", "m_dv", "m_dh", "v_dW", "v_dv", "v_dh", "ov", "oh"):
        if isinstance(state.get(name), torch.Tensor):
            tensors[name] = state[name].detach()
    for name in ("energy", "power_f", "power_b"):
        value = _tensor(state[name], name, path).reshape(()) if name in state else torch.zeros(())
        tensors[name] = value.to(torch.float64)
    try:
        model.network.load_state_dict(tensors, rng=False)
        model.trainer.load_state_dict(tensors, int(state.get("epoch", 0)))
    except (RKMError, RuntimeError) as err:
        raise CheckpointError(f"{path}: the pyrkm model cannot be rebuilt in rkm: {err}") from None
    return model


def convert_pyrkm(folder: str | os.PathLike, output: str | os.PathLike | None = None, *, seed: int = 0) -> list[Path]:
    """Convert every pyrkm save point in ``folder`` into an rkm save point.

    Each ``{model_name}_t{epoch}.pkl`` is read with the restricted unpickler
    (:func:`read_pyrkm_savepoint`; nothing from the file runs), rebuilt as an
    :class:`rkm.RKM` or :class:`rkm.RBM` with the same settings, parameters, update
    counter, energy, power, persistent chains, Adam moments and centering offsets, and
    written by :func:`rkm.save_model` as ``{model_name}_t{epoch}.safetensors``, which
    :func:`rkm.load_model` then reads.

    Parameters
    ----------
    folder : str or path
        Folder of the pyrkm save points (pyrkm's ``model_state_path``).
    output : str or path, optional
        Where to write the rkm save points; default ``folder`` itself.
    seed : int, keyword-only
        Seed of the converted models' random generators: pyrkm saved no seed or random
        state, so a converted run cannot continue pyrkm's random stream.

    Returns
    -------
    list of pathlib.Path
        The save points written, sorted.

    Raises
    ------
    CheckpointError
        If ``folder`` holds no pyrkm save points, or one of them names anything outside
        the allow-list (nothing is written then for that file or any after it).
    """
    source = Path(folder)
    if not source.is_dir():
        raise CheckpointError(f"{source} is not a folder; pass the folder of the pyrkm save points (*.pkl).")
    files = sorted(p for p in source.iterdir() if SAVEPOINT_PATTERN.match(p.name))
    if not files:
        raise CheckpointError(f"{source} holds no pyrkm save points (files named MODEL_t<update>.pkl).")
    target = source if output is None else Path(output)
    written = []
    for path in files:
        model = _model_from_state(read_pyrkm_savepoint(path), path, seed)
        written.append(save_model(model, target))
    return sorted(written)


# ------------------------------------------------------------------ command line
def add_convert_parser(subparsers: argparse._SubParsersAction, summary: str) -> argparse.ArgumentParser:
    """Register ``rkm convert-pyrkm FOLDER`` on the sub-parsers (``summary``: its line in ``rkm --help``)."""
    parser = subparsers.add_parser(
        "convert-pyrkm",
        help=summary,
        description="Read every pyrkm save point MODEL_t<update>.pkl in FOLDER with a restricted unpickler (no code "
        "from the files runs) and write the same models as rkm save points (safetensors), which rkm.load_model reads.",
    )
    parser.add_argument("folder", type=Path, metavar="FOLDER", help="folder of the pyrkm save points")
    parser.add_argument("-o", "--output", type=Path, help="where to write the rkm save points (default: FOLDER)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the converted models' generators (default 0)")
    return parser


def cmd_convert_pyrkm(args: argparse.Namespace) -> int:
    """Run ``rkm convert-pyrkm``; prints each save point written."""
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}.")
    for path in convert_pyrkm(args.folder, args.output, seed=args.seed):
        print(f"wrote {path}")
    return 0
