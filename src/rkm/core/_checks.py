"""Input checks shared by every module: numbers, intervals, choices, booleans, dtypes, devices, arrays, batches.

Each check returns the value normalised (a Python ``int``/``float``/``bool``, a torch dtype, a
tensor of the model's dtype) or raises a :class:`~rkm.errors.ConfigError` (settings) or
:class:`~rkm.errors.DataError` (data) whose message names the argument and says what is wanted.
"""

from __future__ import annotations

import math
import os
import reprlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError

DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "float32": torch.float32,
    "float64": torch.float64,
}
"""The floating dtypes a model may use, by the name configuration files and save points give them."""

_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class _Brief(reprlib.Repr):
    """``repr`` bounded in depth, length and digits, for values read from files (a list nested 200 000 deep, an
    integer of a million digits)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 4
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = self.maxset = self.maxfrozenset = 20
        self.maxdeque = 20
        self.maxstring = self.maxother = 200

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 200:
            return f"{'a negative' if x < 0 else 'an'} integer of {int(x.bit_length() * math.log10(2)) + 1} digits"
        return repr(x)


_BRIEF = _Brief()


def shown(value: Any) -> str:
    """``value`` as a user reads it: a number as a number (``0.5``, not ``np.float32(0.5)``), text in quotes;
    bounded (nesting, lengths and digits are cut short), however deep or long the value."""
    if isinstance(value, (np.generic, torch.Tensor)) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return _BRIEF.repr(value)


def integer(name: str, value: Any, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``; booleans and non-integers are refused
    (a 0-d integer tensor or array is its integer)."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0 and (
            value.dtype.kind in "iu" if isinstance(value, np.ndarray) else
            not (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {shown(value)}.", names=(name,))
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be an integer <= {maximum}, got {shown(value)}.", names=(name,))
    return int(value)


def number(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False,
           lower: float | None = None, upper: float | None = None) -> float:
    """``value`` as a finite ``float``; booleans and strings are refused.

    ``positive`` asks for > 0, ``nonnegative`` for >= 0, ``lower``/``upper`` for a closed range.
    """
    if isinstance(value, (bool, str, bytes)):
        raise ConfigError(f"{name} must be a number, got {shown(value)}.", names=(name,))
    try:
        result = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{name} must be a number, got {shown(value)}.", names=(name,)) from None
    if not math.isfinite(result):
        raise ConfigError(f"{name} must be finite, got {shown(value)}.", names=(name,))
    if positive and result <= 0:
        raise ConfigError(f"{name} must be > 0, got {shown(value)}.", names=(name,))
    if nonnegative and result < 0:
        raise ConfigError(f"{name} must be >= 0, got {shown(value)}.", names=(name,))
    if (lower is not None and result < lower) or (upper is not None and result > upper):
        raise ConfigError(f"{name} must lie in [{lower}, {upper}], got {shown(value)}.", names=(name,))
    return result


def threshold(value: Any, name: str = "threshold") -> float:
    """A binarisation threshold: a number in [0, 1), since the data is scaled to [0, 1] before it is compared.

    A value above the threshold becomes 1; at 1 or above every value would become 0, below 0 every one 1.
    """
    result = number(name, value)
    if not 0 <= result < 1:
        constant = "0" if result >= 1 else "1"
        raise ConfigError(f"{name} must lie in [0, 1), got {shown(value)}: the data is scaled to [0, 1] before it is "
                          f"compared, so every value would become {constant}. Use 0.5 for images.", names=(name,))
    return result


def interval(name: str, value: Any, *, positive: bool = False) -> tuple[float, float]:
    """``(low, high)`` with ``low < high``, finite (``positive``: ``low > 0``).

    Given as a pair of numbers, or as text ``'low,high'`` or ``'low:high'`` (brackets allowed:
    ``'[1, 2]'``, ``'(1, 2)'``), as configuration files and command lines write it (``:`` where
    commas separate values, as in ``rkm sweep --grid``).
    """
    wanted = f"{name} must be a pair (low, high) of numbers with {'0 < ' if positive else ''}low < high"
    if isinstance(value, str):
        parts = value.strip().strip("()[]").replace(":", ",").split(",")
        try:
            value = [float(part) for part in parts]
        except ValueError:
            raise ConfigError(f"{wanted}, written like 0.01,1; got {shown(value)}.", names=(name,)) from None
    if isinstance(value, (bytes, dict)) or not isinstance(value, Iterable):
        raise ConfigError(f"{wanted}; got {shown(value)}.", names=(name,))
    try:
        pair = list(value)
    except TypeError:  # a 0-d tensor or array: iterable in type only
        raise ConfigError(f"{wanted}; got {shown(value)}.", names=(name,)) from None
    if len(pair) != 2:
        raise ConfigError(f"{wanted}; got {shown(value)}.", names=(name,))
    low = number(f"{name}[0]", pair[0], positive=positive)
    high = number(f"{name}[1]", pair[1], positive=positive)
    if low >= high:
        raise ConfigError(f"{wanted}; got {shown(value)}.", names=(name,))
    return low, high


def choice(name: str, value: Any, choices: Iterable[str]) -> str:
    """``value`` if it is one of ``choices``, else a ConfigError naming them."""
    options = tuple(choices)
    if not isinstance(value, str) or value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ConfigError(f"{name}={shown(value)} is not supported; use one of {listed}.", names=(name,))
    return value


def boolean(name: str, value: Any) -> bool:
    """A real boolean (``bool``, NumPy bool, 0 or 1), or the strings true/false, yes/no, on/off, 1/0.

    Any other value is a ConfigError: ``'False'`` must never silently mean True.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{name} must be true or false, got {shown(value)}.", names=(name,))


