"""Device non-idealities: how the programmed parameters become the conductances the circuit realises.

Training updates the *programmed* state (``model.W``, ``v_bias``, ``h_bias``); every pass,
its power and the relaxation times see the *realised* parameters, the output of
:meth:`NonIdeality.realise`. The :class:`~rkm.network.Network` keeps the realised parameters
in its one physics cache, keyed by the programmed tensors' versions and :meth:`NonIdeality.key`.

The base class :class:`NonIdeality` is the ideal device: it realises exactly what is programmed.
"""

from __future__ import annotations

from collections.abc import Hashable

import torch


class NonIdeality:
    """Ideal devices: the realised parameters are the programmed ones (the base of every device model)."""

    def realise(
        self, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The realised ``(W, v_bias, h_bias)`` (sign = terminal, magnitude = conductance)."""
        return W, v_bias, h_bias

    def key(self) -> Hashable:
        """Changes whenever :meth:`realise` would give other values for the same programmed tensors."""
        return ()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a save point must keep (device-to-device spread, offsets...)."""
        return {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the state to ``device`` / ``dtype``."""

