"""Physical units for the resistor network: code units to siemens, volts, seconds, watts, joules.

rkm computes the circuit in code units: a weight ``W_ji`` is a conductance ``|W_ji|``, a
clamped unit sits at 0 or 1, every free node has capacitance 2
(:data:`rkm.core.physics.NODE_CAPACITANCE`), so a node's relaxation time is ``2 / G`` and a
pass dissipates ``P = 1/2 sum G dV^2``. :class:`Units` says what one code unit is in SI:

=====================  ===========================================  ==========================================
quantity               SI value                                     from
=====================  ===========================================  ==========================================
conductance            ``G_code * conductance_s``                   ``conductance_s`` (S)
voltage                ``V_code * voltage_v``                       ``voltage_v`` (V)
power                  ``P_code * conductance_s * voltage_v**2``    ``conductance_s``, ``voltage_v``
time                   ``t_code * time_unit_s(units)``              ``time_unit_s = (C / 2) / conductance_s``
energy (power x time)  ``E_code * C * voltage_v**2 / 2``            ``C = node_capacitance_f`` (F)
=====================  ===========================================  ==========================================

so a node's relaxation time in seconds is ``C / G_SI``, whatever the code's capacitance 2.

How long a pass lasts. In a pass every free node is tied only to fixed sources (the
clamped layer, its inverted copies, the bias supplies), never to another free node, so
each node relaxes on its own: ``V_j(t) - V_j(inf) = (V_j(0) - V_j(inf)) exp(-t / tau_j)``
with ``tau_j = C / G_j``. The pass has settled to a relative precision ``eps`` (every
node's remaining deviation at most ``eps`` of its initial one) after

    t_pass = ln(1 / eps) * max_j tau_j,

the slowest free node of that direction setting the pace (:func:`settling_time_s`). A
free node with no conductance at all has no defined voltage, dissipates nothing and is
left out of the maximum. The energy of a pass is its equilibrium power times that
duration (the transient, which charges each node's capacitance once, is not counted),
plus an optional fixed energy per comparator decision, one decision per free node.

The learning step. On the circuit an update ends with every edge comparing its readings in the
two twin networks (``rkm.training.local``) and with the programming pulses
(``rkm.training.pulse``): all edges compare at once, and all pulsed devices are pulsed at once,
so the step adds ``comparison_time_s`` to every update and ``pulse_time_s`` to every update that
sends a pulse, and ``comparison_energy_j`` per edge (weights and biases: every device) and
``pulse_energy_j`` per pulse to its energy (:func:`update_time_s`, :func:`step_energy_j`). All
four are 0, not counted, by default: no value could be verified (``docs/learning-rule.md``).

The defaults are chosen in ``docs/energy.md`` (with the published CLLN figures they were
checked against); every one is a constructor argument and an ``rkm energy`` flag.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

from ..errors import ConfigError, DataError
from .physics import NODE_CAPACITANCE

__all__ = [
    "UNIT_RANGE",
    "Units",
    "DEFAULT_UNITS",
    "power_watts",
    "seconds",
    "time_unit_s",
    "energy_unit_j",
    "settling_multiple",
    "slowest_relaxation",
    "settling_time_s",
    "pass_energy_j",
    "training_energy_j",
    "training_time_s",
    "update_time_s",
    "step_energy_j",
    "Readings",
    "readings",
]


UNIT_RANGE = (1e-30, 1e30)
"""The range of every unit of :class:`Units`: an SI value is a code value times at most three units
(an energy is power x time, ``conductance V^2 x C / conductance``), so within 10^+-90 of it,
far inside float64 and inside what a log axis can label (docs/reliability.md)."""


@dataclass(frozen=True)
class Units:
    """What one code unit of the circuit is in SI units.

    Parameters
    ----------
    conductance_s : float
        Siemens per code unit of conductance (``|W| = 1`` is this conductance).
    voltage_v : float
        Volts per code unit of voltage (a clamped unit at 1 sits at this voltage).
    node_capacitance_f : float
        Capacitance of every free node, in farads.
    settling_precision : float
        Relative precision, in (0, 1), to which a pass must settle before its comparators
        decide; a pass lasts ``ln(1 / settling_precision)`` slowest relaxation times.
    comparator_energy_j : float
        Energy of one comparator decision, in joules (0: not counted).
    comparison_energy_j, comparison_time_s : float
        Energy of one edge's comparison of its readings in the two twins, in joules, and the
        duration of the comparison step of an update, in seconds (0: not counted).
    pulse_energy_j, pulse_time_s : float
        Energy of one programming pulse of one device, in joules, and the duration of the
        pulse step of an update, in seconds (0: not counted).
    """

    conductance_s: float = 1e-4
    voltage_v: float = 1.0
    node_capacitance_f: float = 1e-10
    settling_precision: float = 1e-3
    comparator_energy_j: float = 0.0
    comparison_energy_j: float = 0.0
    comparison_time_s: float = 0.0
    pulse_energy_j: float = 0.0
    pulse_time_s: float = 0.0

    def __post_init__(self) -> None:
        for name in ("conductance_s", "voltage_v", "node_capacitance_f"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not UNIT_RANGE[0] <= value <= UNIT_RANGE[1]:
                raise ConfigError(f"{name} must be a number in [{UNIT_RANGE[0]:g}, {UNIT_RANGE[1]:g}] (docs/"
                                  f"reliability.md), got {value!r}.", names=(name,))
        eps = self.settling_precision
        if not isinstance(eps, (int, float)) or not UNIT_RANGE[0] <= eps < 1.0:
            raise ConfigError(f"settling_precision must lie in [1e-30, 1) (e.g. 1e-3), got {eps!r}.",
                              names=("settling_precision",))
        for name in ("comparator_energy_j", "comparison_energy_j", "comparison_time_s", "pulse_energy_j",
                     "pulse_time_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= UNIT_RANGE[1]:
                raise ConfigError(f"{name} must be a number in [0, {UNIT_RANGE[1]:g}] (0: not counted), got "
                                  f"{value!r}.", names=(name,))

    def as_dict(self) -> dict[str, float]:
        """The settings, with the derived settling multiple, for CSV columns or JSON."""
        return {**asdict(self), "settling_multiple": settling_multiple(self)}


DEFAULT_UNITS = Units()
"""10 kOhm per unit of ``|W|``, 1 V per unit of voltage, 100 pF per node, settled to 1e-3."""


def _value(x: Any) -> Any:
    """A Python float for a 0-d tensor or a number; other tensors and arrays pass through."""
    if isinstance(x, torch.Tensor) and x.dim() == 0:
        return float(x)
    return x


def power_watts(code_power: Any, units: Units = DEFAULT_UNITS) -> Any:
    """Power in watts of a power in code units (``model.power_forward(v)``, ``model.power_f``...)."""
    return _value(code_power) * (units.conductance_s * units.voltage_v**2)


def time_unit_s(units: Units = DEFAULT_UNITS) -> float:
    """Seconds per code unit of time: ``(C / 2) / conductance_s`` (the code's capacitance is 2)."""

    return units.node_capacitance_f / NODE_CAPACITANCE / units.conductance_s


def seconds(code_time: Any, units: Units = DEFAULT_UNITS) -> Any:
    """Time in seconds of a time in code units (``model.relax_t_f``, ``model.relaxation_times()``)."""
    return _value(code_time) * time_unit_s(units)


def energy_unit_j(units: Units = DEFAULT_UNITS) -> float:
    """Joules per code unit of power x code unit of time: ``C * voltage_v**2 / 2``."""
    return units.node_capacitance_f * units.voltage_v**2 / 2.0


def settling_multiple(units: Units = DEFAULT_UNITS) -> float:
    """Relaxation times a pass lasts: ``ln(1 / settling_precision)`` (6.91 for 1e-3)."""
    return math.log(1.0 / units.settling_precision)


def slowest_relaxation(code_times: Any) -> float:
    """Largest finite relaxation time (code units) of one pass direction; isolated nodes left out.

    Raises
    ------
    DataError
        Every free node is isolated (no conductance), so the pass never settles.
    """
    tau = torch.as_tensor(code_times, dtype=torch.float64)
    finite = tau[torch.isfinite(tau)]
    if finite.numel() == 0:
        raise DataError("every free node of this pass has zero conductance, so it never settles; "
                        "give the machine nonzero weights or biases.")
    return float(finite.max())


def settling_time_s(code_times: Any, units: Units = DEFAULT_UNITS) -> float:
    """Duration in seconds of a pass whose free nodes have the relaxation times ``code_times``.

    ``ln(1 / settling_precision)`` times the slowest finite relaxation time (see the module
    docstring), converted to seconds.
    """
    return settling_multiple(units) * seconds(slowest_relaxation(code_times), units)


def pass_energy_j(code_power: Any, code_times: Any, units: Units = DEFAULT_UNITS) -> float:
    """Energy in joules of one pass: power x settling time + one comparator decision per free node.

    Parameters
    ----------
    code_power : float or 0-d Tensor
        The pass's power in code units (one sample, or a batch mean).
    code_times : Tensor, shape (n_free,)
        Relaxation times of the pass's free nodes in code units.
    """
    n_free = torch.as_tensor(code_times).numel()
    power = power_watts(float(code_power), units)
    return power * settling_time_s(code_times, units) + n_free * units.comparator_energy_j


def training_energy_j(power_tau_sum: Any, decisions: int = 0, units: Units = DEFAULT_UNITS) -> float:
    """Energy in joules of many passes from the sum a trainer accumulates.

    Parameters
    ----------
    power_tau_sum : float or 0-d Tensor
        ``sum over passes of (sum over the pass's samples of the code power) x (the slowest
        finite relaxation time of the pass's direction, code units)``, i.e. per update
        ``tau_max_f * (forward power of every forward pass and sample) + tau_max_b * (...)``,
        with the relaxation times of the parameters the passes ran with.
    decisions : int
        Comparator decisions made (free nodes x samples, summed over passes); they count
        only when ``units.comparator_energy_j`` is set.
    """
    energy = float(power_tau_sum) * settling_multiple(units) * energy_unit_j(units)
    return energy + decisions * units.comparator_energy_j


def step_energy_j(comparisons: int, pulses: int, units: Units = DEFAULT_UNITS) -> float:
    """Energy in joules of learning steps: ``comparisons`` edge comparisons and ``pulses`` programming pulses.

    Parameters
    ----------
    comparisons : int
        Edge comparisons (one per device and update).
    pulses : int
        Programming pulses.
    units : Units
        Their energies: ``comparison_energy_j``, ``pulse_energy_j``.

    Returns
    -------
    float
    """
    return comparisons * units.comparison_energy_j + pulses * units.pulse_energy_j


def update_time_s(passes_s: float, pulsed: bool, units: Units = DEFAULT_UNITS) -> float:
    """Duration in seconds of one update: its passes, then the comparison step, then the pulse step if any.

    Parameters
    ----------
    passes_s : float
        Duration of the update's passes in seconds.
    pulsed : bool
        Whether the update sends a programming pulse.
    units : Units
        The steps' durations: ``comparison_time_s``, ``pulse_time_s``.

    Returns
    -------
    float
    """
    return passes_s + units.comparison_time_s + (units.pulse_time_s if pulsed else 0.0)


def training_time_s(tau_sum: Any, updates: int, pulsed_updates: int = 0, units: Units = DEFAULT_UNITS) -> float:
    """Duration in seconds of many updates from the sum a trainer accumulates.

    Parameters
    ----------
    tau_sum : float or 0-d Tensor
        ``sum over updates of (samples x the direction's slowest finite relaxation time, code
        units)`` over the passes that run one after the other: the slower twin's passes
        (``trainer.circuit_time``), or every pass on one network (``trainer.sequential_time``).
    updates : int
        Updates in the sum: each ends with one comparison step.
    pulsed_updates : int
        Those of them that sent a programming pulse: each adds one pulse step.
    units : Units
        The circuit's units and the steps' durations.

    Returns
    -------
    float
    """
    passes = float(tau_sum) * settling_multiple(units) * time_unit_s(units)
    return passes + updates * units.comparison_time_s + pulsed_updates * units.pulse_time_s


@dataclass(frozen=True)
class Readings:
    """A model's power, energy and times in SI units (:func:`readings`; ``model.si()``).

    Attributes
    ----------
    power_f_w, power_b_w : float
        The last update's forward / backward power (``model.power_f``, ``power_b``), watts.
    energy_j : float
        Energy of every pass of training since update ``energy_since`` (0: all of training), each
        pass lasting its settling time, plus the comparator decisions and the learning steps (one
        comparison per device and update, the programming pulses).
    energy_since : int
        0, or the update of a save point written before rkm recorded the energy in joules or the
        circuit time, from which this model was resumed (the updates before it are unknown).
    circuit_time_s, sequential_time_s : float
        Duration of the updates since ``energy_since`` on twin networks (each update lasts the
        slower twin's passes, then its learning step), and on one network running the data pass
        and the negative phase one after the other (then the same step).
    pulses : int
        Programming pulses since ``energy_since``.
    relax_t_f_s, relax_t_b_s : Tensor
        Relaxation times of the hidden (forward pass) and visible (backward pass) nodes, seconds.
    pass_time_f_s, pass_time_b_s : float
        How long a forward / backward pass takes to settle with the current parameters, seconds.
    """

    power_f_w: float
    power_b_w: float
    energy_j: float
    energy_since: int
    circuit_time_s: float
    sequential_time_s: float
    pulses: int
    relax_t_f_s: torch.Tensor
    relax_t_b_s: torch.Tensor
    pass_time_f_s: float
    pass_time_b_s: float


def readings(model: Any, units: Units = DEFAULT_UNITS) -> Readings:
    """The SI readings of an ``rkm.RKM``/``rkm.RBM`` (its code-unit ``power_f``, ``energy``... are unchanged)."""
    tau_f, tau_b = model.relaxation_times()
    trainer = model.trainer
    updates = trainer.epoch - trainer.settled_since
    devices = model.n_hidden * model.n_visible + model.n_hidden + model.n_visible
    return Readings(
        power_f_w=power_watts(trainer.power_f, units),
        power_b_w=power_watts(trainer.power_b, units),
        energy_j=training_energy_j(trainer.settled, trainer.decisions, units)
        + step_energy_j(updates * devices, trainer.pulses, units),
        energy_since=trainer.settled_since,
        circuit_time_s=training_time_s(trainer.circuit_time, updates, trainer.pulsed_updates, units),
        sequential_time_s=training_time_s(trainer.sequential_time, updates, trainer.pulsed_updates, units),
        pulses=trainer.pulses,
        relax_t_f_s=seconds(tau_f, units),
        relax_t_b_s=seconds(tau_b, units),
        pass_time_f_s=settling_time_s(tau_f, units),
        pass_time_b_s=settling_time_s(tau_b, units),
    )
