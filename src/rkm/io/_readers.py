"""Reading sample files safely: rows from .npy, .npz and .csv files, and IDX files, gzipped or not.

Internal to :mod:`rkm.io`: :func:`load_array` and :func:`read_idx` are public in
:mod:`rkm.io.datasets`, which loads its ``'file'`` dataset with :func:`load_file`.
"""

from __future__ import annotations

import gzip
import math
import os
import pathlib
import struct
import zlib
from typing import Any

import numpy as np

from rkm.errors import ConfigError, DataError, DatasetNotFoundError

from ..core import _checks
from ._binary import Dataset, binarize

# IDX type byte -> big-endian dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


# --------------------------------------------------------------------------- helpers


def _is_binary(x: np.ndarray) -> bool:
    return bool(np.all((x == 0) | (x == 1)))


def _square_shape(n: int) -> tuple[int, int] | None:
    r = math.isqrt(n)
    return (r, r) if r * r == n and n > 0 else None


def _to_rows(x: np.ndarray, image_shape: Any = None,
             where: str = "data") -> tuple[np.ndarray, tuple[int, int] | None]:
    """Make ``x`` 2-D rows; return it with the image shape it implies (or None)."""
    shape: tuple[int, int] | None = None
    if image_shape is not None:
        try:
            parsed = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"image_shape must be (H, W), got {image_shape!r}") from exc
        if len(parsed) != 2 or min(parsed) < 1:
            raise ConfigError(f"image_shape must be two positive ints (H, W), got {image_shape!r}")
        shape = (parsed[0], parsed[1])
    if x.ndim == 0:
        raise DataError(f"{where} is a scalar; expected rows of samples")
    if x.ndim == 1:
        x = x.reshape(1, -1)
    elif x.ndim == 3:
        hw = (int(x.shape[1]), int(x.shape[2]))
        if shape is not None and shape != hw:
            raise DataError(f"{where} holds images of shape {hw} but image_shape={shape}")
        shape = hw
        x = x.reshape(x.shape[0], -1)
    elif x.ndim != 2:
        raise DataError(f"{where} must be 2-D (rows) or 3-D (N, H, W), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{where} is empty (shape {x.shape})")
    if shape is not None and shape[0] * shape[1] != x.shape[1]:
        raise DataError(f"{where} has {x.shape[1]} values per row, which does not fit "
                        f"image_shape {shape} ({shape[0] * shape[1]} pixels)")
    return x, shape


def _finalize(x: np.ndarray, threshold: float | None, where: str) -> np.ndarray:
    """Binarise with ``threshold``, or check ``x`` is already 0/1 when it is None."""
    if threshold is None:
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise DataError(f"{where} contains NaN or inf")
        if not _is_binary(x):
            raise DataError(f"{where} is not binary (values other than 0 and 1: min {_checks.shown(x.min())}, "
                            f"max {_checks.shown(x.max())}); pass threshold=0.5 (or another threshold, on values "
                            "scaled to [0, 1]) to binarise it", names=("threshold",))
        return np.ascontiguousarray(x, dtype=np.float32)
    return binarize(x, threshold)


def _read_raw_array(path: pathlib.Path, key: str | None = None) -> np.ndarray:
    """Read a .npy, .npz (``key``, or 'train', or the only array) or .csv file."""
    if not path.is_file():
        raise DatasetNotFoundError(f"data file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if key is None:
                    if "train" in keys:
                        key = "train"
                    elif len(keys) == 1:
                        key = keys[0]
                    else:
                        raise DataError(f"{path} holds arrays {keys}; expected a 'train' "
                                        "array (and optionally 'test') or a single array")
                if key not in keys:
                    raise DataError(f"{path} has no array {key!r} (it holds {keys})")
                return z[key]
        if suffix == ".csv":
            try:
                return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
            except ValueError:  # maybe a header line
                return np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2, skiprows=1)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"cannot read {path}: {exc}") from exc
    raise DataError(f"unsupported file type {path.suffix!r} for {path}; use .npy, .npz or .csv")


