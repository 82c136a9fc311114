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
========  ==============================================  ======================

``(v_k, h_{k-1})`` is the state of the circuit at the end of the last backward pass, as in
the reference. For hRDM with k=1 the reference paired the model visibles with the random
starting hiddens; here one forward pass samples hiddens from them. Every pass goes through
the update's :class:`~rkm.training.accounting.PassRecorder`, so its power is accounted for.

Each phase is a :class:`NegativePhase` registered by name in :data:`PHASES` (the
``train_algo`` setting), holding its own chain state. A new one is one class::

    @rkm.training.phases.register
    class Mirror(rkm.training.phases.NegativePhase):
        name = "mirror"

        def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
            return chain.gibbs(1 - v_data, k)
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..network import Network
from ..registry import Component, Registry
from .accounting import PassRecorder


class NegativePhase(Component):
    """A negative phase without state of its own (the base of every phase)."""

    def init_state(self, network: Network, n_chains: int) -> None:
        """Create the chain state (drawn from ``network.generator``); stateless phases have none."""

    def sample(self, chain: PassRecorder, v_data: torch.Tensor, *, k: int, n_chains: int,
               data_binary: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The model pair ``(v_model, h_model)`` of one update, every pass through ``chain``.

        ``v_data`` is the data batch, ``k`` the Gibbs steps, ``n_chains`` the number of model
        chains, ``data_binary`` whether ``v_data`` is known to be 0/1.
        """
        raise NotImplementedError


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
