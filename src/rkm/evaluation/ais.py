"""Annealed importance sampling (AIS) of log Z for large machines with the hopfield energy.

Salakhutdinov & Murray (2008, "On the quantitative analysis of deep belief networks", ICML)
anneal from a base model of independent visible units with biases ``a_A`` to the RBM through

    p*_k(v) = exp((1 - b_k) a_A . v) exp(b_k beta a . v) prod_j (1 + exp(b_k beta (W v + b)_j))

for ``0 = b_0 < b_1 < ... < b_K = 1``: ``p*_0`` has ``Z_0 = 2^n_hidden prod_i (1 + exp(a_A_i))`` and
``p*_K(v) = exp(-F(v))``, the RBM's unnormalised marginal (:func:`rkm.core.hopfield.free_energy`). Each
of ``n_chains`` runs starts from an exact draw of the base model, takes one Gibbs step that
leaves ``p*_k`` invariant at each ``b_k`` and collects the log weight
``sum_k log p*_k(v_(k-1)) - log p*_(k-1)(v_(k-1))``; ``Z_K / Z_0`` is estimated by the mean of the
weights. The parameters are :func:`rkm.evaluation.exact.boltzmann_parameters` (realised, comparator
offsets in the biases), so the estimate is of the same ``log Z`` as :func:`rkm.evaluation.exact.log_partition`.

The interval is the spread of the weights, as Salakhutdinov & Murray report it:
``log(Z_hat +- 3 s)`` with ``s`` the standard error of the mean weight (``low = -inf`` when
``Z_hat - 3 s <= 0``). It measures the Monte Carlo error of the estimate, which is unbiased in
``Z``; ``log Z_hat`` is biased low (by about ``Var(w / Z) / 2 n_chains``), and when the annealing
is too short the weights are heavy-tailed and both the estimate and its interval fall short
(the interval cannot show that). Reverse AIS would bound ``log Z`` from above but needs exact
samples of the model, which a large machine does not give (starting from the data gives a
conservative bound only for a model that fits the data); so the interval is trusted only
after the check that it holds the exact value on models that can be enumerated
(``tests/test_ais.py``: a 784 x 20 RBM on mnist-5k).

Cost: ``n_chains x n_betas`` Gibbs steps, two ``(n_chains, n_visible) x (n_visible, n_hidden)``
products each, in float64 on the CPU.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.nn.functional import softplus

from ..core import _checks, limits
from ..errors import ConfigError
from . import exact

__all__ = ["Estimate", "betas", "log_partition"]


class Estimate(NamedTuple):
    """An AIS estimate of log Z (nats) with its interval ``[low, high]`` and the log weights of the runs."""

    log_z: float
    low: float
    high: float
    log_weights: np.ndarray


def betas(n_betas: int) -> np.ndarray:
    """The annealing schedule: ``n_betas`` values from 0 to 1, denser near 1.

    Salakhutdinov & Murray's proportions: 500/14500 of the steps for [0, 0.5), 4000/14500 for
    [0.5, 0.9), the rest for [0.9, 1].
    """
    n_betas = _checks.integer("n_betas", n_betas, minimum=10)
    limits.require(f"an annealing schedule of n_betas={n_betas}", 8 * n_betas, "cpu", "use fewer n_betas",
                   names=("n_betas",))
    first = max(1, round(n_betas * 500 / 14500))
    second = max(1, round(n_betas * 4000 / 14500))
    third = n_betas - first - second
    return np.concatenate([np.linspace(0.0, 0.5, first, endpoint=False), np.linspace(0.5, 0.9, second, endpoint=False),
                           np.linspace(0.9, 1.0, third)])


def base_bias(data: Any, n_visible: int) -> torch.Tensor:
    """Visible biases of the base model fitted to ``data``: the log-odds of each pixel's mean (Laplace-smoothed)."""
    tensor, _ = _checks.batch(data, n_visible, "data", torch.float64, torch.device("cpu"))
    _checks.data_values(tensor, "data", "binary")
    p = (tensor.sum(dim=0) + 1.0) / (tensor.shape[0] + 2.0)
    return torch.log(p) - torch.log1p(-p)


