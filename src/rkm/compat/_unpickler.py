"""The restricted unpickler behind :mod:`rkm.compat.pickles`: plain data only, every declared size checked.

A pickle is read whole from a regular file (``rkm.io._files``: a FIFO never blocks the read), and
its opcodes are walked once by :func:`pickletools.genops` before anything is built, so a length
or frame that claims more bytes than the file holds is refused before it is allocated. The
unpickler then resolves only allow-listed globals, several of them through guards: ``bytes`` and
``bytearray`` refuse a count (``bytes(10**13)`` would allocate it), ``_codecs.encode`` and
``str`` accept only the Latin-1, UTF-8 and ASCII codecs pickles use, and a torch tensor's size,
strides and offset must lie within its storage. Any failure is a
:class:`~rkm.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import io
import math
import os
import pickle
import pickletools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import numpy as np
import torch

from ..errors import CheckpointError, DatasetNotFoundError, RKMError
from ..io import _files

_BUILTINS = {"dict", "list", "tuple", "set", "frozenset", "int", "float", "complex", "bool"}
_NUMPY_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
                  "numpy._core.numeric")
_PYRKM_CLASSES = {("pyrkm.rbm", "RBM"): "RBM", ("pyrkm.rkm", "RKM"): "RKM"}
_CODECS = frozenset({"latin1", "latin-1", "iso-8859-1", "utf-8", "utf8", "ascii"})
"""The codecs pickles use for text and bytes (protocol 2 stores bytes as Latin-1 text)."""
_ERRORS = (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
           RuntimeError, LookupError, MemoryError, OverflowError, RecursionError)
"""What unpickling damaged or hostile bytes raises (a declared size too large to allocate included)."""


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


# ------------------------------------------------------------------ guarded globals
def _codec(encoding: Any) -> str:
    if not isinstance(encoding, str) or encoding.lower().replace("_", "-") not in _CODECS:
        raise CheckpointError(f"refused the codec {encoding!r}: pickles of data use Latin-1, UTF-8 or ASCII.")
    return encoding


def _sized(kind: type) -> Callable[..., Any]:
    """``bytes`` or ``bytearray`` without the form that allocates a count of zero bytes."""

    def make(*args: Any) -> Any:
        if args and isinstance(args[0], int):
            raise CheckpointError(f"refused {kind.__name__}({args[0]!r}): a pickle of data holds its bytes, it does "
                                  "not ask for a count of zeros.")
        if len(args) > 1:
            _codec(args[1])
        return kind(*args)

    return make


def _text(*args: Any) -> str:
    if len(args) > 1:
        _codec(args[1])
    return str(*args)


def _encode(obj: Any, encoding: Any = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode``, how protocol 2 stores bytes, with the pickles' codecs only."""
    return codecs.encode(obj, _codec(encoding), errors)


def _storage_from_bytes(data: Any) -> torch.TypedStorage | torch.UntypedStorage:
    """A tensor storage pickled inside a plain pickle: read by torch's own weights-only loader."""
    if not isinstance(data, (bytes, bytearray)):
        raise CheckpointError("a pickled tensor storage is not bytes.")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
        try:
            return torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except (*_ERRORS, OSError) as err:
            raise CheckpointError(f"a pickled tensor holds something other than tensor data ({type(err).__name__}: "
                                  f"{err})") from None


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    hooks: Any = None, metadata: Any = None) -> torch.Tensor:
    """``torch._utils._rebuild_tensor_v2`` once the view it describes lies within its storage."""
    if not isinstance(storage, torch.TypedStorage):
        raise CheckpointError("a pickled tensor has no tensor storage.")
    if not (isinstance(size, tuple) and isinstance(stride, tuple) and len(size) == len(stride)
            and all(map(_whole, (offset, *size, *stride)))):
        raise CheckpointError(f"a pickled tensor has a malformed view (offset {offset!r}, size {size!r}, stride "
                              f"{stride!r}).")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TypedStorage is deprecated", category=UserWarning)
        elements = storage.size()
    if math.prod(size) and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= elements:
        raise CheckpointError(f"a pickled tensor of size {size}, stride {stride} and offset {offset} reaches past its "
                              f"storage of {elements} elements; the file is corrupted.")
    if requires_grad not in (False, True) or hooks or metadata:
        raise CheckpointError("a pickled tensor carries gradient hooks or metadata that plain data has not.")
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, bool(requires_grad),
                                           collections.OrderedDict())


_TORCH: dict[tuple[str, str], Callable[..., Any]] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _storage_from_bytes,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): collections.OrderedDict,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the allow-listed globals (see :mod:`rkm.compat.pickles`)."""

    def __init__(self, file: BinaryIO, *, tensors: bool, encoding: str = "ASCII") -> None:
        super().__init__(file, encoding=encoding)
        self._tensors = tensors

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if module in ("builtins", "__builtin__"):
            if name in _BUILTINS:
                return getattr(builtins, name)
            guarded = {"bytes": _sized(bytes), "bytearray": _sized(bytearray), "str": _text}.get(name)
            if guarded is not None:
                return guarded
        if module == "_codecs" and name == "encode":
            return _encode
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
        if (module, name) in _TORCH:
            return _TORCH[(module, name)]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if (module, name) in _PYRKM_CLASSES:
            return _state_class(_PYRKM_CLASSES[(module, name)])
        return None

    def persistent_load(self, pid: Any) -> NoReturn:
        raise CheckpointError("refused a persistent reference in the pickle: plain pickles of data have none.")


def _check_opcodes(data: bytes, path: Path) -> None:
    """Walk the opcodes once: every length they declare (a frame's too) within the file, the pickle complete."""
    try:
        for opcode, argument, position in pickletools.genops(data):
            if opcode.name == "FRAME" and isinstance(argument, int) and argument > len(data) - (position or 0):
                raise ValueError(f"a frame of {argument} bytes at byte {position} of a {len(data)}-byte file")
    except _ERRORS as err:
        raise CheckpointError(f"{path} is not a readable pickle ({type(err).__name__}: {err}); it may be "
                              "truncated.") from None


def restricted_load(file: str | os.PathLike, *, tensors: bool, encoding: str = "ASCII") -> Any:
    """The object pickled in the regular file ``file``, read with the restricted unpickler.

    ``tensors``: admit torch tensors and pyrkm's model classes (save points), not only plain data.
    """
    path = Path(file)
    missing = CheckpointError if tensors else DatasetNotFoundError
    data = _files.read_bytes(path, "pickle", CheckpointError, missing)
    _check_opcodes(data, path)
    try:
        return _RestrictedUnpickler(io.BytesIO(data), tensors=tensors, encoding=encoding).load()
    except RKMError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except _ERRORS as err:
        raise CheckpointError(
            f"{path} is not a readable pickle ({type(err).__name__}: {err}); it may be truncated."
        ) from None
