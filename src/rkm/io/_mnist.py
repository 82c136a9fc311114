"""Full MNIST: a folder of IDX files or ``mnist.npz``, its two split protocols, and the download.

Internal to :mod:`rkm.io`: :func:`load_mnist`, :func:`download_mnist` and :data:`MNIST_FILES`
are public in :mod:`rkm.io.datasets`.
"""

from __future__ import annotations

import gzip
import os
import pathlib
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib

import numpy as np

from rkm.errors import ConfigError, DataError, DatasetNotFoundError

from ..core import _checks
from ._binary import Dataset, binarize
from ._readers import read_idx, read_npz

#: The four standard gzipped IDX files of MNIST, as :func:`download_mnist` fetches them.
MNIST_FILES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)

_MNIST_TRAIN_STEMS = ("train-images-idx3-ubyte", "train-images.idx3-ubyte")
_MNIST_TEST_STEMS = ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte")
PROTOCOLS = ("standard", "reference")


def _needed(protocol: str) -> list[tuple[str, tuple[str, ...]]]:
    """The image files a protocol reads: ``(what, stems)`` in the order they are looked for."""
    needed: list[tuple[str, tuple[str, ...]]] = [("the training images", _MNIST_TRAIN_STEMS)]
    return needed + [("the test images", _MNIST_TEST_STEMS)] if protocol == "standard" else needed


def _alternatives(stems: tuple[str, ...]) -> str:
    return " or ".join(f"{stem}[.gz]" for stem in stems)


def missing_mnist(directory: pathlib.Path | None, protocol: str) -> DatasetNotFoundError:
    """The error for MNIST files that are not where they were looked for, each missing file named."""
    offline = (
        "Get them with rkm.io.datasets.download_mnist(directory) on a machine with internet access, or use "
        "the offline dataset 'mnist-5k'."
    )
    names = ", ".join(_alternatives(stems[:1]) for _, stems in _needed(protocol))
    expected = f"the IDX files {names} or a mnist.npz with keys x_train, x_test"
    if directory is None:
        return DatasetNotFoundError(
            f"no MNIST directory given (pass path=DIRECTORY): expected {expected}. {offline}", names=("path",)
        )
    if not directory.exists():
        return DatasetNotFoundError(
            f"the MNIST directory {str(directory)!r} does not exist: it should hold {expected}. {offline}",
            names=("path",),
        )
    if directory.is_file():
        return DatasetNotFoundError(
            f"{str(directory)!r} is a file, not the MNIST directory: give the directory that holds {expected} "
            f"(here perhaps {str(directory.parent)!r}).",
            names=("path",),
        )
    lacking = [
        f"{what} ({_alternatives(stems)})" for what, stems in _needed(protocol) if _find_first(directory, stems) is None
    ]
    return DatasetNotFoundError(
        f"MNIST in {str(directory)!r} is incomplete: missing {' and '.join(lacking)}, and "
        f"there is no mnist.npz. {offline}",
        names=("path",),
    )


def _find_first(directory: pathlib.Path, stems: tuple[str, ...]) -> pathlib.Path | None:
    for stem in stems:
        for suffix in ("", ".gz"):
            candidate = directory / (stem + suffix)
            if candidate.is_file():
                return candidate
    return None


def _idx_images(path: pathlib.Path) -> tuple[np.ndarray, float]:
    """The images of an IDX file and what divides them into [0, 1]: 255 for bytes (type 0x08), else 1, checked."""
    x = read_idx(path)
    if x.ndim != 3:
        raise DataError(f"{path} holds an array of shape {x.shape}; expected images (N, H, W)")
    if x.dtype == np.uint8:
        return x, 255.0
    if x.size and not (np.all(np.isfinite(x)) and x.min() >= 0 and x.max() <= 1):
        raise DataError(f"{path} holds {x.dtype} values from {_checks.shown(x.min())} to {_checks.shown(x.max())}; "
                        "rkm reads IDX bytes (type 0x08) as grey levels 0-255 and every other IDX type as values in "
                        "[0, 1]: write the images as bytes, or scale them to [0, 1].")
    return x, 1.0


def load_mnist(directory: str | os.PathLike, *, protocol: str = "standard", threshold: float = 0.5) -> Dataset:
    """Load full MNIST from a directory, binarised with ``x / 255 > threshold`` (IDX files of floats ``x > threshold``).

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
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    t = _checks.threshold(threshold)
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
                raise missing_mnist(d, protocol)
    else:
        raise missing_mnist(d, protocol)

    if npz is not None:
        source = str(npz)
        arrays = read_npz(npz, ("x_train", "x_test") if protocol == "standard" else ("x_train",))
        x_train, x_test = arrays["x_train"], arrays.get("x_test")
        scale = scale_test = None  # uint8 0..255 in Keras' file; float 0..1 also accepted
    else:
        assert train_file is not None
        source = str(d)
        x_train, scale = _idx_images(train_file)
        x_test, scale_test = _idx_images(test_file) if protocol == "standard" and test_file else (None, scale)
    x_train = _checks.numeric_array(x_train)
    if x_train.ndim != 3:
        raise DataError(f"MNIST training images have shape {x_train.shape}; expected (N, H, W)")
    shape = (int(x_train.shape[1]), int(x_train.shape[2]))

    if protocol == "reference":
        if x_train.shape[0] <= 500:
            raise DataError(
                f"protocol='reference' needs more than 500 training images (500 test + train), found {x_train.shape[0]}"
            )
        tr, te = x_train[500:10500], x_train[:500]
        scale_test = scale
        desc = (
            f"MNIST from {source}, reference protocol: train = training images "
            f"500..{499 + len(tr)} ({len(tr)}), test = first 500 training images"
        )
    else:
        assert x_test is not None
        x_test = _checks.numeric_array(x_test)
        if x_test.ndim != 3 or tuple(x_test.shape[1:]) != shape:
            raise DataError(f"MNIST test images have shape {x_test.shape}; expected (N, {shape[0]}, {shape[1]})")
        tr, te = x_train, x_test
        desc = f"MNIST from {source}, standard protocol: {len(tr)} training images, {len(te)} test images"
    n = shape[0] * shape[1]
    return Dataset(
        name="mnist",
        train=binarize(tr.reshape(len(tr), n), t, scale=scale),
        test=binarize(te.reshape(len(te), n), t, scale=scale_test),
        image_shape=shape,
        description=desc,
    )


def download_mnist(
    directory: str | os.PathLike, *, mirror: str = "https://ossci-datasets.s3.amazonaws.com/mnist/"
) -> pathlib.Path:
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
                        f"{', '.join(MNIST_FILES)} by hand into {str(d)!r}."
                    ) from exc
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
