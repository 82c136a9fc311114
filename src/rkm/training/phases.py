"""Negative phases: where the model's samples of an update come from.

========  ==============================================  ======================
algo      chain                                           model pair
========  ==============================================  ======================
CD        k steps v -> h -> v from the data batch         (v_k, h_{k-1})
PCD       k steps from the persistent chains (kept)       (v_k, h_{k-1})
vRDM      k steps from fresh random binary visibles       (v_k, h_{k-1})
RDM       as vRDM, then one more forward pass             (v_k, h_k)
hRDM      fresh random hiddens, one backward pass, then   (v_k, h_{k-1});
          k-1 steps                                       k=1: (v_1, h_1 ~ v_1)
PT        k steps of persistent chains at every rung of   the model rung's
          a ladder of inverse temperatures, then swaps    (v_k, h_{k-1})
          between adjacent rungs                          after the swaps
========  ==============================================  ======================

``(v_k, h_{k-1})`` is the state of the circuit at the end of the last backward pass, as in
the reference. For hRDM with k=1 the reference paired the model visibles with the random
starting hiddens; here one forward pass samples hiddens from them. Every pass goes through
the update's :class:`~rkm.training._accounting.PassRecorder`, so its power is accounted for.

Each phase is a :class:`NegativePhase` registered by name in :data:`PHASES` (the
``train_algo`` setting), holding its own chain state. A phase that reads settings of its own
names them in ``settings`` (trainer settings of the table, ``rkm.hyperparams``); the trainer
passes them to ``init_state`` and ``sample`` as keywords. A new one is one class::

    @rkm.training.phases.register
    class Mirror(rkm.training.phases.NegativePhase):
        name = "mirror"

        def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
            return chain.gibbs(1 - v_data, k)
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from ..core._registry import Component, Registry
from ..core.network import Network
from ..errors import ConfigError
from ._accounting import PassRecorder

__all__ = ["NegativePhase", "CD", "PCD", "RDM", "PT", "PHASES", "register"]


class NegativePhase(Component):
    """A negative phase without state of its own (the base of every phase)."""

    settings: ClassVar[tuple[str, ...]] = ()
    """Trainer settings the phase reads, passed to :meth:`init_state` and :meth:`sample` as keywords."""

    def init_state(self, network: Network, n_chains: int) -> None:
        """Create the chain state (drawn from ``network.generator``); stateless phases have none."""

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The model pair ``(v_model, h_model)`` of one update, every pass through ``chain``.

        ``v_data`` is the data batch, ``k`` the Gibbs steps, ``n_chains`` the number of model
        chains, ``data_binary`` whether ``v_data`` is known to be 0/1.
        """
        raise NotImplementedError

    def readings(self) -> dict[str, float]:
        """What the phase reports in a run's ``metrics.csv`` (its column names are in ``rkm.app.metrics_log``)."""
        return {}


PHASES: Registry[type[NegativePhase]] = Registry("negative phase")
"""Every negative phase by its ``train_algo`` name."""
register = PHASES.register


@register
class CD(NegativePhase):
    """Contrastive divergence: the chain starts at the data."""

    name = "CD"

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return chain.gibbs(v_data, k, binary=data_binary)


@register
class PCD(NegativePhase):
    """Persistent contrastive divergence: ``n_chains`` chains carried from update to update."""

    name = "PCD"

    def __init__(self) -> None:
        self.chains: torch.Tensor | None = None

    def init_state(self, network: Network, n_chains: int) -> None:
        u = torch.rand((n_chains, network.n_visible), generator=network.generator, dtype=network.dtype,
                       device=network.device)
        self.chains = (u > 0.5).to(network.dtype)

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        if self.chains is None:
            self.init_state(chain.network, n_chains)
        assert self.chains is not None
        if self.chains.shape != (n_chains, chain.network.n_visible):
            raise ConfigError(
                f"persistent_chains has shape {tuple(self.chains.shape)} but there are {n_chains} chains "
                "(n_chains, or batch_size when it is unset); keep them fixed during PCD training."
            )
        v, h = chain.gibbs(self.chains, k, binary=False)
        self.chains = v
        return v, h

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.chains is None else {"persistent_chains": self.chains}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if "persistent_chains" in tensors:
            self.chains = tensors["persistent_chains"]

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        if self.chains is not None:
            self.chains = self.chains.to(device=device, dtype=dtype)


@register
class vRDM(NegativePhase):
    """Random-start chains: fresh random visibles every update, ``k`` full steps."""

    name = "vRDM"

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        return chain.gibbs(chain.network.random_visible(n_chains), k)


