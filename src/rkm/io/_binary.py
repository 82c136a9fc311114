"""The binarised dataset record and binarisation: :class:`Dataset` and :func:`binarize`.

Internal to :mod:`rkm.io`; both are public as ``rkm.io.datasets.Dataset`` and
``rkm.io.datasets.binarize``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from rkm.errors import ConfigError, DataError

from ..core import _checks


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


def binarize(x: Any, threshold: float = 0.5, *, scale: float | None = None) -> np.ndarray:
    """Binarise data to float32 0.0/1.0.

    Parameters
    ----------
    x : array_like
        Numeric data of any shape.
    threshold : float, default 0.5
        Values strictly greater than ``threshold`` (after scaling) become 1. In [0, 1)
        when ``scale`` is None (the data is then taken in [0, 1]); any number with a
        ``scale`` of your own.
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
    t = _checks.threshold(threshold) if scale is None else _checks.number("threshold", threshold)
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
