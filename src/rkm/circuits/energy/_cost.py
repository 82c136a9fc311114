"""The circuit's cost of one operation: time, power and energy of a pass, a Gibbs step and an update.

A pass of the resistor network lasts ``ln(1/eps)`` slowest relaxation times of its direction
and uses its mean power over the clamped states times that duration (plus comparator
decisions), in SI units (:mod:`rkm.core.units`).

An update of CD/PCD-k is the data pass, the k steps of the model chain and the learning step.
On twin networks (``update_model='twin'``, the machine of the paper) the clamped twin runs the
data pass while the free twin runs the chain, so the passes last ``max(t_f, k (t_f + t_b))``;
on one network (``'sequential'``) they last ``(k + 1) t_f + k t_b``. Either way the energy is
every pass's, and the learning step follows the passes: one comparison per device (every
weight and bias) and the programming pulses, with the time and energy per comparison and per
pulse of the units (0, not counted, by default).
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

__all__ = ["Cost", "UPDATE_MODELS", "synthetic_machine", "circuit_costs", "devices_of"]

UPDATE_MODELS = ("twin", "sequential")
"""How an update's passes are timed: twin networks at once, or one network one pass after the other."""


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


def devices_of(model: Any) -> int:
    """Resistors of the machine, each a programmable device: the weights and both layers' biases.

    Parameters
    ----------
    model : rkm.RBM or rkm.RKM
        Anything with ``n_visible`` and ``n_hidden``.

    Returns
    -------
    int
        ``n_hidden * n_visible + n_hidden + n_visible``.
    """
    return model.n_hidden * model.n_visible + model.n_hidden + model.n_visible


def circuit_costs(
    model: Any, v: torch.Tensor, h: torch.Tensor, units: si.Units = si.DEFAULT_UNITS, k: int = 1,
    update_model: str = "twin", pulses: int | None = None,
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
    update_model : {'twin', 'sequential'}
        How the update's passes are timed (see the module docstring).
    pulses : int, optional
        Programming pulses of the update (default: every device once, the most a pulse rule sends).

    Returns
    -------
    dict
        ``{"pass": Cost, "gibbs": Cost, "update": Cost}``, each per sample.
    """
    if update_model not in UPDATE_MODELS:
        raise ConfigError(f"update_model must be one of {', '.join(UPDATE_MODELS)}, got {update_model!r}.")
    devices = devices_of(model)
    pulses = devices if pulses is None else pulses
    tau_f, tau_b = model.relaxation_times()
    power_f = float(model.power_forward(v).mean(dtype=torch.float64))
    power_b = float(model.power_backward(h).mean(dtype=torch.float64))
    t_f, t_b = si.settling_time_s(tau_f, units), si.settling_time_s(tau_b, units)
    e_f, e_b = si.pass_energy_j(power_f, tau_f, units), si.pass_energy_j(power_b, tau_b, units)

    def cost(time_s: float, energy_j: float) -> Cost:
        return Cost(time_s=time_s, power_w=energy_j / time_s, energy_j=energy_j)

    passes_s = max(t_f, k * (t_f + t_b)) if update_model == "twin" else (k + 1) * t_f + k * t_b
    update = cost(si.update_time_s(passes_s, pulses > 0, units),
                  (k + 1) * e_f + k * e_b + si.step_energy_j(devices, pulses, units))
    return {"pass": cost(t_f, e_f), "gibbs": cost(t_f + t_b, e_f + e_b), "update": update}

