"""Reading sample files safely: rows from .npy, .npz and .csv files, and IDX files, gzipped or not.

Internal to :mod:`rkm.io`: :func:`load_array` and :func:`read_idx` are public in
:mod:`rkm.io.datasets`, which loads its ``'file'`` dataset with :func:`load_file`.
"""

from __future__ import annotations

import gzip
import io
import lzma
import math
import os
import pathlib
import struct
import zipfile
import zlib
from typing import Any

import numpy as np

from rkm.errors import ConfigError, DataError, DatasetNotFoundError, RKMError

from ..core import _checks, limits
from . import _files
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


def _read_exactly(stream: Any, n: int, source: Any) -> bytearray:
    """``n`` bytes of ``stream`` into a new buffer, or a DataError if it ends early."""
    buffer = bytearray(n)
    view, got = memoryview(buffer), 0
    while got < n:
        chunk = stream.readinto(view[got:])
        if not chunk:
            raise DataError(f"{source} is truncated: it ended {n - got} bytes before the data its header declares.")
        got += chunk
    return buffer


def _declared(source: Any, what: str, nbytes: int, holds: int | None, count: int) -> None:
    """Refuse ``nbytes`` declared by a header when the file ``holds`` other than that, or when memory cannot hold
    them and the float64 copy of their ``count`` values that every reader makes."""
    if holds is not None and nbytes > holds:
        raise DataError(f"{source} is truncated or corrupted: it declares {what} ({nbytes} data bytes) but holds "
                        f"{holds} bytes of data.")
    if holds is not None and nbytes < holds:
        raise DataError(f"{source} has trailing bytes: it declares {what} ({nbytes} data bytes) but holds {holds}; it "
                        "is corrupted.")
    limits.require(f"reading {source}", nbytes + 8 * count, "cpu",
                   "the file declares more data than this machine has room for")


def _npy_array(stream: Any, length: int, source: Any) -> np.ndarray:
    """The array of the ``.npy`` bytes of ``stream`` (``length`` bytes in all), its header checked first."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0), (3, 0)):
        raise DataError(f"{source} is an .npy file of version {version[0]}.{version[1]}, which NumPy cannot read.")
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = read_header(stream)
    except (ValueError, TypeError, SyntaxError, OverflowError, RecursionError):
        raise DataError(f"{source} has a damaged .npy header: it is not the short description of an array of numbers "
                        "that numpy.save writes (at most 10000 bytes); the file is corrupted or not an .npy file."
                        ) from None
    if dtype.hasobject:
        raise DataError(f"{source} holds Python objects (dtype {dtype}); rkm reads arrays of numbers only.")
    count = math.prod(shape)
    _declared(source, f"an array of shape {shape} of {dtype}", count * dtype.itemsize, length - stream.tell(), count)
    data = _read_exactly(stream, count * dtype.itemsize, source)
    if stream.read(1):
        raise DataError(f"{source} has bytes after the array its header declares; it is corrupted.")
    return np.frombuffer(data, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


_ENCRYPTED = 0x1
"""The flag bit of an encrypted member of a zip archive."""


def _npz_members(archive: zipfile.ZipFile, path: pathlib.Path, wanted: dict[str, str]) -> dict[str, np.ndarray]:
    """``{part: array}`` of the members ``wanted[part]`` (names without ``.npy``) of an open ``.npz`` archive."""
    arrays = {}
    for part, key in wanted.items():
        info = archive.getinfo(key + ".npy")
        if info.flag_bits & _ENCRYPTED:
            raise DataError(f"{path}: its array {key!r} is encrypted (password-protected); rkm reads .npz files as "
                            "numpy.savez writes them, unencrypted. Save the arrays again with numpy.savez.")
        with archive.open(info) as member:
            arrays[part] = _npy_array(member, info.file_size, f"{path} (array {key!r})")
    return arrays


def _npz_arrays(fh: Any, path: pathlib.Path) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` file to train on: ``train`` (and ``test`` if present), or its only array."""
    with zipfile.ZipFile(fh) as archive:
        keys = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
        wanted: dict[str, str]
        if "train" in keys:
            wanted = {part: part for part in ("train", "test") if part in keys}
        elif len(keys) == 1:
            wanted = {"train": keys[0]}
        else:
            raise DataError(f"{path} holds arrays {keys}; expected a 'train' array (and optionally 'test') or a single "
                            "array")
        return _npz_members(archive, path, wanted)