def count(name: str, value: Any, held: Any = None) -> int:
    """A counter of the training state (``model.epoch``): an integer in [0, 2^63 - 1]."""
    return integer(name, value, minimum=0, maximum=2**63 - 1)


def accumulated(name: str, value: Any, held: torch.Tensor) -> torch.Tensor:
    """A power or energy of the training state (``model.energy``): a finite number >= 0, kept as ``held`` is."""
    result = number(name, value, nonnegative=True)
    return torch.tensor(result, dtype=held.dtype, device=held.device)


def beta(value: Any, name: str = "beta") -> float:
    """An inverse temperature: a number >= 0 (``inf`` allowed: deterministic units)."""
    wanted = f"{name} must be a number >= 0 (inf for deterministic units), got"
    if isinstance(value, (bool, str, bytes)):
        raise ConfigError(f"{wanted} {shown(value)}.", names=(name,))
    try:
        result = float(value)
    except (TypeError, ValueError, RuntimeError):
        raise ConfigError(f"{wanted} {shown(value)}.", names=(name,)) from None
    if math.isnan(result) or result < 0:
        raise ConfigError(f"{wanted} {shown(value)}.", names=(name,))
    return result


def dtype(value: Any, name: str = "mytype") -> torch.dtype:
    """A floating torch dtype, given as the dtype or by its name (``'float32'``)."""
    if isinstance(value, str) and value.removeprefix("torch.") in DTYPES:
        return DTYPES[value.removeprefix("torch.")]
    if isinstance(value, torch.dtype) and value in DTYPES.values():
        return value
    if value is torch.bfloat16 or (isinstance(value, str) and value.removeprefix("torch.") == "bfloat16"):
        raise ConfigError(f"{name}=bfloat16 is not supported: rkm's samples, metrics and save points go through "
                          f"NumPy, which has no bfloat16; use {name}=float16 (as small) or float32.", names=(name,))
    raise ConfigError(f"{name} must be a floating torch dtype ({', '.join(DTYPES)}), got {shown(value)}.",
                      names=(name,))


def dtype_name(value: torch.dtype) -> str:
    """The name of a floating dtype in :data:`DTYPES` (``torch.float32`` -> ``'float32'``)."""
    return str(value).removeprefix("torch.")


def device(value: Any, generator: torch.Generator | None = None, available: bool = True) -> torch.device:
    """A usable torch device (default: CUDA when available, else CPU; or the generator's device).

    ``available=False`` checks the form only (a configuration that another machine will run).
    """
    if value is None:
        value = generator.device if generator is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        result = torch.device(value)
    except (RuntimeError, TypeError):
        result = None
    if result is None or result.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={shown(value)} is not a device rkm runs on; use device='cpu' or device='cuda'.",
                          names=("device",))
    if available and result.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was asked for but no CUDA device is available; use device='cpu'.",
                          names=("device",))
    if generator is not None and generator.device.type != result.type:
        raise ConfigError(f"the generator lives on {generator.device} but the model on {result}; create it there.")
    return result


def folder(name: str, value: Any) -> Path:
    """A folder given as ``str`` or ``os.PathLike``, without NUL bytes, that is a folder or can become one.

    A path that is a file, or lies under one, is a ConfigError.
    """
    if isinstance(value, bytes) or not isinstance(value, (str, os.PathLike)):
        raise ConfigError(f"{name} must be a folder path (str or pathlib.Path), got {type(value).__name__} {value!r}.",
                          names=(name,))
    result = Path(value)
    if "\0" in str(result):
        raise ConfigError(f"{name} must be a path without NUL bytes, got {shown(value)}.", names=(name,))
    for candidate in (result, *result.parents):
        if candidate.exists() and not candidate.is_dir():
            if candidate != result:
                where = f"lies under the file {candidate}"
            else:
                where = "is a file, not a folder" if candidate.is_file() else "is not a folder"
            raise ConfigError(f"{name} {result} {where}; choose a folder.", names=(name,))
    return result