@register
class RDM(NegativePhase):
    """As vRDM, then one more forward pass: the pair is ``(v_k, h_k)``."""

    name = "RDM"

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        v, _ = chain.gibbs(chain.network.random_visible(n_chains), k)
        return v, chain.forward(v)


@register
class hRDM(NegativePhase):
    """Random hidden start: one backward pass, then ``k - 1`` steps (k = 1: a forward pass samples h)."""

    name = "hRDM"

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        v = chain.backward(chain.network.random_hidden(n_chains))
        return chain.gibbs(v, k - 1) if k > 1 else (v, chain.forward(v))


@register
class PT(NegativePhase):
    """Parallel tempering over the comparator noise: persistent chains at a ladder of inverse temperatures.

    The ladder has ``n_temperatures`` rungs, geometric from ``pt_beta_ratio * model_beta`` up to
    ``model_beta`` (:meth:`ladder`), each with ``n_chains`` persistent chains. An update runs
    ``k`` Gibbs steps at every rung, from the hottest to ``model_beta``; then, for each adjacent
    pair of rungs in turn from the hottest, chain ``c`` of one rung and chain ``c`` of the other
    swap their states ``x = (v_k, h_{k-1})`` with the Metropolis probability

        min(1, exp((beta_r - beta_{r+1}) (E(x_r) - E(x_{r+1}))))

    (:meth:`swap`). The model pair is the state of the ``model_beta`` rung after the swaps.
    With one rung there are no swaps and PT is PCD: the same draws, passes and updates.

    **The swap energy.** The comparator of each unit sees an input ``x_j``; for the hopfield
    energy these are the fields of the Boltzmann law ``exp(-beta E)`` with the RBM energy
    ``E(v, h) = -h.W v - a.v - b.h`` (``rkm.core.hopfield.energy``, comparator offsets folded into
    the biases), and the swaps keep the product of the rungs' laws exactly (for the bernoulli
    comparator, whose conditionals are those of that law). The RKM has no such energy: its
    forward pass divides hidden unit j's weights by that node's conductance ``G_j`` and scales
    by the clamped layer's size ``s_v``, its backward pass divides by ``G_i`` and scales by
    ``s_h``, so no one law has both conditionals. The swap rule uses, for both energies, the
    energy read from the comparator inputs of both pass directions,

        E(v, h) = -1/2 [h . x_f(v) + v . x_b(h) + h . x_f(0) + v . x_b(0)],

    with ``x_f(v)`` the hidden comparators' inputs of a forward pass from ``v`` and ``x_b(h)``
    the visible comparators' of a backward pass from ``h``. For the hopfield energy this is the
    RBM energy above. For the RKM it is the energy of the Boltzmann machine whose biases are
    those each layer's comparators see and whose couplings are the mean of the two directions',
    ``W_ji (s_v / G_j + s_h / G_i) / 2``: exact detailed balance is then not guaranteed; it
    holds when the two directions agree (``s_v / G_j = s_h / G_i`` for every pair).

    **What the swaps cost.** Reading ``x_f`` and ``x_b`` of every rung is one forward and one
    backward pass of its ``n_chains`` chains, and ``x_f(0)``, ``x_b(0)`` one pass of one
    sample each; all go through the update's recorder (``PassRecorder.read``), so the
    energy of an update counts the data pass, ``2 k`` passes per rung and these ``2 R + 2``.

    The state is the chains, shape ``(n_temperatures, n_chains, n_visible)``, and the swaps
    accepted and attempted per adjacent pair since the start (``pt_chains``,
    ``pt_swaps_accepted``, ``pt_swaps_attempted`` in a save point); :attr:`acceptance` is
    their ratio.
    """

    name = "PT"
    settings = ("n_temperatures", "pt_beta_ratio")

    def __init__(self) -> None:
        self.chains: torch.Tensor | None = None
        self.accepted: torch.Tensor | None = None
        self.attempted: torch.Tensor | None = None

    @staticmethod
    def ladder(model_beta: float, n_temperatures: int, pt_beta_ratio: float) -> list[float]:
        """The rungs' inverse temperatures, ascending and geometric, the last exactly ``model_beta``."""
        if math.isinf(model_beta) or model_beta <= 0:
            raise ConfigError(f"parallel tempering needs a finite model_beta > 0, got {model_beta}; set model_beta, "
                              "or use PCD for a deterministic machine.")
        top = n_temperatures - 1
        return [model_beta * pt_beta_ratio ** ((top - r) / top) for r in range(top)] + [model_beta]

    def init_state(self, network: Network, n_chains: int, **settings: Any) -> None:
        rungs = settings["n_temperatures"]
        u = torch.rand((rungs, n_chains, network.n_visible), generator=network.generator, dtype=network.dtype,
                       device=network.device)
        self.chains = (u > 0.5).to(network.dtype)
        self.accepted = torch.zeros(rungs - 1, dtype=torch.int64, device=network.device)
        self.attempted = torch.zeros(rungs - 1, dtype=torch.int64, device=network.device)

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int, data_binary: bool,
               **settings: Any) -> tuple[torch.Tensor, torch.Tensor]:
        network = chain.network
        if self.chains is None:
            self.init_state(network, n_chains, **settings)
        assert self.chains is not None
        rungs = settings["n_temperatures"]
        if self.chains.shape != (rungs, n_chains, network.n_visible):
            raise ConfigError(
                f"pt_chains has shape {tuple(self.chains.shape)} but there are {rungs} rungs of {n_chains} chains "
                "(n_temperatures, n_chains or batch_size when it is unset); keep them fixed during PT training."
            )
        betas = self.ladder(network.model_beta, rungs, settings["pt_beta_ratio"])
        pairs = [chain.gibbs(self.chains[r], k, binary=False, beta=beta) for r, beta in enumerate(betas)]
        v, h = torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
        if rungs > 1:
            v, h = self.swap(chain, v, h, betas)
        self.chains = v
        return v[-1], h[-1]

    def energy(self, chain: PassRecorder, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """The swap energy (float64) of each rung's states ``v`` (R, N, n_visible), ``h`` (R, N, n_hidden)."""
        network = chain.network
        grounded_h = chain.read(v.new_zeros((1, network.n_visible)), True)[0].double()
        grounded_v = chain.read(h.new_zeros((1, network.n_hidden)), False)[0].double()
        out = []
        for v_r, h_r in zip(v, h):
            x_f, x_b = chain.read(v_r, True).double(), chain.read(h_r, False).double()
            v64, h64 = v_r.double(), h_r.double()
            out.append((h64 * x_f).sum(1) + (v64 * x_b).sum(1) + h64 @ grounded_h + v64 @ grounded_v)
        return torch.stack(out).mul_(-0.5)

    def swap(self, chain: PassRecorder, v: torch.Tensor, h: torch.Tensor,
             betas: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """The states after the Metropolis swaps of each adjacent pair of rungs, hottest pair first."""
        assert self.accepted is not None and self.attempted is not None
        energy = self.energy(chain, v, h)
        u = torch.rand((len(betas) - 1, v.shape[1]), generator=chain.network.generator, dtype=torch.float64,
                       device=v.device)
        v, h = v.clone(), h.clone()
        for r in range(len(betas) - 1):
            log_ratio = (betas[r] - betas[r + 1]) * (energy[r] - energy[r + 1])
            accept = u[r].log() < log_ratio
            for state in (v, h, energy):
                low, high = state[r].clone(), state[r + 1]
                mask = accept.view(-1, *([1] * (state.dim() - 2)))
                state[r] = torch.where(mask, high, low)
                state[r + 1] = torch.where(mask, low, high)
            self.accepted[r] += accept.sum()
            self.attempted[r] += accept.numel()
        return v, h

    @property
    def acceptance(self) -> torch.Tensor | None:
        """Fraction of accepted swaps of each adjacent pair of rungs (hottest first) since the start; None before."""
        if self.accepted is None or self.attempted is None or not int(self.attempted.sum()):
            return None
        return self.accepted.double() / self.attempted.double()

    def readings(self) -> dict[str, float]:
        """``swap_acceptance``: the fraction of accepted swaps over every pair since the start."""
        if self.accepted is None or self.attempted is None or not int(self.attempted.sum()):
            return {}
        return {"swap_acceptance": float(self.accepted.sum()) / float(self.attempted.sum())}

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.chains is None or self.accepted is None or self.attempted is None:
            return {}
        return {"pt_chains": self.chains, "pt_swaps_accepted": self.accepted, "pt_swaps_attempted": self.attempted}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        if "pt_chains" in tensors:
            self.chains = tensors["pt_chains"]
            device = self.chains.device
            self.accepted = tensors["pt_swaps_accepted"].to(device)
            self.attempted = tensors["pt_swaps_attempted"].to(device)

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        if self.chains is not None and self.accepted is not None and self.attempted is not None:
            self.chains = self.chains.to(device=device, dtype=dtype)
            self.accepted, self.attempted = self.accepted.to(device), self.attempted.to(device)