_CONTAINER_ERRORS = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError, ValueError, KeyError,
                     NotImplementedError, RuntimeError, RecursionError, OverflowError, struct.error, MemoryError)
"""What NumPy, zipfile, gzip and the CSV parser raise on a damaged file (``UnicodeDecodeError`` is a ValueError)."""


def _read_arrays(path: pathlib.Path) -> dict[str, np.ndarray]:
    """The ``train`` array (and a ``.npz`` file's ``test`` array) of a .npy, .npz or .csv file."""
    suffix = path.suffix.lower()
    if suffix not in (".npy", ".npz", ".csv"):
        raise DataError(f"unsupported file type {path.suffix!r} for {path}; use .npy, .npz or .csv")
    try:
        with _files.regular_file(path, "data file", DataError, DatasetNotFoundError) as (fh, size):
            if suffix == ".npy":
                return {"train": _npy_array(fh, size, path)}
            if suffix == ".npz":
                return _npz_arrays(fh, path)
            return {"train": _csv_rows(fh.read().decode("utf-8-sig"), path)}
    except RKMError:
        raise
    except _CONTAINER_ERRORS as exc:
        raise DataError(f"cannot read {path}: {_reason(exc)}") from None


def _csv_rows(text: str, path: pathlib.Path) -> np.ndarray:
    """The numbers of a CSV text, whose first line may be a header: a line in which no field is a number."""
    lines = text.splitlines()
    header = bool(lines) and not any(_number(field) for field in lines[0].split(","))
    if not any(line.strip() for line in lines[int(header):]):
        raise DataError(f"{path} holds no rows of numbers")
    try:
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float64, ndmin=2, skiprows=int(header))
    except ValueError:
        raise _csv_problem(lines, int(header), path) from None


def _number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _csv_problem(lines: list[str], first: int, path: pathlib.Path) -> DataError:
    """The error of a CSV text NumPy could not read: its first field that is not a number, or its first ragged row."""
    width: tuple[int, int] | None = None
    for number, line in enumerate(lines[first:], start=first + 1):
        fields = line.split("#", 1)[0].split(",")
        if not line.split("#", 1)[0].strip():
            continue
        for column, field in enumerate(fields, start=1):
            if not _number(field):
                return DataError(f"{path}, line {number}, value {column}: {field.strip()!r} is not a number; a data "
                                 "file holds rows of numbers separated by commas (and at most one header line).")
        if width is None:
            width = (len(fields), number)
        elif len(fields) != width[0]:
            return DataError(f"{path}, line {number} has {len(fields)} values but line {width[1]} has {width[0]}; "
                             "every row needs the same number of values.")
    return DataError(f"{path} is not rows of numbers separated by commas (and at most one header line).")


def _reason(exc: BaseException) -> str:
    """Why a container library could not read a file, in rkm's words where the case is known."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, MemoryError):
        return ("it unpacks to more data than this machine has memory for (compressed, it looked smaller); read it on "
                "a machine with more memory, or keep fewer rows")
    if isinstance(exc, UnicodeDecodeError):
        return "it is not text (a .csv file is UTF-8 or ASCII text of numbers)"
    if isinstance(exc, zipfile.BadZipFile):
        return "it is not a complete .npz (zip) archive: it was cut short, damaged, or is another kind of file"
    if isinstance(exc, (EOFError, zlib.error, lzma.LZMAError)):
        return "it was cut short or damaged"
    if "magic string" in str(exc):
        return "it is not an .npy array (it lacks NumPy's signature at its start), or it was cut short"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return f"{type(exc).__name__}: {exc}"


def read_npz(path: pathlib.Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of the ``.npz`` file ``path``, each header checked against the data before it is read."""
    try:
        with _files.regular_file(path, "data file", DataError, DatasetNotFoundError) as (fh, _), \
                zipfile.ZipFile(fh) as archive:
            present = [name[:-4] for name in archive.namelist() if name.endswith(".npy")]
            missing = [key for key in keys if key not in present]
            if missing:
                raise DataError(f"{path} lacks the arrays {missing} (it holds {present})")
            return _npz_members(archive, path, {key: key for key in keys})
    except RKMError:
        raise
    except _CONTAINER_ERRORS as exc:
        raise DataError(f"cannot read {path}: {_reason(exc)}") from None


