"""Exact evaluation of small machines: the Gibbs chain's stationary law, log Z, log-likelihood, KL.

A model's Gibbs chain ``v -> h -> v'`` (``model.forward``) has the transition kernel

    T(v' | v) = sum_h P(h | v) P(v' | h)

whose conditionals are those the sampler draws from: the comparator input of every unit is
the network's own ``drive`` (Kirchhoff node voltage times the layer scale, or the RBM field,
less the comparator offsets, from the *realised* parameters, so supplies ``g_v``/``g_h``, the
offset, layer scaling and every device non-ideality enter exactly as in a pass), and the unit
probabilities are the comparator's own (:func:`rkm.core.comparators.log_probability`). With the
bernoulli and multi-threshold comparators (and any registered comparator, whose units are
independent given the clamped layer) ``P(h | v)`` is the product of the units' probabilities.
The single-threshold comparator draws one threshold ``t`` for the whole layer and sets
``h_j = [z_j > t]``; given ``t`` the units are deterministic, so ``P(h | v)`` is the probability
that ``t`` falls between the largest input of the units that are off and the smallest of those
that are on:

    P(h | v) = max(0, min_{j: h_j = 1} F(z_j) - max_{j: h_j = 0} F(z_j))

(``F`` the threshold's distribution function, ``F`` of an empty set 1 resp. 0), which is zero
unless ``h`` is one of the ``n + 1`` nested sets of units above a threshold. With
``threshold_sharing='batch'`` the reference shares the threshold across the whole batch,
which couples the chains of a batch; the law here is that of one chain (a batch of one), which
is also the law of each chain of a batch taken alone.

The RKM has no energy function in general (its two pass directions divide the weights by
different node conductances), so its distribution is *defined* as this chain's stationary law
``pi``. :func:`stationary_distribution` computes it without forming the ``2^nv x 2^nv`` kernel:
with ``A[v, h] = P(h | v)`` and ``B[h, v] = P(v | h)``, ``T = A B``, and the kernel of the
smaller layer (``B A`` on the hidden states, or ``A B`` on the visible ones) is a ``2^m x 2^m``
stochastic matrix, ``m = min(n_visible, n_hidden)``; its stationary law ``mu`` solves a linear
system on its one closed class, and ``pi = mu B`` when the smaller layer is the hidden one.
With independent units the larger layer's states are visited in chunks, so memory is that of the
``2^m x 2^m`` kernel plus chunks of about :data:`CHUNK_ELEMENTS` numbers, and time is ``2^(2m + n)``
multiply-adds (``n`` the larger layer) for the kernel and ``(2^m)^3 / 3`` for the solve; a shared
threshold gives sparse conditionals (``n + 1`` states per row), whose kernel costs little. Measured
on one loaded core (``docs/likelihood.md``): bernoulli 16 x 10 in about 5 s, 16 x 12 in about 100 s
(1.2 GB); single-threshold 16 x 12 in 3 s. A 16 x 16 machine would need a 65536 x 65536 kernel
(34 GB) and 2^48 multiply-adds, so the smaller layer is limited to :data:`MAX_SMALLER` units.

For ``energy_type='hopfield'`` with the bernoulli comparator the chain's law is the Boltzmann
marginal ``exp(-F(v)) / Z`` of :mod:`rkm.core.hopfield` (comparator offsets shift the fields, that
is the biases); :func:`log_partition` sums it over the smaller layer (up to
:data:`MAX_ENUMERATED` units, in chunks).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from ..core import _checks, comparators, hopfield, limits
from ..errors import ConfigError, DataError

__all__ = [
    "MAX_ENUMERATED",
    "MAX_INDEXED",
    "MAX_SMALLER",
    "MAX_UNITS",
    "binary_rows",
    "boltzmann_parameters",
    "chain_within_limits",
    "data_entropy",
    "index_of",
    "kl_divergence",
    "kl_from_log_likelihood",
    "law_computable",
    "log_likelihood",
    "log_partition",
    "log_probabilities",
    "samples_boltzmann",
    "stationary_distribution",
    "states",
]

MAX_UNITS = 16
"""Largest layer of :func:`stationary_distribution` (the law is a vector of 2^n_visible numbers)."""
MAX_SMALLER = 12
"""Largest smaller layer of :func:`stationary_distribution`: its kernel is 2^m x 2^m."""
MAX_ENUMERATED = 25
"""Largest smaller layer :func:`log_partition` enumerates."""
CHUNK_ELEMENTS = 1 << 23
"""Numbers of one chunk (of a conditional matrix, or of an enumeration) held at a time."""


MAX_INDEXED = 62
"""Most units whose states :func:`states` and :func:`index_of` number (an int64 index)."""


def states(n: int, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """The binary states ``start .. stop - 1`` of ``n`` units, shape (stop - start, n), float64.

    State ``s`` has unit ``i`` equal to bit ``i`` of ``s`` (unit 0 the least significant bit).
    ``n`` is at most :data:`MAX_INDEXED`, and the states must fit in memory (a ConfigError
    says how many bytes they need).
    """
    n = _checks.integer("n", n, minimum=0, maximum=MAX_INDEXED)
    start = _checks.integer("start", start, minimum=0, maximum=2**n)
    stop = 2**n if stop is None else _checks.integer("stop", stop, minimum=start, maximum=2**n)
    limits.require(f"the {stop - start} states of n={n} units", limits.states_bytes(n, stop - start), "cpu",
                   "enumerate fewer units, or a range of them (start, stop)", names=("n", "start", "stop"))
    index = torch.arange(start, stop, dtype=torch.int64)
    return index[:, None].bitwise_right_shift(torch.arange(n)).bitwise_and_(1).to(torch.float64)


def index_of(v: Any) -> torch.Tensor:
    """The state index ``sum_i v_i 2^i`` of each 0/1 row of ``v`` (at most :data:`MAX_INDEXED` units), int64."""
    if isinstance(v, torch.Tensor) and v.dim() == 2 and 0 < v.shape[1] <= MAX_INDEXED:
        tensor = v.detach().cpu()
    else:
        array = _checks.numeric_array(v, "v")
        if array.ndim != 2 or not 0 < array.shape[1] <= MAX_INDEXED:
            raise DataError(f"v must be 0/1 rows of at most {MAX_INDEXED} units, shape (N, n), got shape "
                            f"{array.shape}.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or bool(((tensor != 0) & (tensor != 1)).any()):
        raise DataError("v must hold 0/1 states only; binarise it first (rkm.io.datasets.binarize).")
    return (tensor.to(torch.int64) << torch.arange(tensor.shape[1])).sum(dim=1)


def _model(model: Any) -> Any:
    """``model`` if it is a machine (``rkm.RBM``, ``rkm.RKM``), else a ConfigError."""
    if not hasattr(model, "network") or not hasattr(model, "n_visible") or not hasattr(model, "energy_type"):
        raise ConfigError(f"model must be an rkm.RBM or rkm.RKM, got {type(model).__name__}.", names=("model",))
    return model


def _beta(model: Any, beta: Any) -> float:
    return float(_model(model).model_beta) if beta is None else _checks.beta(beta)


def chain_within_limits(model: Any) -> bool:
    """Whether :func:`stationary_distribution` computes the law of ``model`` (its size limits)."""
    nv, nh = _model(model).n_visible, model.n_hidden
    return nv <= MAX_UNITS and nh <= MAX_UNITS and min(nv, nh) <= MAX_SMALLER


def _check_chain_size(model: Any) -> None:
    nv, nh = model.n_visible, model.n_hidden
    if not chain_within_limits(model):
        raise ConfigError(
            f"the exact stationary law needs n_visible <= {MAX_UNITS}, n_hidden <= {MAX_UNITS} and the smaller layer "
            f"at most {MAX_SMALLER} units (its kernel has 2^m x 2^m entries and costs 2^(2m + n) multiply-adds); "
            f"this model is {nv} visible x {nh} hidden. For energy_type='hopfield' with the bernoulli comparator "
            "use rkm.evaluation.exact.log_partition (smaller layer up to 25 units) or "
            "rkm.evaluation.ais.log_partition.")


def binary_rows(model: Any, data: Any) -> torch.Tensor:
    """``data`` as a float64 CPU tensor of 0/1 rows of width ``n_visible`` (else a DataError)."""
    tensor, _ = _checks.batch(data, _model(model).n_visible, "data", torch.float64, torch.device("cpu"))
    if bool(torch.count_nonzero(tensor * (tensor - 1))):
        raise DataError("data must be 0/1 (binary visible states); binarise it first (rkm.io.datasets.binarize).")
    return tensor


class _Conditional:
    """The law of one layer given every state of the other, in the sampler's own terms.

    ``x`` (rows, n) holds the comparator inputs of the free layer for each clamped state.
    """

    def __init__(self, comparator: comparators.Comparator, x: torch.Tensor, beta: float) -> None:
        self.shared = isinstance(comparator, comparators.SingleThreshold)
        if self.shared:
            self.p = comparators.probability(comparator, x, beta)
        else:
            # log P(unit = 1), log P(unit = 0); a certain 0 is -inf, made finite so that 0 * log 0 = 0
            one, zero = comparators.log_probability(comparator, x, beta)
            self.one, self.zero = one.clamp_min(-1e300), zero.clamp_min(-1e300)

    def matrix(self, rows: slice, free: torch.Tensor) -> torch.Tensor:
        """``P(free state c | clamped row r)`` for the rows ``rows`` and the free states ``free`` (C, n)."""
        log = torch.addmm(self.zero[rows] @ (1.0 - free).t(), self.one[rows], free.t())
        return log.exp_()

    def sparse(self) -> sp.csr_matrix:
        """The whole matrix of a shared threshold: each row has its ``n + 1`` nested states.

        With the units sorted by ``F(z)`` ascending, a threshold between the (k-1)-th and the k-th
        leaves the units of rank >= k on, with probability ``F(z_(k)) - F(z_(k-1))``
        (``F(z_(-1)) = 0``, ``F(z_(n)) = 1``).
        """
        rows, n = self.p.shape
        p, order = torch.sort(self.p, dim=1)
        bounds = torch.cat([torch.zeros(rows, 1, dtype=p.dtype), p, torch.ones(rows, 1, dtype=p.dtype)], dim=1)
        weight = bounds.diff(dim=1).clamp_min_(0.0)  # (rows, n + 1)
        bit = torch.ones(1, dtype=torch.int64).bitwise_left_shift(order)  # 2^unit, by rank
        above = torch.cat([bit.flip(1).cumsum(1).flip(1), torch.zeros(rows, 1, dtype=torch.int64)], dim=1)
        return sp.csr_matrix((weight.reshape(-1).numpy(), above.reshape(-1).numpy(),
                              np.arange(0, rows * (n + 1) + 1, n + 1)), shape=(rows, 2**n))


def _inputs(model: Any, clamped: torch.Tensor, forward: bool) -> torch.Tensor:
    """Comparator inputs of the free layer (as ``network.drive`` forms them), float64 on the CPU."""
    net = model.network
    out = []
    for start in range(0, clamped.shape[0], 1 << 16):
        part = clamped[start : start + (1 << 16)].to(device=net.device, dtype=net.dtype)
        out.append(net.drive(part, forward)[0].to(device="cpu", dtype=torch.float64))
    return torch.cat(out)


def _stationary(kernel: np.ndarray) -> np.ndarray:
    """The stationary law of a stochastic matrix with one closed class (else a DataError)."""
    n_classes, labels = connected_components(kernel > 0, directed=True, connection="strong")
    rows, cols = np.nonzero(kernel > 0)
    leaving = np.unique(labels[rows[labels[rows] != labels[cols]]])
    closed = np.setdiff1d(np.arange(n_classes), leaving)
    if len(closed) != 1:
        raise DataError(
            f"the model's Gibbs chain has {len(closed)} closed classes of states, hence no unique stationary law "
            "(deterministic units, beta > 1000, or a uniform threshold that saturates, can trap the chain); "
            "evaluate it at a finite beta with noise on every unit.")
    members = np.flatnonzero(labels == closed[0])
    sub = kernel[np.ix_(members, members)]
    system = sub.T - np.eye(len(members))
    system[-1, :] = 1.0
    rhs = np.zeros(len(members))
    rhs[-1] = 1.0
    mu = np.linalg.solve(system, rhs).clip(min=0.0)
    law = np.zeros(kernel.shape[0])
    law[members] = mu / mu.sum()
    return law


def stationary_distribution(model: Any, beta: float | None = None) -> np.ndarray:
    """The exact stationary law of the model's Gibbs chain over all visible states.

    Parameters
    ----------
    model : rkm.RBM or rkm.RKM
        Any energy type and comparator; ``n_visible <= 16``, ``n_hidden <= 16`` and the smaller
        layer at most :data:`MAX_SMALLER` units.
    beta : float, optional
        Inverse temperature of both passes; default ``model.model_beta``.

    Returns
    -------
    numpy.ndarray, shape (2**n_visible,), float64
        ``pi[s]`` for ``s = sum_i v_i 2^i``; sums to 1.

    Raises
    ------
    ConfigError
        Beyond the size limits.
    DataError
        If the chain has no unique stationary law (several closed classes), or NaN/inf parameters.

    Notes
    -----
    Memory is the ``2^m x 2^m`` float64 kernel of the smaller layer (128 MiB at ``m = 12``) plus
    chunks of :data:`CHUNK_ELEMENTS` numbers; time grows as ``2^(2m + n)`` (bernoulli 16 x 12: about 100 s
    on one core). See the module docstring for the construction.
    """
    _check_chain_size(model)
    beta = _beta(model, beta)
    model.network.physics()  # a DataError on NaN or inf parameters
    comparator = model.network.comparator
    small_hidden = model.n_hidden <= model.n_visible
    m, n = (model.n_hidden, model.n_visible) if small_hidden else (model.n_visible, model.n_hidden)
    small, large = states(m), states(n)
    # the forward pass clamps the visible layer: small given large is forward when the small layer is hidden
    small_given_large = _Conditional(comparator, _inputs(model, large, small_hidden), beta)
    large_given_small = _Conditional(comparator, _inputs(model, small, not small_hidden), beta)
    if small_given_large.shared:
        given_small = large_given_small.sparse()
        mu = _stationary((given_small @ small_given_large.sparse()).toarray())
        return mu if not small_hidden else (given_small.T @ mu) / mu.sum()
    every = slice(None)
    chunk = max(1, CHUNK_ELEMENTS // (2**m * max(m, n)))
    kernel = torch.zeros((2**m, 2**m), dtype=torch.float64)
    for start in range(0, 2**n, chunk):
        part = slice(start, start + chunk)
        kernel.addmm_(large_given_small.matrix(every, large[part]), small_given_large.matrix(part, small))
    mu = _stationary(kernel.numpy())
    if not small_hidden:
        return mu
    pi = np.empty(2**n)
    weights = torch.from_numpy(mu)
    for start in range(0, 2**n, chunk):
        part = slice(start, start + chunk)
        pi[part] = (weights @ large_given_small.matrix(every, large[part])).numpy()
    return pi / pi.sum()


def boltzmann_parameters(model: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(W, v_bias, h_bias)`` of the Boltzmann law the model's bernoulli chain samples, float64 on the CPU.

    The realised parameters, with each comparator's offset taken from its unit's bias (the
    hopfield pass compares ``field - V_os``). Only for ``energy_type='hopfield'``.
    """
    if _model(model).energy_type != "hopfield":
        raise ConfigError(
            f"log Z is that of the Boltzmann energy of energy_type='hopfield'; this model's energy_type is "
            f"{model.energy_type!r}, whose Gibbs chain has no energy function in general (the two passes divide the "
            "weights by different node conductances). Its law is rkm.evaluation.exact.stationary_distribution "
            "(small machines).")
    W, a, b = (t.detach().to(device="cpu", dtype=torch.float64) for t in model.network.realised_parameters())
    devices = model.network.devices
    for forward in (True, False):
        offsets = devices.comparator_offsets(forward)
        if offsets is not None:
            shift = offsets.detach().to(device="cpu", dtype=torch.float64)
            if forward:
                b = b - shift
            else:
                a = a - shift
    return W, a, b


