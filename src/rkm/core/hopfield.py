"""The Boltzmann energy of the plain RBM (``energy_type='hopfield'``): pure functions of tensors.

With binary units, weights ``W`` of shape (n_hidden, n_visible), visible bias ``a`` and
hidden bias ``b``, the RBM is the Boltzmann law ``P(v, h) ~ exp(-beta E(v, h))`` of

    E(v, h) = -h . (W v) - a . v - b . h

Summing out the hidden units gives the free energy of a visible configuration, in
pyrkm's convention with ``beta`` inside (so ``P(v) ~ exp(-F(v))``):

    F(v) = -sum_j softplus(beta (W v + b)_j) - beta a . v

and the two conditionals are independent sigmoids, ``P(h_j = 1 | v) = sigmoid(beta (W v
+ b)_j)`` and ``P(v_i = 1 | h) = sigmoid(beta (W^T h + a)_i)``. These are the values of
pyrkm 0.1.0's ``free_energy``, ``_free_energy_hopfield``, ``_energy_hopfield``,
``_prob_h_given_v`` and ``_prob_v_given_h``; the softplus is evaluated stably, where
pyrkm's ``log(1 + exp(x))`` overflows to ``inf`` (float32: ``x > 88``).

The Restricted Kirchhoff Machine has no such energy in general: its forward pass divides
hidden unit j's weights by that node's conductance ``G_j`` and its backward pass divides
visible unit i's by ``G_i``, so the two conditionals are not those of one Boltzmann law
(see :meth:`rkm.RBM.free_energy`).

Every function takes batches as rows (``v`` of shape (N, n_visible), ``h`` of shape (N,
n_hidden)) on the parameters' device and dtype, and returns one value per row.
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import logsigmoid, softplus

from ..errors import ConfigError
from ._checks import beta as check_beta

__all__ = [
    "energy",
    "free_energy",
    "pixel_log_conditionals",
    "prob_h_given_v",
    "prob_v_given_h",
    "pseudo_log_likelihood",
]

_CHUNK_ELEMENTS = 1 << 22
"""Elements of the (rows, n_visible, n_hidden) block :func:`pixel_log_conditionals` forms at a time."""


def _finite_beta(beta: float) -> float:
    beta = check_beta(beta)
    if math.isinf(beta):
        raise ConfigError(
            "the free energy needs a finite inverse temperature beta; "
            "at beta = inf the law is concentrated on the minima of the energy (use _energy_hopfield)."
        )
    return beta


def _sigmoid(x: torch.Tensor, beta: float) -> torch.Tensor:
    """``sigmoid(beta x)``; at ``beta = inf`` the limit ``[x > 0]``."""
    beta = check_beta(beta)
    if math.isinf(beta):
        return (x > 0).to(x.dtype)
    return torch.sigmoid(beta * x)


def energy(
    v: torch.Tensor, h: torch.Tensor, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor
) -> torch.Tensor:
    """Energy ``E(v, h) = -h . (W v) - a . v - b . h`` of each row pair, shape (N,)."""
    return -((v @ W.t()) * h).sum(dim=1) - v @ v_bias - h @ h_bias


def free_energy(
    v: torch.Tensor, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """Free energy ``F(v) = -sum_j softplus(beta (W v + b)_j) - beta a . v`` of each row, shape (N,).

    ``exp(-F(v))`` is the unnormalised marginal probability of ``v`` at inverse
    temperature ``beta`` (pyrkm's convention: ``beta`` is inside ``F``).

    Raises
    ------
    ConfigError
        If ``beta`` is negative, NaN or infinite.
    """
    beta = _finite_beta(beta)
    pre = torch.addmm(h_bias, v, W.t())
    return -softplus(beta * pre).sum(dim=1) - beta * (v @ v_bias)


def prob_h_given_v(v: torch.Tensor, W: torch.Tensor, h_bias: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``P(h_j = 1 | v) = sigmoid(beta (W v + b)_j)``, shape (N, n_hidden)."""
    return _sigmoid(torch.addmm(h_bias, v, W.t()), beta)


def prob_v_given_h(h: torch.Tensor, W: torch.Tensor, v_bias: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """``P(v_i = 1 | h) = sigmoid(beta (W^T h + a)_i)``, shape (N, n_visible)."""
    return _sigmoid(torch.addmm(v_bias, h, W), beta)


def pixel_log_conditionals(
    v: torch.Tensor, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """``log P(v_i | v_-i)`` of every pixel of every row, shape (N, n_visible).

    With ``v^(i)`` the row with pixel i flipped (``v_i -> 1 - v_i``, as scikit-learn's
    ``BernoulliRBM`` flips it), ``log P(v_i | v_-i) = log sigmoid(F(v^(i)) - F(v))``.
    Flipping pixel i moves the hidden pre-activations by ``(1 - 2 v_i) W[:, i]``, so one
    (rows, n_visible, n_hidden) block per chunk of rows gives every flip at once.
    """
    beta = _finite_beta(beta)
    pre = torch.addmm(h_bias, v, W.t())  # (N, n_hidden)
    base = softplus(beta * pre).sum(dim=1, keepdim=True)  # -F(v) less the visible term
    step = 1.0 - 2.0 * v  # (N, n_visible): the change of each pixel when flipped
    rows = max(1, _CHUNK_ELEMENTS // max(1, W.numel()))
    out = []
    for start in range(0, v.shape[0], rows):
        s = step[start : start + rows]
        flipped = pre[start : start + rows, None, :] + s[:, :, None] * W.t()[None, :, :]
        # F(v^(i)) - F(v) = -(softplus sum after the flip - before) - beta a_i s_i
        delta = base[start : start + rows] - softplus(beta * flipped).sum(dim=2) - beta * s * v_bias
        out.append(logsigmoid(delta))
    return torch.cat(out) if out else v.new_zeros(v.shape)


def pseudo_log_likelihood(
    v: torch.Tensor, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, beta: float = 1.0
) -> torch.Tensor:
    """Pseudo-log-likelihood ``sum_i log P(v_i | v_-i)`` of each row, shape (N,).

    Every pixel is flipped in turn, so the value is deterministic; it is the expectation
    of scikit-learn's one-random-pixel estimate ``n_visible * log P(v_i | v_-i)``.
    """
    return pixel_log_conditionals(v, W, v_bias, h_bias, beta).sum(dim=1)
