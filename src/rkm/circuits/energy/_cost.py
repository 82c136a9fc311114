"""The circuit's cost of one operation: time, power and energy of a pass, a Gibbs step and an update.

A pass of the resistor network lasts ``ln(1/eps)`` slowest relaxation times of its direction
and uses its mean power over the clamped states times that duration (plus comparator
decisions), in SI units (:mod:`rkm.core.units`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from ...core import limits
from ...core import units as si
from ...errors import ConfigError
from ...machine import RKM

__all__ = ["Cost", "synthetic_machine", "circuit_costs"]


@dataclass(frozen=True)
class Cost:
    """Duration, mean power and energy of one operation on one sample."""

    time_s: float
    power_w: float
    energy_j: float


def synthetic_machine(n: int, *, weight_std: float = 1.0, bias_std: float = 1.0, seed: int = 0) -> RKM:
    """An RKM with ``n_visible = n_hidden = n`` and size-independent conductance statistics.

    ``W``, ``v_bias`` and ``h_bias`` are drawn from ``Normal(0, weight_std)`` and
    ``Normal(0, bias_std)`` (float64, CPU, the model's own generator seeded with ``seed``),
    so every weight's conductance ``|W_ji|`` has the same distribution at every ``n``.
    """
    if not (math.isfinite(weight_std) and weight_std > 0 and math.isfinite(bias_std) and bias_std >= 0):
        raise ConfigError(f"weight_std must be > 0 and bias_std >= 0, got {weight_std!r} and {bias_std!r}.")
    widest = limits.SPREAD_SIGMAS * max(weight_std, bias_std)  # no normal draw of torch exceeds it
    try:
        limits.check_physics(torch.float64, n, n, g_v=0.5, g_h=0.5, offset=0.0, min_W=-widest, max_W=widest)
    except ConfigError:
        raise ConfigError(f"weight_std={weight_std:g} or bias_std={bias_std:g} is too large: parameters up to "
                          f"{widest:g} can overflow the float64 power of a machine of n={n} "
                          "(docs/reliability.md); use smaller ones.", names=("weight_std", "bias_std")) from None
    model = RKM("energy", n, n, mytype=torch.float64, device="cpu", seed=seed, fast_matmul=False)
    g = model.generator
    model.W = torch.randn((n, n), generator=g, dtype=torch.float64) * weight_std
    model.v_bias = torch.randn(n, generator=g, dtype=torch.float64) * bias_std
    model.h_bias = torch.randn(n, generator=g, dtype=torch.float64) * bias_std
    return model


def circuit_costs(
    model: Any, v: torch.Tensor, h: torch.Tensor, units: si.Units = si.DEFAULT_UNITS, k: int = 1
) -> dict[str, Cost]:
    """Cost of a pass, a Gibbs step and a CD/PCD-k update of ``model``'s circuit, in SI units.

    Parameters
    ----------
    model : rkm.RBM or rkm.RKM
        Its parameters define the network (either energy type: the circuit is the same).
    v : Tensor, shape (S, n_visible)
        Clamped visible states of the forward passes; the power is the mean over them.
    h : Tensor, shape (S', n_hidden)
        Clamped hidden states of the backward passes.
    units : Units
    k : int
        Gibbs steps of the update (k + 1 forward passes, k backward).

    Returns
    -------
    dict
        ``{"pass": Cost, "gibbs": Cost, "update": Cost}``, each per sample.
    """
    tau_f, tau_b = model.relaxation_times()
    power_f = float(model.power_forward(v).mean(dtype=torch.float64))
    power_b = float(model.power_backward(h).mean(dtype=torch.float64))
    t_f, t_b = si.settling_time_s(tau_f, units), si.settling_time_s(tau_b, units)
    e_f, e_b = si.pass_energy_j(power_f, tau_f, units), si.pass_energy_j(power_b, tau_b, units)

    def cost(n_f: int, n_b: int) -> Cost:
        t, e = n_f * t_f + n_b * t_b, n_f * e_f + n_b * e_b
        return Cost(time_s=t, power_w=e / t, energy_j=e)

    return {"pass": cost(1, 0), "gibbs": cost(1, 1), "update": cost(k + 1, k)}