def load_array(path: str | os.PathLike, *, threshold: float | None = None,
               image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load rows of samples from a ``.npy``, ``.npz`` or ``.csv`` file.

    Parameters
    ----------
    path : str or path-like
        The file. For ``.npz`` the ``'train'`` array is read, or the only array.
        A ``.csv`` may have one header line.
    threshold : float, optional
        Binarise with :func:`binarize` (so 0..255 data is divided by 255). If
        None the values must already be 0/1.
    image_shape : (int, int), optional
        Check that each row has ``H * W`` values.

    Returns
    -------
    numpy.ndarray
        ``(n, n_visible)`` float32 0/1. A 1-D array becomes one row; a 3-D
        ``(N, H, W)`` stack is flattened.

    Raises
    ------
    DatasetNotFoundError
        If the file does not exist.
    DataError
        Unreadable file, wrong shape, wrong image size, non-binary values
        without ``threshold``, NaN/inf.
    """
    p = pathlib.Path(path).expanduser()
    x = _checks.numeric_array(_read_raw_array(p))
    x, _ = _to_rows(x, image_shape, where=str(p))
    return _finalize(x, None if threshold is None else _checks.number("threshold", threshold), str(p))


def load_file(path: pathlib.Path, threshold: float | None) -> Dataset:
    train_raw = _checks.numeric_array(_read_raw_array(path))
    test_raw = None
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                if "train" in z and "test" in z:
                    test_raw = _checks.numeric_array(z["test"])
        except (ValueError, OSError) as exc:
            raise DataError(f"cannot read {path}: {exc}") from exc
    train, shape = _to_rows(train_raw, where=f"{path} (train)")
    if shape is None:
        shape = _square_shape(train.shape[1])
    train = _finalize(train, threshold, f"{path} (train)")
    if test_raw is not None:
        test, _ = _to_rows(test_raw, shape, where=f"{path} (test)")
        if test.shape[1] != train.shape[1]:
            raise DataError(f"{path}: test rows have {test.shape[1]} values, train rows {train.shape[1]}")
        test = _finalize(test, threshold, f"{path} (test)")
        split = f"{len(train)} train / {len(test)} test rows"
    else:
        test = train.copy()
        split = f"{len(train)} rows; no test set in the file, so test = train"
    return Dataset(name=path.name, train=train, test=test, image_shape=shape,
                   description=f"rows from {path}: {split}")


def _open_maybe_gzip(path: pathlib.Path) -> Any:
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file; gzip is detected from its content.

    Returns
    -------
    numpy.ndarray
        The array with the file's dimensions, in native byte order.

    Raises
    ------
    DatasetNotFoundError
        If the file does not exist.
    DataError
        Bad magic number, unknown type byte, or a data size that does not
        match the header (truncated or trailing bytes), or a corrupt gzip.
    """
    p = pathlib.Path(path).expanduser()
    if not p.is_file():
        raise DatasetNotFoundError(f"IDX file {str(p)!r} does not exist")
    try:
        with _open_maybe_gzip(p) as f:
            header = f.read(4)
            if len(header) < 4:
                raise DataError(f"{p} is too short to be an IDX file ({len(header)} bytes)")
            if header[0] != 0 or header[1] != 0:
                raise DataError(f"{p} is not an IDX file: magic number "
                                f"0x{header.hex()} does not start with two zero bytes")
            code, ndim = header[2], header[3]
            if code not in _IDX_DTYPES:
                raise DataError(f"{p}: unknown IDX type byte 0x{code:02x} (magic 0x{header.hex()})")
            if ndim == 0:
                raise DataError(f"{p}: IDX header declares 0 dimensions")
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{p} is truncated: header declares {ndim} dimensions "
                                "but the file ends inside them")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            dtype = np.dtype(_IDX_DTYPES[code])
            expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
            data = f.read(expected)
            if len(data) < expected:
                raise DataError(f"{p} is truncated: header {dims} needs {expected} data bytes, "
                                f"found {len(data)}")
            if f.read(1):
                raise DataError(f"{p} has trailing bytes after the {expected} data bytes "
                                f"its header {dims} declares")
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:  # includes gzip.BadGzipFile
        raise DataError(f"cannot read IDX file {p}: {exc}") from exc
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)
