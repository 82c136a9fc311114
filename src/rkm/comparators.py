"""Comparators: how a node's analog input becomes a binary unit.

Every mode takes the comparator input ``x`` (the node voltage, times the size of the
clamped layer when layer scaling is on) and an inverse temperature ``beta``, and
returns ``(p, s)``: the probability P(unit = 1 | x) in closed form and one sample.

===================  ==========================================  ==================
mode                 sample                                      P(unit = 1)
===================  ==========================================  ==================
``bernoulli``        s ~ Bernoulli(sigmoid(beta x))              sigmoid(beta x)
``multi-threshold``  s = [beta x > t], one t per unit and sample  Phi(beta x) or
                     (t ~ N(0, 1) or U(-1, 1))                   clip((1+beta x)/2)
``single-threshold`` as above, one t shared by a whole layer      same marginal
deterministic        s = [x > 0] (beta > 1000 or beta = inf)      s
===================  ==========================================  ==================

Comparing ``beta x`` with a unit-width threshold is the same event as comparing ``x``
with a threshold of width ``1/beta`` (the reference's form), without dividing by beta.

Threshold sharing (``single-threshold``): the reference draws one threshold for the
whole batch, so all samples in a batch see the same comparator noise. A batch stands
for independent devices, so rkm's default (``sharing='sample'``) draws one threshold
per sample, shared by the units of that sample's layer; ``sharing='batch'`` reproduces
the reference.
"""

from __future__ import annotations

import math

import torch

from .errors import ConfigError

SAMPLINGS = ("bernoulli", "multi-threshold", "single-threshold")
DISTRIBUTIONS = ("gaussian", "uniform")
SHARINGS = ("sample", "batch")
DETERMINISTIC_BETA = 1000.0
"""Above this inverse temperature the comparators are deterministic, as in the reference."""


def check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ConfigError naming them."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ConfigError(f"{name}={value!r} is not supported; use one of {listed}.")
    return value


def check_beta(beta: float) -> float:
    """Validate an inverse temperature: a number >= 0 (``inf`` allowed)."""
    try:
        value = float(beta)
    except (TypeError, ValueError):
        raise ConfigError(f"beta must be a number >= 0, got {beta!r}.") from None
    if math.isnan(value) or value < 0:
        raise ConfigError(f"beta must be a number >= 0 (inf for deterministic units), got {beta!r}.")
    return value


def is_deterministic(beta: float) -> bool:
    """Whether units at this inverse temperature are thresholded at 0 without noise."""
    return beta > DETERMINISTIC_BETA


def _thresholds(shape: torch.Size, x: torch.Tensor, distribution: str, generator: torch.Generator) -> torch.Tensor:
    if distribution == "gaussian":
        return torch.randn(shape, generator=generator, dtype=x.dtype, device=x.device)
    return torch.rand(shape, generator=generator, dtype=x.dtype, device=x.device).mul_(2.0).sub_(1.0)


def random_binary(shape: tuple[int, int], generator: torch.Generator, dtype: torch.dtype, device) -> torch.Tensor:
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


def probability(x: torch.Tensor, beta: float, sampling: str, distribution: str) -> torch.Tensor:
    """Closed-form P(unit = 1 | x) of a comparator mode."""
    if is_deterministic(beta):
        return (x > 0).to(x.dtype)
    z = x if beta == 1.0 else beta * x
    if sampling == "bernoulli":
        return torch.sigmoid(z)
    if distribution == "gaussian":
        return 0.5 * (1.0 + torch.erf(z / math.sqrt(2.0)))
    return ((1.0 + z) * 0.5).clamp(0.0, 1.0)


def log_probability(x: torch.Tensor, beta: float, sampling: str, distribution: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log P(unit = 1 | x), log P(unit = 0 | x))`` of a comparator mode, in closed form.

    Evaluated without taking the log of a rounded probability, so a saturated unit keeps
    its exact log-probability (``log sigmoid``, ``log Phi``) instead of ``-inf``.
    """
    if is_deterministic(beta):
        p = (x > 0).to(x.dtype)
        return torch.log(p), torch.log1p(-p)
    z = x if beta == 1.0 else beta * x
    if sampling == "bernoulli":
        return torch.nn.functional.logsigmoid(z), torch.nn.functional.logsigmoid(-z)
    if distribution == "gaussian":
        return torch.special.log_ndtr(z), torch.special.log_ndtr(-z)
    p = ((1.0 + z) * 0.5).clamp(0.0, 1.0)
    return torch.log(p), torch.log1p(-p)


def sample(
    x: torch.Tensor,
    beta: float,
    sampling: str,
    distribution: str,
    generator: torch.Generator,
    sharing: str = "sample",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binarise comparator inputs ``x`` of shape (batch, n) into ``(p, s)``.

    Parameters
    ----------
    x : Tensor, shape (batch, n)
        Comparator inputs.
    beta : float
        Inverse temperature (>= 0); above 1000 the units are deterministic.
    sampling, distribution : str
        Comparator mode and threshold distribution, see the module docstring.
    generator : torch.Generator
        Source of every random draw.
    sharing : {'sample', 'batch'}
        Threshold sharing of ``single-threshold``.

    Returns
    -------
    p : Tensor
        P(unit = 1 | x), closed form.
    s : Tensor
        Binary sample, same dtype as ``x``.
    """
    check_choice("sampling", sampling, SAMPLINGS)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    if is_deterministic(beta):
        s = (x > 0).to(x.dtype)
        return s, s
    p = probability(x, beta, sampling, distribution)
    if sampling == "bernoulli":
        # in place: the uniform draws become the 0/1 sample, with no temporary
        return p, torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device).lt_(p)
    z = x if beta == 1.0 else beta * x
    if sampling == "multi-threshold":
        return p, _thresholds(x.shape, x, distribution, generator).lt_(z)
    shape = (x.shape[0], 1) if sharing == "sample" else (1, 1)
    return p, (z > _thresholds(torch.Size(shape), x, distribution, generator)).to(x.dtype)