def load_array(path: str | os.PathLike, *, threshold: float | None = None,
               image_shape: tuple[int, int] | None = None) -> np.ndarray:
    """Load rows of samples from a ``.npy``, ``.npz`` or ``.csv`` file.

    Parameters
    ----------
    path : str or path-like
        The file. For ``.npz`` the ``'train'`` array is read, or the only array.
        A ``.csv`` may have one header line, a line in which no field is a number
        (a first line with a number in it is data); a UTF-8 byte order mark is ignored.
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
    x = _checks.numeric_array(_read_arrays(p)["train"], str(p))
    x, _ = _to_rows(x, image_shape, where=str(p))
    return _finalize(x, None if threshold is None else _checks.threshold(threshold), str(p))


def load_file(path: pathlib.Path, threshold: float | None) -> Dataset:
    arrays = _read_arrays(path)
    train_raw = _checks.numeric_array(arrays["train"], f"{path} (train)")
    test_raw = _checks.numeric_array(arrays["test"], f"{path} (test)") if "test" in arrays else None
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


_IDX_MAX_DIMS = 3
"""The most dimensions of an IDX data file: samples x height x width."""
_GZIP_RATIO = 1100
"""More than a gzip stream can expand to per byte of the file (deflate's limit is about 1032)."""


def _idx_array(fh: Any, size: int, p: pathlib.Path) -> np.ndarray:
    """The array of the IDX file ``fh`` (``size`` bytes), each declared size held against the file first."""
    gzipped = fh.read(2) == b"\x1f\x8b"
    fh.seek(0)
    f = gzip.GzipFile(fileobj=fh, mode="rb") if gzipped else fh
    header = f.read(4)
    if len(header) < 4:
        raise DataError(f"{p} is too short to be an IDX file ({len(header)} bytes)")
    if header[0] != 0 or header[1] != 0:
        raise DataError(f"{p} is not an IDX file: magic number 0x{header.hex()} does not start with two zero bytes")
    code, ndim = header[2], header[3]
    if code not in _IDX_DTYPES:
        raise DataError(f"{p}: unknown IDX type byte 0x{code:02x} (magic 0x{header.hex()})")
    if not 1 <= ndim <= _IDX_MAX_DIMS:
        raise DataError(f"{p}: its IDX header declares {ndim} dimensions; a data file has 1 to {_IDX_MAX_DIMS} "
                        "(labels; rows of values; or samples x height x width, as MNIST's images).")
    raw_dims = f.read(4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(f"{p} is truncated: header declares {ndim} dimensions but the file ends inside them")
    dims = struct.unpack(f">{ndim}I", raw_dims)
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = math.prod(dims) * dtype.itemsize
    if gzipped and expected > _GZIP_RATIO * size:
        raise DataError(f"{p} declares dimensions {dims} ({expected} data bytes), more than a gzip file of {size} "
                        "bytes can hold; it is corrupted")
    _declared(p, f"dimensions {dims}", expected, None if gzipped else size - 4 - 4 * ndim, math.prod(dims))
    data = _read_exactly(f, expected, p)
    if f.read(1):
        raise DataError(f"{p} has trailing bytes after the {expected} data bytes its header {dims} declares")
    return np.frombuffer(data, dtype=dtype).reshape(dims)


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
        Not a regular file, bad magic number, unknown type byte, more than 3 dimensions
        (a data file is samples x height x width at most), dimensions that do not
        match the data (truncated or trailing bytes; checked against the file's size before
        anything is allocated), or a corrupt gzip.
    ConfigError
        The data the header declares would not fit in the memory available.
    """
    p = pathlib.Path(path).expanduser()
    try:
        with _files.regular_file(p, "IDX file", DataError, DatasetNotFoundError) as (fh, size):
            arr = _idx_array(fh, size, p)
    except RKMError:
        raise
    except (gzip.BadGzipFile, zlib.error, EOFError):
        raise DataError(f"{p} is a damaged gzip file (its compressed data is cut short or does not match its "
                        "checksum); copy or download it again.") from None
    except _CONTAINER_ERRORS as exc:
        raise DataError(f"cannot read IDX file {p}: {_reason(exc)}") from None
    return arr.astype(arr.dtype.newbyteorder("="), copy=False)