def log_partition(model: Any, n_chains: int = 100, n_betas: int = 10000, *, beta: float | None = None,
                  data: Any = None, seed: int = 0) -> Estimate:
    """Estimate ``log Z`` of a hopfield model by AIS; see the module docstring.

    Parameters
    ----------
    model : rkm.RBM
        ``energy_type='hopfield'``.
    n_chains : int
        Independent AIS runs (the weights whose mean estimates ``Z / Z_0``).
    n_betas : int
        Points of the annealing schedule (:func:`betas`), 0 and 1 included.
    beta : float, optional
        Inverse temperature of the target; default ``model.model_beta``.
    data : array, optional
        Training data: the base model's biases are then the data's pixel log-odds
        (``base_bias``), which starts the annealing close to the model; default the
        model's own visible biases times ``beta``.
    seed : int
        Seed of the AIS's own generator: the same seed gives the same estimate.

    Returns
    -------
    Estimate
        ``(log_z, low, high, log_weights)``, float64.

    Raises
    ------
    ConfigError
        For an RKM energy (no energy function), or a bad ``n_chains``, ``n_betas``, ``beta``.
    DataError
        For ``data`` other than 0/1 rows of ``n_visible`` values.
    """
    W, a, b = exact.boltzmann_parameters(model)
    n_chains = _checks.integer("n_chains", n_chains)
    n_betas = _checks.integer("n_betas", n_betas, minimum=10)
    limits.require(f"AIS with n_chains={n_chains} and n_betas={n_betas}",
                   limits.ais_bytes(n_chains, n_betas, model.n_visible, model.n_hidden), "cpu",
                   "use fewer n_chains or n_betas", names=("n_chains", "n_betas"))
    limits.require_work(f"AIS with n_chains={n_chains} and n_betas={n_betas}",
                        limits.sampling_work(n_chains, n_betas, model.n_visible, model.n_hidden),
                        "use fewer n_chains or n_betas", names=("n_chains", "n_betas"))
    schedule = betas(n_betas)
    beta = float(model.model_beta) if beta is None else _checks.beta(beta)
    if not math.isfinite(beta):
        raise ConfigError("AIS needs a finite inverse temperature beta.")
    base = beta * a if data is None else base_bias(data, model.n_visible)
    generator = torch.Generator().manual_seed(_checks.integer("seed", seed, minimum=0, maximum=2**63 - 1))
    Wt, a_beta, b_beta = W.t() * beta, a * beta, b * beta

    def log_unnormalised(pre: torch.Tensor, v: torch.Tensor, k: float) -> torch.Tensor:
        return v @ ((1.0 - k) * base + k * a_beta) + softplus(k * pre).sum(dim=1)

    v = torch.rand((n_chains, model.n_visible), generator=generator, dtype=torch.float64).lt_(torch.sigmoid(base))
    v = v.to(torch.float64)
    log_w = torch.zeros(n_chains, dtype=torch.float64)
    for previous, k in zip(schedule[:-1], schedule[1:]):
        pre = torch.addmm(b_beta, v, Wt)
        log_w += log_unnormalised(pre, v, float(k)) - log_unnormalised(pre, v, float(previous))
        h = torch.rand(pre.shape, generator=generator, dtype=torch.float64).lt_(torch.sigmoid(k * pre))
        field = (1.0 - k) * base + k * torch.addmm(a_beta, h.to(torch.float64), Wt.t())
        v = torch.rand(field.shape, generator=generator, dtype=torch.float64).lt_(torch.sigmoid(field))
        v = v.to(torch.float64)
    log_z0 = float(softplus(base).sum()) + model.n_hidden * math.log(2.0)
    top = float(log_w.max())
    w = torch.exp(log_w - top)
    mean = float(w.mean())
    spread = 3.0 * float(w.std()) / math.sqrt(n_chains) if n_chains > 1 else math.inf
    shift = log_z0 + top
    low = shift + math.log(mean - spread) if mean > spread else -math.inf
    return Estimate(shift + math.log(mean), low, shift + math.log(mean + spread), log_w.numpy())
