"""Sample statistics of generated sets: entropy, reconstruction error, AATS, moments, power spectra.

The implementation behind :mod:`rkm.evaluation.metrics`, which is where these functions are
imported from; see there for the conventions every metric follows. :func:`pair` checks the
two sets a comparison takes (also for the classifier-based quality of
:mod:`rkm.evaluation._quality`).
"""

from __future__ import annotations

import gzip
import io
import math
from typing import Any

import numpy as np
import scipy.special
import torch

from rkm.errors import ConfigError, DataError

from ..core import _checks

GZIP_LEVEL = 9
"""gzip compression level used by :func:`entropy_measure` (fixed for determinism)."""

POWER_SPECTRUM_EPS = 1e-8
"""Default epsilon added to the mean power spectra before ``log10``."""

_CHUNK_ELEMENTS = 1 << 22  # ~4M float64 (32 MB) per temporary block
_MAX_SQUARE = 1 << 24
"""Largest ``p * p`` (``p`` = visible units) for which the moment errors form ``p x p`` matrices (128 MB);
wider rows go through ``n x n`` Gram matrices of the samples instead (:func:`_gram_sum`)."""


# --------------------------------------------------------------------------- helpers
def pair(real: Any, synthetic: Any) -> tuple[np.ndarray, np.ndarray]:
    r = _checks.rows(real, "real")
    s = _checks.rows(synthetic, "synthetic")
    if r.shape[1] != s.shape[1]:
        raise DataError(
            f"real and synthetic must have the same number of columns (visible units), "
            f"got {r.shape[1]} and {s.shape[1]}"
        )
    return r, s


def _centred(x: np.ndarray) -> np.ndarray:
    return x - x.mean(axis=0, keepdims=True)


# --------------------------------------------------------------------------- metrics
def binary_entropy(p: Any) -> np.ndarray:
    """Entropy in bits of a Bernoulli(p) unit, elementwise.

    ``-p log2 p - (1 - p) log2 (1 - p)``, with the limit 0 at ``p = 0`` and ``p = 1``
    (:func:`scipy.special.entr`, which needs no guard against ``log 0``).

    Parameters
    ----------
    p : array_like or torch.Tensor
        Probabilities in [0, 1], any shape (e.g. the mean of binary data over samples).

    Returns
    -------
    numpy.ndarray
        float64, the shape of ``p``; 1 at ``p = 0.5``.

    Raises
    ------
    DataError
        If a value is outside [0, 1] or NaN.
    """
    if isinstance(p, torch.Tensor):
        p = p.detach().cpu().to(torch.float64).numpy()
    q = np.asarray(p, dtype=np.float64)
    if not np.all((q >= 0) & (q <= 1)):
        raise DataError("binary_entropy needs probabilities in [0, 1] (for example the mean of 0/1 data)")
    return (scipy.special.entr(q) + scipy.special.entr(1.0 - q)) / math.log(2.0)


