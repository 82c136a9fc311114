"""The step of an update: contrastive statistics, the transforms that modify them, the optimiser.

An update's ascent direction is the contrastive statistics ``<.>_data - <.>_model`` of ``W``,
``v_bias`` and ``h_bias`` (:class:`Gradient`). A chain of small pieces turns it into a step,
each with its state explicit, in this order:

1. :class:`Centering` (centred gradients: the offsets slide towards the batch means, and the
   bias directions are corrected by the weight direction);
2. :class:`L2` and :class:`L1` (shrink every parameter towards zero, in SGD and Adam alike);
3. the optimiser, registered by name in :data:`OPTIMIZERS` (``SGD``, ``Adam``; ``pulse`` in
   :mod:`rkm.training.pulse`), which steps the programmed parameters in place;
4. the clipping of every parameter to ``[min_W, max_W]``.

The weight direction is formed only when a piece asks for it (:attr:`Gradient.dW`): plain SGD
adds the two statistics products straight into ``W``, so no W-sized float gradient is formed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from ..core import _checks, _products
from ..core._registry import Component, Registry

__all__ = ["Gradient", "Centering", "L1", "L2", "Optimizer", "SGD", "Adam", "OPTIMIZERS", "register",
    "regularization_terms", "REGULARIZATIONS", "CENTERING_SLIDE"]

REGULARIZATIONS = ("l1", "l2", "l1+l2")
CENTERING_SLIDE = 0.01
"""Sliding factor of the centering offsets (the reference's ``slv``/``slh``)."""
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8


def regularization_terms(value: Any) -> tuple[str, ...]:
    """The terms of a ``regularization`` setting: False/None -> (), True -> ('l2', 'l1') (the documented L1+L2)."""
    if value is None or value is False or (isinstance(value, str) and value == "none"):
        return ()
    if value is True:
        value = "l1+l2"
    value = _checks.choice("regularization", value, REGULARIZATIONS)
    return tuple(term for term in ("l2", "l1") if term in value)


class Gradient:
    """Ascent directions of ``(W, v_bias, h_bias)``; the weight part formed on first use.

    Built from the data pair ``(v_data, h_data)`` and the model pair ``(v_model, h_model)``,
    with optional centering offsets ``(ov, oh)`` and exact int8 ``counts`` of the two outer
    products (:func:`rkm.core._products.binary_counts`), or from explicit tensors (:meth:`given`).
    """

    def __init__(self, v_data: torch.Tensor, h_data: torch.Tensor, v_model: torch.Tensor, h_model: torch.Tensor,
                 *, offsets: tuple[torch.Tensor, torch.Tensor] | None, counts: torch.Tensor | None, fast: bool) -> None:
        self._pairs = (v_data, h_data, v_model, h_model)
        self._offsets, self._counts, self._fast = offsets, counts, fast
        self._dW: torch.Tensor | None = None
        self.dv = v_data.mean(dim=0) - v_model.mean(dim=0)
        self.dh = h_data.mean(dim=0) - h_model.mean(dim=0)

    @classmethod
    def given(cls, dW: torch.Tensor, dv: torch.Tensor, dh: torch.Tensor) -> Gradient:
        """A gradient of explicit tensors (the seed's ``SGD_update`` / ``Adam_update``)."""
        grad = cls.__new__(cls)
        grad._dW, grad.dv, grad.dh = dW, dv, dh
        return grad

    @property
    def formed(self) -> bool:
        """Whether the weight direction exists as a tensor."""
        return self._dW is not None

    @property
    def dW(self) -> torch.Tensor:
        """The weight direction ``mean (h_d - oh)(v_d - ov)^T - mean (h_m - oh)(v_m - ov)^T``."""
        if self._dW is None:
            v_data, h_data, v_model, h_model = self._pairs
            nd, nm = v_data.shape[0], v_model.shape[0]
            if self._counts is not None:
                self._dW = self._counts.to(v_data.dtype).div_(nd)
            else:
                if self._offsets is not None:
                    ov, oh = self._offsets
                    v_data, h_data, v_model, h_model = v_data - ov, h_data - oh, v_model - ov, h_model - oh
                self._dW = _products.mm((h_data / nd).t(), v_data, self._fast)
                _products.addmm_(self._dW, h_model.t(), v_model, -1.0 / nm, self._fast)
        return self._dW

    @dW.setter
    def dW(self, value: torch.Tensor) -> None:
        self._dW = value

    def add_weights_to(self, W: torch.Tensor, alpha: float) -> None:
        """``W += alpha * dW`` in place, straight from the statistics when ``dW`` was never formed."""
        if self._dW is not None:
            W.add_(self._dW, alpha=alpha)
            return
        v_data, h_data, v_model, h_model = self._pairs
        nd, nm = v_data.shape[0], v_model.shape[0]
        if self._counts is not None:
            W.add_(self._counts, alpha=alpha / nd)
        else:
            _products.addmm_(W, h_data.t(), v_data, alpha / nd, self._fast)
            _products.addmm_(W, h_model.t(), v_model, -alpha / nm, self._fast)

    def directions(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(dW, dv, dh)``, the weight part formed."""
        return self.dW, self.dv, self.dh


class Centering(Component):
    """Centred gradients (Melchior et al.): offsets ``ov``, ``oh`` slid towards the batch means.

    State: the offsets, starting at the data mean and 0.5.
    """

    def __init__(self, average_data: torch.Tensor, n_hidden: int, slide: float = CENTERING_SLIDE) -> None:
        self.ov = average_data.clone()
        self.oh = torch.full((n_hidden,), 0.5, dtype=average_data.dtype, device=average_data.device)
        self.slide_v = self.slide_h = slide

    def slide(self, v_data: torch.Tensor, h_data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Move the offsets towards this batch's means; returns them."""
        self.ov = (1 - self.slide_v) * self.ov + self.slide_v * v_data.mean(dim=0)
        self.oh = (1 - self.slide_h) * self.oh + self.slide_h * h_data.mean(dim=0)
        return self.ov, self.oh

    def __call__(self, grad: Gradient, params: tuple[torch.Tensor, ...]) -> None:
        dW = grad.dW
        grad.dv = grad.dv - self.oh @ dW
        grad.dh = grad.dh - dW @ self.ov

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"ov": self.ov, "oh": self.oh}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.ov, self.oh = tensors.get("ov", self.ov), tensors.get("oh", self.oh)

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        self.ov, self.oh = self.ov.to(device=device, dtype=dtype), self.oh.to(device=device, dtype=dtype)


class L2:
    """Weight decay: ``d -= 2 factor p`` for every parameter."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, grad: Gradient, params: tuple[torch.Tensor, ...]) -> None:
        for d, p in zip(grad.directions(), params):
            d.add_(p, alpha=-2.0 * self.factor)


class L1:
    """Sparsity: ``d -= factor sign(p)`` for every parameter."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, grad: Gradient, params: tuple[torch.Tensor, ...]) -> None:
        for d, p in zip(grad.directions(), params):
            d.sub_(torch.sign(p), alpha=self.factor)


class Optimizer(Component):
    """An optimiser: steps the parameters in place along a gradient (the base of every optimiser).

    An optimiser that reads trainer attributes (settings of the table, or ``network``) names them
    in :attr:`settings`; the trainer passes them to :meth:`step` as keywords. One that programs the
    devices with pulses says after each step how many it sent (:attr:`pulses`).
    """

    settings: ClassVar[tuple[str, ...]] = ()
    """Trainer attributes the optimiser reads, passed to :meth:`step` as keywords."""
    pulses: int | None = None
    """Programming pulses sent by the last step; None: the optimiser writes analog changes, not pulses."""

    def step(self, grad: Gradient, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lr: float, t: int,
             **settings: Any) -> None:
        """Ascend ``params`` along ``grad`` at learning rate ``lr``; ``t`` is the 1-based step number."""
        raise NotImplementedError


OPTIMIZERS: Registry[type[Optimizer]] = Registry("optimiser")
"""Every optimiser by its ``optimizer`` name."""
register = OPTIMIZERS.register


@register
class SGD(Optimizer):
    """``p += lr d``; the weight step comes straight from the statistics when nothing formed ``dW``."""

    name = "SGD"

    def step(self, grad: Gradient, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lr: float,
             t: int, **settings: Any) -> None:
        W, v_bias, h_bias = params
        grad.add_weights_to(W, lr)
        v_bias.add_(grad.dv, alpha=lr)
        h_bias.add_(grad.dh, alpha=lr)


_ADAM = ("W", "v", "h")


@register
class Adam(Optimizer):
    """Bias-corrected Adam (beta1 0.9, beta2 0.999, eps 1e-8). State: the moments ``m_d*`` and ``v_d*``."""

    name = "Adam"

    def __init__(self) -> None:
        self.beta1, self.beta2, self.epsilon = ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON
        self.moments: dict[str, torch.Tensor] = {}

    def init_state(self, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        """Zero moments shaped like ``params``."""
        for name, ref in zip(_ADAM, params):
            self.moments[f"m_d{name}"] = torch.zeros_like(ref)
            self.moments[f"v_d{name}"] = torch.zeros_like(ref)

    def step(self, grad: Gradient, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lr: float,
             t: int, **settings: Any) -> None:
        if not self.moments:
            self.init_state(params)
        c1, c2 = 1 - self.beta1**t, 1 - self.beta2**t
        for name, param, d in zip(_ADAM, params, grad.directions()):
            m, s = self.moments[f"m_d{name}"], self.moments[f"v_d{name}"]
            m.mul_(self.beta1).add_(d, alpha=1 - self.beta1)
            s.mul_(self.beta2).addcmul_(d, d, value=1 - self.beta2)
            denom = (s / c2).sqrt_().add_(self.epsilon)
            param.addcdiv_(m, denom, value=lr / c1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.moments)

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.moments.update({k: v for k, v in tensors.items() if k in {f"{p}_d{n}" for p in "mv" for n in _ADAM}})

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        self.moments = {k: v.to(device=device, dtype=dtype) for k, v in self.moments.items()}
