"""Comparators: how a node's analog input becomes a binary unit.

A comparator takes the comparator input ``x`` (the node voltage, times the size of the
clamped layer when layer scaling is on) and an inverse temperature ``beta``; it gives the
probability P(unit = 1 | x) in closed form and draws a sample.

====================  ===========================================  ==================
mode                  sample                                       P(unit = 1)
====================  ===========================================  ==================
``bernoulli``         s ~ Bernoulli(sigmoid(beta x))               sigmoid(beta x)
``multi-threshold``   s = [beta x > t], one t per unit and sample  Phi(beta x) or
                      (t ~ N(0, 1) or U(-1, 1))                    clip((1+beta x)/2)
``single-threshold``  as above, one t shared by a whole layer      same marginal
deterministic         s = [x > 0] (beta > 1000 or beta = inf)      s
====================  ===========================================  ==================

Comparing ``beta x`` with a unit-width threshold is the same event as comparing ``x``
with a threshold of width ``1/beta`` (the reference's form), without dividing by beta.

Threshold sharing (``single-threshold``): the reference draws one threshold for the
whole batch, so all samples in a batch see the same comparator noise. A batch stands
for independent devices, so rkm's default (``sharing='sample'``) draws one threshold
per sample, shared by the units of that sample's layer; ``sharing='batch'`` reproduces
the reference.

Every mode is a :class:`Comparator` subclass registered by name in :data:`COMPARATORS`
(the ``sampling`` setting). A new mode is one class::

    @rkm.core.comparators.register
    class Clipped(rkm.core.comparators.Comparator):
        name = "clipped"

        def probability(self, x, beta):
            return (0.5 + 0.25 * beta * x).clamp(0, 1)

        def sample(self, x, beta, generator):
            p = self.probability(x, beta)
            return p, torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).lt_(p)

after which ``sampling="clipped"`` works in the constructor, configuration files and the CLI.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from . import _checks
from ._registry import Registry

__all__ = ["Comparator", "Bernoulli", "MultiThreshold", "SingleThreshold", "COMPARATORS", "register", "make",
    "binarise", "probability", "log_probability", "is_deterministic", "random_binary", "DISTRIBUTIONS", "SHARINGS",
    "DETERMINISTIC_BETA"]

DISTRIBUTIONS = ("gaussian", "uniform")
SHARINGS = ("sample", "batch")
DETERMINISTIC_BETA = 1000.0
"""Above this inverse temperature the comparators are deterministic, as in the reference."""


class Comparator:
    """A comparator mode.

    Parameters
    ----------
    distribution : {'gaussian', 'uniform'}
        Threshold noise, for the modes that compare with a random threshold.
    sharing : {'sample', 'batch'}
        Threshold sharing, for the modes that share one threshold across a layer.

    Subclasses set :attr:`name` and implement :meth:`probability` and :meth:`sample`; the
    deterministic limit (``beta > 1000``) is handled by :func:`binarise`, not by them.
    """

    name: ClassVar[str] = ""

    def __init__(self, distribution: str = "gaussian", sharing: str = "sample") -> None:
        self.distribution = _checks.choice("distribution", distribution, DISTRIBUTIONS)
        self.sharing = _checks.choice("threshold_sharing", sharing, SHARINGS)

    def probability(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        """Closed-form P(unit = 1 | x) at a finite, non-deterministic ``beta``."""
        raise NotImplementedError

    def sample(self, x: torch.Tensor, beta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``(p, s)``: P(unit = 1 | x) and a 0/1 sample of ``x``'s dtype, every draw from ``generator``."""
        raise NotImplementedError

    def log_probability(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(log P(unit = 1 | x), log P(unit = 0 | x))``; modes with a closed form override it so that a
        saturated unit keeps its exact log-probability instead of ``-inf``."""
        p = self.probability(x, beta)
        return torch.log(p), torch.log1p(-p)

    def _thresholds(self, shape: torch.Size, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.distribution == "gaussian":
            return torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
        return torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device).mul_(2.0).sub_(1.0)

    def _threshold_probability(self, z: torch.Tensor) -> torch.Tensor:
        if self.distribution == "gaussian":
            return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
        return ((1.0 + z) * 0.5).clamp(0.0, 1.0)

    def _threshold_log_probability(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        if self.distribution == "gaussian":
            z = _scaled(x, beta)
            return torch.special.log_ndtr(z), torch.special.log_ndtr(-z)
        return Comparator.log_probability(self, x, beta)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(distribution={self.distribution!r}, sharing={self.sharing!r})"


COMPARATORS: Registry[type[Comparator]] = Registry("comparator")
"""Every comparator mode by its ``sampling`` name."""
register = COMPARATORS.register


def _scaled(x: torch.Tensor, beta: float) -> torch.Tensor:
    return x if beta == 1.0 else beta * x


@register
class Bernoulli(Comparator):
    """``s ~ Bernoulli(sigmoid(beta x))``."""

    name = "bernoulli"

    def probability(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        return torch.sigmoid(_scaled(x, beta))

    def log_probability(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        z = _scaled(x, beta)
        return torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)

    def sample(self, x: torch.Tensor, beta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.probability(x, beta)
        # in place: the uniform draws become the 0/1 sample, with no temporary
        return p, torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).lt_(p)


@register
class MultiThreshold(Comparator):
    """``s = [beta x > t]`` with one independent threshold per unit and per sample."""

    name = "multi-threshold"

    def probability(self, x: torch.Tensor, beta: float) -> torch.Tensor:
        return self._threshold_probability(_scaled(x, beta))

    def log_probability(self, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        return self._threshold_log_probability(x, beta)

    def sample(self, x: torch.Tensor, beta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = _scaled(x, beta)
        return self._threshold_probability(z), self._thresholds(x.shape, x, generator).lt_(z)


@register
class SingleThreshold(MultiThreshold):
    """``s = [beta x > t]`` with one threshold per sample (or per batch) shared by the layer's units."""

    name = "single-threshold"

    def sample(self, x: torch.Tensor, beta: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = _scaled(x, beta)
        shape = torch.Size((x.shape[0], 1) if self.sharing == "sample" else (1, 1))
        return self._threshold_probability(z), (z > self._thresholds(shape, x, generator)).to(x.dtype)


def make(sampling: str, distribution: str = "gaussian", sharing: str = "sample") -> Comparator:
    """The comparator registered as ``sampling``."""
    return COMPARATORS[_checks.choice("sampling", sampling, COMPARATORS)](distribution, sharing)


def is_deterministic(beta: float) -> bool:
    """Whether units at this inverse temperature are thresholded at 0 without noise."""
    return beta > DETERMINISTIC_BETA


def probability(comparator: Comparator, x: torch.Tensor, beta: float) -> torch.Tensor:
    """P(unit = 1 | x) of ``comparator`` at ``beta``, the deterministic limit included."""
    if is_deterministic(beta):
        return (x > 0).to(x.dtype)
    return comparator.probability(x, beta)


def log_probability(comparator: Comparator, x: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log P(unit = 1 | x), log P(unit = 0 | x))`` of ``comparator``, the deterministic limit included."""
    if is_deterministic(beta):
        p = (x > 0).to(x.dtype)
        return torch.log(p), torch.log1p(-p)
    return comparator.log_probability(x, beta)


def binarise(
    comparator: Comparator, x: torch.Tensor, beta: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(p, s)`` of comparator inputs ``x`` (batch, n); deterministic above ``DETERMINISTIC_BETA``."""
    if is_deterministic(beta):
        s = (x > 0).to(x.dtype)
        return s, s
    return comparator.sample(x, beta, generator)


def random_binary(shape: tuple[int, int], generator: torch.Generator, dtype: torch.dtype,
                  device: torch.device | str) -> torch.Tensor:
    """Independent fair 0/1 units of shape (rows, n): 64 units per 64-bit draw.

    ``torch.randint(0, 2, ...)`` spends a whole draw on each unit; unpacking the bits
    of full-range 64-bit draws is about four times faster for a batch of visible layers.
    """
    rows, n = shape
    per_row = -(-n // 8)
    words = torch.empty(-(-rows * per_row // 8), dtype=torch.int64, device=device)
    words.random_(-(2**63), 2**63 - 1, generator=generator)
    packed = words.view(torch.uint8)[: rows * per_row].view(rows, per_row)
    shifts = torch.arange(8, dtype=torch.uint8, device=device)
    bits = packed.unsqueeze(-1).bitwise_right_shift(shifts).bitwise_and_(1)
    return bits.view(rows, per_row * 8)[:, :n].to(dtype)
