"""Entropy-matched synthetic images, the work behind pyrkm's ``generate_S_matrix`` and ``generate_synthetic_data``.

Internal to :mod:`rkm.compat`; :mod:`rkm.compat.utils` (``rkm.utils``) is its public face.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rkm.errors import ConfigError

from ..core import _checks


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