def _logsumexp_free_energy(n: int, W: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
                           beta: float) -> torch.Tensor:
    """``log sum_x exp(-F(x))`` over every state ``x`` of ``n`` units (``F``: :func:`rkm.core.hopfield.free_energy`)."""
    chunk = max(1, CHUNK_ELEMENTS // max(n, W.shape[0]))
    parts = [torch.logsumexp(-hopfield.free_energy(states(n, start, min(start + chunk, 2**n)), W, own, other, beta), 0)
             for start in range(0, 2**n, chunk)]
    return torch.logsumexp(torch.stack(parts), 0)


def log_partition(model: Any, beta: float | None = None) -> float:
    """``log Z`` of the model's Boltzmann law ``exp(-beta E(v, h))`` (``energy_type='hopfield'``), nats.

    The sum runs over the smaller layer, ``2^m`` states with ``m = min(n_visible, n_hidden) <=
    25``, in chunks (the other layer is summed out in closed form, :func:`rkm.core.hopfield.free_energy`);
    time ``2^m n_visible n_hidden`` multiply-adds (m = 20, 784 visible: a few seconds). The
    parameters are :func:`boltzmann_parameters`. This is the normaliser of the law the Gibbs chain
    samples with the bernoulli comparator at ``beta <= 1000``; the threshold comparators sample
    another law (:func:`stationary_distribution`).

    Raises
    ------
    ConfigError
        For an RKM energy, a smaller layer over 25 units (use :func:`rkm.evaluation.ais.log_partition`) or an
        infinite ``beta``.
    """
    W, a, b = boltzmann_parameters(model)
    beta = _beta(model, beta)
    m = min(model.n_visible, model.n_hidden)
    if m > MAX_ENUMERATED:
        raise ConfigError(f"log_partition enumerates the smaller layer, at most {MAX_ENUMERATED} units; this model is "
                          f"{model.n_visible} x {model.n_hidden}. Estimate log Z with "
                          "rkm.evaluation.ais.log_partition.")
    if model.n_visible <= model.n_hidden:
        return float(_logsumexp_free_energy(model.n_visible, W, a, b, beta))
    return float(_logsumexp_free_energy(model.n_hidden, W.t(), b, a, beta))


def samples_boltzmann(model: Any, beta: float) -> bool:
    """Whether the model's chain samples its Boltzmann law (hopfield energy, bernoulli comparator, noisy units)."""
    return (_model(model).energy_type == "hopfield" and isinstance(model.network.comparator, comparators.Bernoulli)
            and not comparators.is_deterministic(beta))


def law_computable(model: Any, beta: float | None = None) -> bool:
    """Whether :func:`log_probabilities` can compute the law of ``model`` (hopfield with the bernoulli
    comparator: smaller layer up to :data:`MAX_ENUMERATED` units; else :func:`chain_within_limits`)."""
    enumerable = min(_model(model).n_visible, model.n_hidden) <= MAX_ENUMERATED
    return (samples_boltzmann(model, _beta(model, beta)) and enumerable) or chain_within_limits(model)


def log_probabilities(model: Any, data: Any, beta: float | None = None) -> torch.Tensor:
    """``log p(v)`` of each row of ``data`` under the model's law, nats, shape (N,), float64.

    The law is the Boltzmann marginal for ``energy_type='hopfield'`` with the bernoulli comparator
    (:func:`log_partition`), else the Gibbs chain's stationary law (:func:`stationary_distribution`,
    with its size limits). A state the law never visits has ``-inf``.
    """
    v = binary_rows(model, data)
    beta = _beta(model, beta)
    if samples_boltzmann(model, beta):
        W, a, b = boltzmann_parameters(model)
        return -hopfield.free_energy(v, W, a, b, beta) - log_partition(model, beta)
    pi = torch.from_numpy(stationary_distribution(model, beta))
    return pi[index_of(v)].log()


def log_likelihood(model: Any, data: Any, beta: float | None = None) -> float:
    """Mean ``log p(v)`` of the rows of ``data`` (0/1, shape (N, n_visible)), nats; see :func:`log_probabilities`.

    Raises
    ------
    DataError
        If ``data`` has the wrong width or is not 0/1.
    ConfigError
        Beyond the size limits of the law that applies.
    """
    return float(log_probabilities(model, data, beta).mean())


def data_entropy(model: Any, data: Any) -> float:
    """Entropy of the empirical distribution of the rows of ``data``, nats."""
    _, counts = torch.unique(binary_rows(model, data), dim=0, return_counts=True)
    q = counts.to(torch.float64) / counts.sum()
    return float(-(q * q.log()).sum())


def kl_divergence(model: Any, data: Any, beta: float | None = None) -> float:
    """``KL(empirical law of data || model law)`` in nats: ``-H(data) - mean log p(v)``.

    Every row counts once (a repeated row weighs more), so this is the log-likelihood less its
    best possible value, the data's entropy; ``inf`` if the model never visits a data state.
    """
    return kl_from_log_likelihood(model, data, log_likelihood(model, data, beta))


def kl_from_log_likelihood(model: Any, data: Any, mean_log_p: float) -> float:
    """``KL(empirical law of data || model)`` in nats from the rows' mean ``log p(v)`` under the model,
    ``-H(data) - mean_log_p`` (rounding below 0 clipped to 0; ``inf`` stays ``inf``)."""
    value = -data_entropy(model, data) - mean_log_p
    return max(0.0, value) if math.isfinite(value) else value