# ------------------------------------------------------------------ arrays
def numeric_array(x: Any, name: str = "data") -> np.ndarray:
    """``x`` as a NumPy array of bools, integers or floats (tensors are moved to the CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.is_complex():
            raise DataError(f"{name} must be real-valued, got a complex tensor.")
        x = x.numpy() if x.dtype != torch.bfloat16 else x.float().numpy()
    elif hasattr(x, "detach"):  # tensor-like objects of other libraries
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:  # ragged lists and the like
        raise DataError(f"cannot convert {name} to a numeric array: {exc}") from None
    if arr.dtype.kind not in "biuf":
        held = {"U": "text", "S": "bytes", "O": "Python objects (such as None)", "c": "complex numbers",
                "M": "dates", "m": "time spans", "V": "records with named fields (a structured array)"}.get(
                    arr.dtype.kind, f"values of dtype {arr.dtype}")
        raise DataError(f"{name} must be numeric (bool, int or float), got {held}.")
    return arr


def parameter(name: str, value: Any, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A model parameter given by the user (``model.W = ...``): a real array or tensor of ``shape``,
    as a tensor of ``dtype`` on ``device`` that autograd does not track (rkm computes its own updates)."""
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(numeric_array(value, name))
    elif value.is_complex() or value.dtype == torch.bool:
        raise DataError(f"{name} must hold real numbers, got a {value.dtype} tensor.")
    tensor = value.detach().to(dtype=dtype, device=device)
    if tuple(tensor.shape) != shape:
        raise DataError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}.")
    return tensor


def float_array(x: Any, name: str, *, finite: bool = True) -> np.ndarray:
    """``x`` as a float64 NumPy array; ``finite`` refuses NaN and inf."""
    arr = numeric_array(x, name).astype(np.float64, copy=False)
    if finite and not np.all(np.isfinite(arr)):
        raise DataError(f"{name} contains NaN or inf; pass finite values.")
    return arr


def rows(x: Any, name: str) -> np.ndarray:
    """``x`` as a non-empty, finite, C-contiguous float64 array of shape (n_samples, n_features)."""
    arr = np.ascontiguousarray(float_array(x, name, finite=False))
    if arr.ndim != 2:
        raise DataError(
            f"{name} must be 2-D with samples as rows (n_samples, n_visible), got shape "
            f"{arr.shape}; reshape images to one row each."
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(f"{name} is empty (shape {arr.shape}).")
    if not np.isfinite(arr).all():
        raise DataError(f"{name} contains NaN or infinite values.")
    return arr


VALUES = ("binary", "probabilities", "any")
"""What training data may hold: 0/1 only, values in [0, 1] (clamped as they are), or anything."""


def _diagnosis(low: float, high: float, integral: bool, spins: bool) -> str:
    """What data with this range most likely is, and how to turn it into 0/1 data."""
    binarize = "rkm.io.datasets.binarize"
    if spins:
        return "-1/+1 spins? map them to 0/1 with (x + 1) / 2"
    if low >= 0 and integral and high <= 255:
        return f"images of 0-255? binarise them with {binarize}(x, threshold=0.5) (it divides by 255 first)"
    if low >= 0 and high <= 1:
        return (f"grey values in [0, 1]? binarise them with {binarize}(x, threshold=0.5), or pass "
                "values='probabilities' to clamp them as they are")
    return f"rescale them to [0, 1] and binarise with {binarize}(x, threshold=0.5)"


def data_values(tensor: torch.Tensor, name: str, values: str) -> None:
    """Raise a DataError if ``tensor`` holds other values than ``values`` allows (:data:`VALUES`)."""
    if values == "any":
        return
    outside = (tensor < 0).logical_or_(tensor > 1) if values == "probabilities" else (
        (tensor != 0).logical_and_(tensor != 1))
    if not bool(outside.any()):
        return
    low, high = float(tensor.min()), float(tensor.max())
    integral = bool((tensor == tensor.round()).all())
    spins = bool(((tensor == -1) | (tensor == 1)).all())
    wanted = "0 and 1" if values == "binary" else "values in [0, 1]"
    raise DataError(f"{name} holds values other than {wanted} (min {low:g}, max {high:g}): "
                    f"{_diagnosis(low, high, integral, spins)}.")


def all_finite(tensor: torch.Tensor) -> bool:
    """No NaN or inf in ``tensor``: one sum decides unless it overflows, then an exact check."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def batch(x: Any, n: int, name: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, bool]:
    """User input as a finite (batch, n) tensor of ``dtype`` on ``device``; ``single`` if it was one row."""
    if not isinstance(x, torch.Tensor):
        if isinstance(x, (list, tuple)) and len(x) == 0:
            raise DataError(f"{name} is empty; pass a (batch, {n}) array.")
        x = torch.as_tensor(numeric_array(x, name))
    elif x.is_complex():
        raise DataError(f"{name} must be real-valued, got a complex tensor.")
    tensor = x.detach().to(device=device, dtype=dtype)
    single = tensor.dim() == 1
    if single:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2 or tensor.shape[1] != n:
        raise DataError(
            f"{name} must have shape (batch, {n}) for this model, got {tuple(tensor.shape)}; "
            "flatten images to rows first."
        )
    if tensor.shape[0] == 0:
        raise DataError(f"{name} has no rows; pass at least one sample of {n} values.")
    if not all_finite(tensor):
        raise DataError(f"{name} contains NaN or inf; clean the data first.")
    return tensor, single
