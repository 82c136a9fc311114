"""Classifier-based quality of generated 28x28 digits: Frechet distance, FID and label statistics.

The implementation behind :mod:`rkm.evaluation.metrics`, which is where these functions are
imported from. The classifier is the small MNIST classifier shipped with rkm
(:mod:`rkm.evaluation.fid`).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.special

from rkm.errors import ConfigError, DataError

from ..core import _checks
from ._statistics import pair as _pair
from .fid import IMAGE_SIDE as _FID_SIDE
from .fid import features as _fid_features
from .fid import predict as _fid_predict

FRECHET_EPS = 1e-6
"""Default epsilon added to the diagonals of both covariances in :func:`frechet_distance`."""


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any, *, eps: float = FRECHET_EPS) -> float:
    """Frechet (2-Wasserstein) distance between two Gaussians.

    ``|mu1 - mu2|**2 + tr(S1 + S2 - 2 (S1 S2)**(1/2))`` with ``S = sigma + eps * I``
    (the ``eps`` regularises singular covariances, e.g. from features that are
    always 0); the matrix square root is :func:`scipy.linalg.sqrtm`, whose
    round-off imaginary part is discarded (a RuntimeWarning is issued if it is
    not tiny). The result is clipped at 0.

    Parameters
    ----------
    mu1, mu2 : array_like, shape (d,)
    sigma1, sigma2 : array_like, shape (d, d)
    eps : float, keyword-only
        Added to the diagonal of both covariances (default 1e-6); >= 0.

    Returns
    -------
    float
        Ideal value 0 (identical Gaussians).

    Raises
    ------
    DataError
        On inconsistent shapes or non-finite values.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    d = mu1.shape[0]
    if mu1.ndim != 1 or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise DataError(
            f"frechet_distance needs means of shape (d,) and covariances (d, d), got "
            f"{mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}"
        )
    if not all(np.isfinite(a).all() for a in (mu1, mu2, s1, s2)):
        raise DataError("frechet_distance got NaN or infinite values")
    if not (eps >= 0 and math.isfinite(eps)):
        raise ConfigError(f"eps must be >= 0, got {eps!r}")
    s1 = s1 + eps * np.eye(d)
    s2 = s2 + eps * np.eye(d)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if np.iscomplexobj(covmean):
        imag = np.max(np.abs(covmean.imag)) if covmean.size else 0.0
        if imag > 1e-3 * max(1.0, np.max(np.abs(covmean.real))):
            warnings.warn(
                f"frechet_distance: sqrtm has a non-negligible imaginary part ({imag:.3g}), discarded",
                RuntimeWarning,
                stacklevel=2,
            )
        covmean = covmean.real
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))
    return max(0.0, value)


def fid(real: Any, synthetic: Any, *, classifier: Any = None) -> float:
    """Frechet distance between classifier features of two sets of 28x28 digits.

    Both sets go through the penultimate layer (64 ReLU features) of the small
    MNIST classifier shipped with rkm (:func:`rkm.evaluation.fid.features`); a Gaussian
    (mean, unbiased covariance) is fitted to each set of features and
    :func:`frechet_distance` compares them. Unlike pyrkm's ``Compute_FID``,
    nothing is downloaded and no ImageNet network is used, so the values are
    NOT comparable with published (Inception) FIDs; compare them with each
    other, e.g. with the FID between two halves of real data.

    Parameters
    ----------
    real, synthetic : array_like or torch.Tensor, shape (n, 784)
        Binary (or [0, 1]-valued) 28x28 images as rows, at least 2 per set.
    classifier : rkm.evaluation.fid.FidClassifier, optional, keyword-only
        Network whose ``features`` to use; the shipped one if None.

    Returns
    -------
    float
        Ideal value 0 (same feature statistics); grows as the synthetic
        digits look less like the real ones.

    Raises
    ------
    DataError
        If the images are not 28x28 (784 columns) or a set has fewer than 2 samples.
    """
    r, s = _pair(real, synthetic)
    n_pix = _FID_SIDE**2
    if r.shape[1] != n_pix:
        raise DataError(f"fid works on 28x28 images (784 columns), got {r.shape[1]} columns")
    if r.shape[0] < 2 or s.shape[0] < 2:
        raise DataError("fid needs at least 2 samples per set to fit a covariance")
    fr = _fid_features(r, classifier)
    fs = _fid_features(s, classifier)
    return frechet_distance(
        fr.mean(axis=0), np.cov(fr, rowvar=False), fs.mean(axis=0), np.cov(fs, rowvar=False)
    )


N_CLASSES = 10
"""Digit classes of the shipped classifier."""

COVERAGE_FRACTION = 0.04
"""A class counts as covered by a set of samples when at least this fraction of them is labelled with it."""


def label_quality(synthetic: Any, *, classifier: Any = None) -> dict[str, float]:
    """How evenly a set of generated 28x28 digits covers the ten classes.

    Every image is labelled by the shipped MNIST classifier (:func:`rkm.evaluation.fid.predict`,
    or ``classifier``). A model that generates every digit as often as the data scores a
    label entropy near ``log 10 = 2.303`` nats; one that generates a single digit scores 0.

    Parameters
    ----------
    synthetic : array_like or torch.Tensor, shape (n, 784)
        Binary (or [0, 1]-valued) 28x28 images as rows, at least one.
    classifier : rkm.evaluation.fid.FidClassifier, optional, keyword-only
        Network to label with; the shipped one if None.

    Returns
    -------
    dict[str, float]
        ``label_entropy``: entropy of the label frequencies in nats;
        ``classes_covered``: fraction of the ten classes with at least
        ``COVERAGE_FRACTION`` of the samples; ``min_class_fraction``: the
        fraction of the rarest class (0 when a class is missing).

    Raises
    ------
    DataError
        If the images are not 28x28 (784 columns), empty or non-finite.
    """
    s = _checks.rows(synthetic, "synthetic")
    if s.shape[1] != _FID_SIDE**2 or s.shape[0] < 1:
        raise DataError(f"label_quality works on at least one 28x28 image (784 columns), got shape {s.shape}")
    labels = _fid_predict(s, classifier)
    fractions = np.bincount(labels, minlength=N_CLASSES) / len(labels)
    return {
        "label_entropy": float(scipy.special.entr(fractions).sum()),
        "classes_covered": float(np.mean(fractions >= COVERAGE_FRACTION)),
        "min_class_fraction": float(fractions.min()),
    }