def reconstruction_error(model: Any, data: Any, k: int = 1) -> float:
    """Mean squared reconstruction error of a model.

    The data are converted with ``torch.as_tensor(data, dtype=model.mytype,
    device=model.device)``, passed through ``model.forward(v, k)`` (for an RKM,
    ``k`` steps of alternating Gibbs sampling started from the data) without
    gradients, and the squared differences are averaged over samples and pixels
    (in float64).

    Parameters
    ----------
    model : object
        Anything with ``forward(v: torch.Tensor, k) -> torch.Tensor`` returning
        a tensor of the shape of ``v``, and attributes ``device`` and ``mytype``.
    data : array_like or torch.Tensor, shape (n_samples, n_visible)
        Samples as rows.
    k : int, default 1
        Number of sampling steps, an integer >= 1.

    Returns
    -------
    float
        ``mean((model.forward(data, k) - data) ** 2)``. Ideal value 0 (perfect
        reconstruction); for binary data it is the fraction of flipped pixels.

    Raises
    ------
    ConfigError
        If ``k`` is not an integer >= 1.
    DataError
        If the data are not 2-D, are empty or non-finite, or the model returns
        a tensor of another shape.
    """
    k = _checks.integer("k", k)
    if isinstance(data, torch.Tensor):
        data = data.detach()
    try:
        v = torch.as_tensor(data, dtype=model.mytype, device=model.device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise DataError(f"data cannot be converted to a tensor: {exc}") from exc
    if v.ndim != 2 or v.shape[0] == 0 or v.shape[1] == 0:
        raise DataError(
            f"data must be 2-D with samples as rows (n_samples, n_visible), got shape {tuple(v.shape)}"
        )
    if not torch.isfinite(v).all():
        raise DataError("data contains NaN or infinite values")
    with torch.no_grad():
        out = model.forward(v, int(k))
    out = torch.as_tensor(out)
    if tuple(out.shape) != tuple(v.shape):
        raise DataError(
            f"model.forward returned shape {tuple(out.shape)} for data of shape {tuple(v.shape)}"
        )
    diff = out.detach().to(v.device, torch.float64) - v.to(torch.float64)
    return float((diff * diff).mean().item())


def aats(real: Any, synthetic: Any) -> tuple[float, float]:
    """Adversarial accuracy of a nearest-neighbour test (Yale et al., 2020).

    All ``2n`` samples are pooled. For each real sample ``i`` let ``d_TT(i)``
    be the Euclidean distance to its nearest *other* real sample and
    ``d_TS(i)`` the distance to its nearest synthetic sample; symmetrically
    ``d_SS(i)`` and ``d_ST(i)`` for each synthetic sample. Then::

        AA_truth = mean_i [d_TT(i) < d_TS(i)]   # nearest neighbour of a real sample is real
        AA_syn   = mean_i [d_SS(i) < d_ST(i)]   # nearest neighbour of a synthetic sample is synthetic

    Ties are broken deterministically *against* the sample's own set (strict
    ``<``, as in Yale et al.'s ``1(d_TS > d_TT)``): a sample equidistant from
    both sets counts as having a neighbour in the other set. So a synthetic
    set that is an exact copy of the real one gives (0, 0) even when the data
    contain duplicates. Distances are computed in float64 with
    :func:`torch.cdist`, chunks of rows at a time (memory ``O(chunk * n)``);
    for binary data they are exact, so ties are exact too.

    Parameters
    ----------
    real, synthetic : array_like or torch.Tensor, shape (n, n_visible)
        Two sets of the SAME size ``n >= 2``, samples as rows.

    Returns
    -------
    (float, float)
        ``(AA_truth, AA_syn)``, each in [0, 1]. Ideal value (0.5, 0.5): the sets
        cannot be told apart. (1, 1): the sets are clearly distinguishable
        (poor samples). (0, 0): every sample's nearest neighbour lies in the
        other set, i.e. the synthetic samples copy the real ones (overfitting).
        ``AATS = (|AA_truth - 0.5| + |AA_syn - 0.5|) / 2`` summarises both.

    Raises
    ------
    DataError
        If the sets differ in size or number of columns, or hold fewer than 2 samples.
    """
    r, s = pair(real, synthetic)
    n = r.shape[0]
    if s.shape[0] != n:
        raise DataError(
            f"aats needs two sets of the same size, got {n} real and {s.shape[0]} synthetic samples"
        )
    if n < 2:
        raise DataError("aats needs at least 2 samples per set")
    rt = torch.from_numpy(r)
    st = torch.from_numpy(s)
    chunk = max(1, _CHUNK_ELEMENTS // (2 * n))

    def same_set_wins(own: torch.Tensor, other: torch.Tensor) -> int:
        count = 0
        for start in range(0, n, chunk):
            rows = own[start:start + chunk]
            d_own = torch.cdist(rows, own)
            idx = torch.arange(rows.shape[0])
            d_own[idx, idx + start] = math.inf  # exclude the sample itself
            d_other = torch.cdist(rows, other)
            count += int((d_own.min(dim=1).values < d_other.min(dim=1).values).sum())
        return count

    return same_set_wins(rt, st) / n, same_set_wins(st, rt) / n


def _byte_entropy(x: np.ndarray) -> float:
    """Shannon entropy (bits per byte) of the gzip-compressed ``np.save`` bytes of ``x``."""
    buffer = io.BytesIO()  # one stream per array (pyrkm reused one for both)
    np.save(buffer, x, allow_pickle=False)
    compressed = gzip.compress(buffer.getvalue(), compresslevel=GZIP_LEVEL, mtime=0)
    counts = np.bincount(np.frombuffer(compressed, dtype=np.uint8), minlength=256)
    p = counts[counts > 0] / len(compressed)
    return float(-(p * np.log2(p)).sum())


def entropy_measure(real: Any, synthetic: Any) -> float:
    """Compression-based relative entropy of a half-synthetic set (pyrkm's ``Compute_S``, fixed).

    A mixed set is the real set with its first ``n_real // 2`` rows replaced by
    the first ``n_real // 2`` rows of the synthetic set. Each of the two sets
    (real, mixed) is cast to float32, written with :func:`numpy.save` into its
    OWN byte stream and gzip-compressed (level ``GZIP_LEVEL``, ``mtime=0``,
    so the result is deterministic); ``S`` is the Shannon entropy of the
    histogram of the compressed bytes. Synthetic samples that follow the
    statistics of the real ones compress alike, so the two entropies match.

    Parameters
    ----------
    real : array_like or torch.Tensor, shape (n_real, n_visible)
    synthetic : array_like or torch.Tensor, shape (n_syn, n_visible)
        Needs ``n_syn >= n_real // 2``; only its first ``n_real // 2`` rows are used.

    Returns
    -------
    float
        ``S_mixed / S_real - 1``. Ideal value 0 (exactly 0 when the used
        synthetic rows equal the real ones); its sign says whether the
        synthetic samples are more (>0) or less (<0) random than the data.

    Raises
    ------
    DataError
        On shape mismatch, too few synthetic samples, or fewer than 2 real samples.
    """
    r, s = pair(real, synthetic)
    half = r.shape[0] // 2
    if half < 1:
        raise DataError("entropy_measure needs at least 2 real samples")
    if s.shape[0] < half:
        raise DataError(
            f"entropy_measure needs at least n_real // 2 = {half} synthetic samples, got {s.shape[0]}"
        )
    r32 = r.astype(np.float32)
    mixed = r32.copy()
    mixed[:half] = s[:half].astype(np.float32)
    return _byte_entropy(mixed) / _byte_entropy(r32) - 1.0


def _two_samples(measure: str, r: np.ndarray, s: np.ndarray) -> None:
    if min(r.shape[0], s.shape[0]) < 2:
        raise DataError(f"{measure} needs at least 2 samples per set, got {r.shape[0]} real and {s.shape[0]} "
                        "synthetic: the moments of one sample are 0, which would read as a perfect score.")


def covariance_error(real: Any, synthetic: Any) -> float:
    """Mean squared difference of the off-diagonal covariances.

    Each set is centred by its own mean and ``C = X_c^T X_c / n`` (the second
    central moment, normalised by ``n`` like :func:`third_moment_error`).

    Parameters
    ----------
    real, synthetic : array_like or torch.Tensor, shape (n, n_visible)
        ``n_visible >= 2``; the sets may differ in size.

    Returns
    -------
    float
        ``mean_{i<j} (C_real[i, j] - C_syn[i, j]) ** 2`` over the
        ``n_visible * (n_visible - 1) / 2`` pairs. Ideal value 0: the model
        reproduces the pairwise correlations of the data.

    Raises
    ------
    DataError
        On shape mismatch, fewer than 2 visible units, or fewer than 2 samples in a set (one sample has no
        covariance: it would read 0, the ideal value).
    """
    r, s = pair(real, synthetic)
    p = r.shape[1]
    if p < 2:
        raise DataError("covariance_error needs at least 2 visible units")
    _two_samples("covariance_error", r, s)
    rc, sc = _centred(r), _centred(s)
    nr, ns = r.shape[0], s.shape[0]
    if p * p <= _MAX_SQUARE:
        diff = rc.T @ rc / nr - sc.T @ sc / ns
        iu = np.triu_indices(p, k=1)
        return float(np.mean(diff[iu] ** 2))
    squares = _squared_difference((rc, rc, nr), (sc, sc, ns))
    diagonal = float(np.sum((np.mean(rc * rc, axis=0) - np.mean(sc * sc, axis=0)) ** 2))
    return max(0.0, (squares - diagonal) / 2.0 / (p * (p - 1) / 2.0))


def _gram_sum(x1: np.ndarray, y1: np.ndarray, x2: np.ndarray, y2: np.ndarray) -> float:
    """``sum_{i,k} (x1^T y1)_{ik} (x2^T y2)_{ik}`` as ``sum_{n,m} (x1 x2^T)_{nm} (y1 y2^T)_{nm}``: no ``p x p``
    matrix, memory ``O(chunk * n)`` (a block of rows of ``x1`` at a time)."""
    chunk = max(1, _CHUNK_ELEMENTS // max(1, x2.shape[0]))
    total = 0.0
    for start in range(0, x1.shape[0], chunk):
        total += float(np.sum((x1[start:start + chunk] @ x2.T) * (y1[start:start + chunk] @ y2.T)))
    return total


def _squared_difference(a: tuple[np.ndarray, np.ndarray, int], b: tuple[np.ndarray, np.ndarray, int]) -> float:
    """``||x_a^T y_a / n_a - x_b^T y_b / n_b||_F^2`` for ``a = (x_a, y_a, n_a)``, through :func:`_gram_sum`."""
    (xa, ya, na), (xb, yb, nb) = a, b
    return (_gram_sum(xa, ya, xa, ya) / na**2 - 2.0 * _gram_sum(xa, ya, xb, yb) / (na * nb)
            + _gram_sum(xb, yb, xb, yb) / nb**2)


def _sum_cubed_gram(a: np.ndarray, b: np.ndarray) -> float:
    """``sum_{n,m} (a_n . b_m) ** 3``, a chunk of rows of ``a`` at a time."""
    chunk = max(1, _CHUNK_ELEMENTS // b.shape[0])
    total = 0.0
    for start in range(0, a.shape[0], chunk):
        g = a[start:start + chunk] @ b.T
        total += float(np.sum(g * g * g))
    return total


def third_moment_error(real: Any, synthetic: Any) -> float:
    """Mean squared difference of the third central moments over distinct triples.

    With each set centred by its own mean, ``C_ijk = mean_n x_ni x_nj x_nk``.
    The result is the mean of ``(C_real - C_syn)_ijk ** 2`` over the
    ``p (p-1) (p-2) / 6`` triples ``i < j < k`` (``p = n_visible``).

    The ``p**3`` tensor is never formed. With ``D = C_real - C_syn`` (symmetric)
    the sum over all ordered triples is, exactly,
    ``sum D**2 = sum (G_rr**3)/n_r**2 - 2 sum (G_rs**3)/(n_r n_s) + sum (G_ss**3)/n_s**2``
    with the Gram matrices ``G_ab = A_c B_c^T`` (computed a block of rows at a
    time), and inclusion-exclusion removes the triples with a repeated index:
    ``sum_{distinct} = sum_all - 3 sum_{i,k} D_iik**2 + 2 sum_i D_iii**2``,
    ``sum_{i<j<k} = sum_{distinct} / 6``. Cost ``O((n_r + n_s)**2 p + n p**2)``
    and memory ``O(p**2)`` plus 32 MB blocks (rows wider than 4096 values: ``O(n p)`` and blocks,
    through the samples' Gram matrices), instead of the ``O(n p**3)``
    of an explicit loop over triples (784 pixels, 5000 samples: under a
    second rather than minutes). The result is clipped at 0 against round-off.

    Parameters
    ----------
    real, synthetic : array_like or torch.Tensor, shape (n, n_visible)
        ``n_visible >= 3``; the sets may differ in size.

    Returns
    -------
    float
        ``mean_{i<j<k} (C_real[i,j,k] - C_syn[i,j,k]) ** 2``. Ideal value 0:
        the model reproduces the three-point correlations of the data.

    Raises
    ------
    DataError
        On shape mismatch, fewer than 3 visible units, or fewer than 2 samples in a set.
    """
    r, s = pair(real, synthetic)
    p = r.shape[1]
    if p < 3:
        raise DataError("third_moment_error needs at least 3 visible units")
    _two_samples("third_moment_error", r, s)
    rc, sc = _centred(r), _centred(s)
    nr, ns = r.shape[0], s.shape[0]
    s_all = (
        _sum_cubed_gram(rc, rc) / nr**2
        - 2.0 * _sum_cubed_gram(rc, sc) / (nr * ns)
        + _sum_cubed_gram(sc, sc) / ns**2
    )
    if p * p <= _MAX_SQUARE:
        d_iik = (rc * rc).T @ rc / nr - (sc * sc).T @ sc / ns  # [i, k] = D_iik
        s_iik = float(np.sum(d_iik * d_iik))
        s_iii = float(np.sum(np.diagonal(d_iik) ** 2))
    else:  # wide rows: D_iik through the samples' Gram matrices
        s_iik = _squared_difference((rc * rc, rc, nr), (sc * sc, sc, ns))
        s_iii = float(np.sum((np.mean(rc**3, axis=0) - np.mean(sc**3, axis=0)) ** 2))
    ordered_distinct = s_all - 3.0 * s_iik + 2.0 * s_iii
    n_triples = p * (p - 1) * (p - 2) / 6.0
    return max(0.0, ordered_distinct / 6.0 / n_triples)


def _image_shape(n_pixels: int, image_shape: Any) -> tuple[int, int]:
    if image_shape is None:
        side = math.isqrt(n_pixels)
        if side * side != n_pixels:
            raise DataError(
                f"cannot infer a square image shape from {n_pixels} pixels; pass image_shape=(h, w)"
            )
        return side, side
    try:
        h, w = (int(d) for d in image_shape)
    except (TypeError, ValueError) as exc:
        raise DataError(f"image_shape must be a pair (height, width), got {image_shape!r}") from exc
    if h < 1 or w < 1 or h * w != n_pixels:
        raise DataError(f"image_shape {image_shape!r} does not match rows of {n_pixels} pixels")
    return h, w


def _mean_power_spectrum(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    chunk = max(1, _CHUNK_ELEMENTS // (2 * x.shape[1]))
    total = np.zeros(shape, dtype=np.float64)
    for start in range(0, x.shape[0], chunk):
        f = np.fft.fft2(x[start:start + chunk].reshape(-1, *shape), axes=(1, 2))
        total += np.sum(f.real**2 + f.imag**2, axis=0)
    return total / x.shape[0]


def power_spectrum_error(
    real: Any, synthetic: Any, image_shape: Any = None, *, eps: float = POWER_SPECTRUM_EPS
) -> float:
    """Mean squared difference of the log10 mean power spectra of two image sets.

    Each row is reshaped to an ``(h, w)`` image and transformed with an
    (unnormalised) 2-D FFT; ``P = mean over images of |F|**2`` for each set.
    The result is ``mean over the h*w frequencies of
    (log10(P_real + eps) - log10(P_syn + eps)) ** 2``. The ``eps`` keeps
    frequencies with (numerically) zero power finite; with the default 1e-8 it
    is far below the power of any non-empty binary image (the DC term alone is
    ``(number of on pixels)**2``). The spectrum ignores where things are in
    the image: translated (``np.roll``) images have the same one.

    Parameters
    ----------
    real, synthetic : array_like or torch.Tensor, shape (n, h * w)
        Images as rows; the sets may differ in size.
    image_shape : (int, int), optional
        ``(h, w)``; inferred as square if None.
    eps : float, keyword-only
        Added to both spectra before the logarithm; must be > 0.

    Returns
    -------
    float
        Ideal value 0: the generated images have the spatial-frequency content
        of the data. A value of 1 means the spectra differ by a typical factor of 10.

    Raises
    ------
    DataError
        On shape mismatch, or if ``image_shape`` is None and rows are not square images.
    ConfigError
        If ``eps <= 0``.
    """
    if not (isinstance(eps, (int, float)) and eps > 0 and math.isfinite(eps)):
        raise ConfigError(f"eps must be a positive number, got {eps!r}")
    r, s = pair(real, synthetic)
    shape = _image_shape(r.shape[1], image_shape)
    lr = np.log10(_mean_power_spectrum(r, shape) + eps)
    ls = np.log10(_mean_power_spectrum(s, shape) + eps)
    return float(np.mean((lr - ls) ** 2))

