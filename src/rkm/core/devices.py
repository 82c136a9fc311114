"""Device non-idealities: how the programmed parameters become the conductances the circuit realises.

Training updates the *programmed* state (``model.W``, ``v_bias``, ``h_bias``); every pass,
its power and the relaxation times see the *realised* parameters, the output of
:meth:`NonIdeality.realise`. The :class:`~rkm.core.network.Network` keeps the realised parameters
in its one physics cache, keyed by the programmed tensors' versions and :meth:`NonIdeality.key`.

The base class :class:`NonIdeality` is the ideal device: it realises exactly what is programmed.
:class:`Devices` is the device model of ``rkm.RKM``/``rkm.RBM`` (``model.devices``), six
non-idealities, each off by default:

``conductance_range=(g_min, g_max)``
    Every resistor's nominal conductance is clipped to ``[g_min, g_max]`` (0 < g_min: a
    device never switches fully off). A programmed 0 is realised as ``g_min`` on the direct
    terminal, the one a positive parameter uses (the sign bit decides: an IEEE ``-0.0``, which
    training does not produce, takes the inverted one).
``conductance_levels=L`` (with ``level_spacing='linear'`` or ``'log'``)
    The nominal conductance is the level nearest to the clipped one among ``L`` levels from
    ``g_min`` to ``g_max``, equally spaced in conductance or in its logarithm. Needs a range.
``variability=s``
    Each device multiplies its nominal conductance by its own fixed factor ``exp(s z)``,
    ``z ~ N(0, 1)`` drawn once from the model's generator (lognormal, median 1, log-standard
    deviation ``s``). The factor scales the whole device: its range and levels too.
``write_noise=s``
    Every programmed change ``d`` of a parameter lands as ``d (1 + s xi)``, ``xi ~ N(0, 1)``
    fresh for every device and every update, drawn from the model's generator.
``comparator_offset=s``
    Each comparator (one per unit) has a fixed offset voltage ``V_os = s z``, ``z ~ N(0, 1)``
    drawn once: the unit fires when its node voltage exceeds the threshold plus ``V_os``.
``comparator_levels=(V_low, V_high)``, ``comparator_level_spread=s``
    A unit's node sits at its comparator's output voltage, ``V_low`` for 0 and ``V_high`` for 1
    (default exactly 0 and 1), wherever the unit is held: as the clamped layer of a pass, the
    data written into the visible units, and the state the learning rule reads. Each unit's
    comparator has its own two levels ``V_low + s z_0`` and ``V_high + s z_1``, ``z ~ N(0, 1)``
    drawn once. A state ``x`` in [0, 1] sits at ``V_low + (V_high - V_low) x``.

Every resistor of the circuit is a device, the bias resistors included: a bias ``b`` is a
conductance ``|b|/g`` to a supply (``g`` = ``g_h`` or ``g_v``), so range, levels and spread act
on ``|b|/g`` exactly as on ``|W|``. The sign of a parameter says which terminal its device
connects to; the devices never change it. The realised parameters are::

    sign(p) * g * nominal(|p| / g) * exp(s z)

(``g`` = 1 for a weight), ``nominal`` the clipping to the range followed by the rounding to a
level. ``docs/nonideal.md`` gives the physical device
behaviour each stands for, with references.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from typing import Protocol

import torch

from ..errors import ConfigError

__all__ = ["NonIdeality", "Devices", "Host", "SPACINGS", "IDEAL_LEVELS", "check_levels"]

SPACINGS = ("linear", "log")
"""Spacings of ``conductance_levels``: equal steps in conductance, or in its logarithm."""
IDEAL_LEVELS = (0.0, 1.0)
"""The output voltages of an ideal comparator, for 0 and 1 (code units)."""


def check_levels(conductance_range: tuple[float, float] | None, conductance_levels: int | None) -> None:
    """Raise a ConfigError if levels are asked for without a range to put them in."""
    if conductance_levels is not None and conductance_range is None:
        raise ConfigError(f"conductance_levels={conductance_levels} needs conductance_range=(g_min, g_max) as well, "
                          "the range the levels lie in: add conductance_range=(0.001, 1), say (or leave "
                          "conductance_levels unset).", names=("conductance_levels", "conductance_range"))


class NonIdeality:
    """Ideal devices: the realised parameters are the programmed ones (the base of every device model)."""

    def realise(
        self, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, *, g_v: float, g_h: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The realised ``(W, v_bias, h_bias)`` (sign = terminal, magnitude = conductance; a bias
        ``b`` is the conductance ``|b|/g`` to its supply of voltage ``g_v`` or ``g_h``)."""
        return W, v_bias, h_bias

    def key(self) -> Hashable:
        """Changes whenever :meth:`realise` would give other values for the same programmed tensors."""
        return ()

    def comparator_offsets(self, forward: bool) -> torch.Tensor | None:
        """Offset voltage of each comparator of the free layer (hidden if ``forward``); None: no offsets."""
        return None

    def output_levels(self, visible: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Each unit's node voltage for 0 and for 1 (visible or hidden layer); None: exactly 0 and 1."""
        return None

    def write(self, params: tuple[torch.Tensor, ...], step: Callable[[], None]) -> None:
        """Apply ``step``, which changes the programmed ``params`` in place (ideal writes: exactly)."""
        step()

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors a save point must keep (device-to-device spread, offsets...)."""
        return {}

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`."""

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the state to ``device`` / ``dtype``."""


class Host(Protocol):
    """What :class:`Devices` reads from the network it belongs to."""

    generator: torch.Generator
    n_visible: int
    n_hidden: int
    device: torch.device
    dtype: torch.dtype


_SPREAD = ("devices_spread_W", "devices_spread_v_bias", "devices_spread_h_bias")
_OFFSETS = ("devices_offset_visible", "devices_offset_hidden")
_LEVELS = ("devices_levels_visible", "devices_levels_hidden")


class Devices(NonIdeality):
    """Real devices: conductance range, levels, device-to-device spread, write noise, comparator offsets.

    Parameters
    ----------
    host : Network
        The network the devices belong to: its generator gives every random draw, its sizes,
        device and dtype those of the device state.
    conductance_range : (float, float) or None
        ``(g_min, g_max)``, 0 < g_min < g_max.
    conductance_levels : int or None
        Number of levels (>= 2) in the range.
    level_spacing : {'linear', 'log'}
    variability, write_noise, comparator_offset : float
        Log-standard deviation of the spread, relative noise of a write, standard deviation of
        the comparator offsets (in node-voltage units); 0 is off.
    comparator_levels : (float, float)
        The comparators' output voltages for 0 and 1, ``V_low < V_high`` (default (0, 1)).
    comparator_level_spread : float
        Standard deviation of each comparator's own output voltages around them; 0 is off.

    The settings are taken as validated (``rkm.hyperparams``); they can be changed at any
    time. The spread's and the offsets' standard normal draws are made once, when the setting
    first becomes nonzero, and kept (save points hold them); with every setting off nothing
    is drawn and :meth:`realise` returns the programmed tensors themselves.
    """

    def __init__(self, host: Host, *, conductance_range: tuple[float, float] | None = None,
                 conductance_levels: int | None = None, level_spacing: str = "linear", variability: float = 0.0,
                 write_noise: float = 0.0, comparator_offset: float = 0.0,
                 comparator_levels: tuple[float, float] = IDEAL_LEVELS, comparator_level_spread: float = 0.0) -> None:
        self.host = host
        self.spread: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        """Standard normal draws of the spread: one per weight, visible bias and hidden bias."""
        self.offset_draws: tuple[torch.Tensor, torch.Tensor] | None = None
        """Standard normal draws of the comparator offsets: visible units, hidden units."""
        self.level_draws: tuple[torch.Tensor, torch.Tensor] | None = None
        """Standard normal draws of the output levels' spread, shapes (2, n_visible) and (2, n_hidden)."""
        self._generation = 0
        self._factors: tuple[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] | None = None
        self._range: tuple[float, float] | None = None
        self._levels: int | None = None
        self._spacing = "linear"
        self._variability = self._comparator_offset = self._level_spread = 0.0
        self._output: tuple[float, float] = IDEAL_LEVELS
        self.write_noise = write_noise
        self.conductance_range = conductance_range
        self.conductance_levels = conductance_levels
        self.level_spacing = level_spacing
        self.variability = variability
        self.comparator_offset = comparator_offset
        self.comparator_levels = comparator_levels
        self.comparator_level_spread = comparator_level_spread

    # ---------------------------------------------------------------- settings
    def _changed(self) -> None:
        self._generation += 1

    @property
    def conductance_range(self) -> tuple[float, float] | None:
        """``(g_min, g_max)`` of every realised conductance, or None."""
        return self._range

    @conductance_range.setter
    def conductance_range(self, value: tuple[float, float] | None) -> None:
        check_levels(value, self._levels)
        self._range = None if value is None else (float(value[0]), float(value[1]))
        self._changed()

    @property
    def conductance_levels(self) -> int | None:
        """Number of conductance levels in the range, or None for a continuum."""
        return self._levels

    @conductance_levels.setter
    def conductance_levels(self, value: int | None) -> None:
        check_levels(self._range, value)
        self._levels = value
        self._changed()

    @property
    def level_spacing(self) -> str:
        """``'linear'`` or ``'log'``: how the levels are spaced."""
        return self._spacing

    @level_spacing.setter
    def level_spacing(self, value: str) -> None:
        self._spacing = value
        self._changed()

    @property
    def variability(self) -> float:
        """Log-standard deviation ``s`` of the fixed device-to-device factor ``exp(s z)``."""
        return self._variability

    @variability.setter
    def variability(self, value: float) -> None:
        if value > 0 and self.spread is None:
            h = self.host
            self.spread = (self._normal((h.n_hidden, h.n_visible)), self._normal((h.n_visible,)),
                           self._normal((h.n_hidden,)))
        self._variability = float(value)
        self._changed()

    @property
    def comparator_offset(self) -> float:
        """Standard deviation of the comparators' fixed offset voltages."""
        return self._comparator_offset

    @comparator_offset.setter
    def comparator_offset(self, value: float) -> None:
        if value > 0 and self.offset_draws is None:
            self.offset_draws = (self._normal((self.host.n_visible,)), self._normal((self.host.n_hidden,)))
        self._comparator_offset = float(value)

    @property
    def comparator_levels(self) -> tuple[float, float]:
        """The comparators' nominal output voltages ``(V_low, V_high)`` for 0 and 1."""
        return self._output

    @comparator_levels.setter
    def comparator_levels(self, value: tuple[float, float]) -> None:
        self._output = (float(value[0]), float(value[1]))

    @property
    def comparator_level_spread(self) -> float:
        """Standard deviation of each comparator's output voltages around the nominal ones."""
        return self._level_spread

    @comparator_level_spread.setter
    def comparator_level_spread(self, value: float) -> None:
        if value > 0 and self.level_draws is None:
            self.level_draws = (self._normal((2, self.host.n_visible)), self._normal((2, self.host.n_hidden)))
        self._level_spread = float(value)

    def output_levels(self, visible: bool) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self._output == IDEAL_LEVELS and (self._level_spread == 0 or self.level_draws is None):
            return None
        h = self.host
        n = h.n_visible if visible else h.n_hidden
        nominal = torch.tensor(self._output, dtype=h.dtype, device=h.device).view(2, 1).expand(2, n)
        if self._level_spread > 0 and self.level_draws is not None:
            nominal = nominal + self._level_spread * self.level_draws[0 if visible else 1]
        return nominal[0], nominal[1]

    def _normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        h = self.host
        return torch.randn(shape, generator=h.generator, dtype=h.dtype, device=h.device)

    @property
    def realising(self) -> bool:
        """Whether the realised parameters differ from the programmed ones."""
        return self._range is not None or self._variability > 0

    # ----------------------------------------------------------- realisation
    def levels(self, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> torch.Tensor:
        """The ``L`` nominal conductance levels, ascending, ``g_min`` and ``g_max`` included exactly."""
        if self._levels is None:
            raise ConfigError("the devices have no conductance levels; set conductance_range and conductance_levels.")
        return self.level_values(torch.arange(self._levels, device=device), dtype)

    def level_values(self, index: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """The nominal conductance of level ``index`` (int64, each in ``[0, L)``), on ``index``'s device.

        Level ``i`` of ``L`` lies at the fraction ``t = i / (L - 1)`` of the range: ``g_min + (g_max -
        g_min) t`` (linear) or ``g_min (g_max / g_min)^t`` (log), computed in float64, with ``g_min`` and
        ``g_max`` exact. Only the levels asked for are computed, so a ladder of 10^9 levels costs
        nothing beyond ``index``'s own size.
        """
        if self._range is None or self._levels is None:
            raise ConfigError("the devices have no conductance levels; set conductance_range and conductance_levels.")
        low, high = self._range
        top = self._levels - 1
        t = index.to(torch.float64).div_(top)
        values = t.mul_(high - low).add_(low) if self._spacing == "linear" else torch.pow(high / low, t).mul_(low)
        values = torch.where(index == 0, low, torch.where(index == top, high, values))
        return values.to(dtype=dtype)

    def level_index(self, conductance: torch.Tensor) -> torch.Tensor:
        """Index (int64) of the level nearest to each conductance (>= 0), after the clipping to the range."""
        if self._range is None or self._levels is None:
            raise ConfigError("the devices have no conductance levels; set conductance_range and conductance_levels.")
        low, high = self._range
        top = self._levels - 1
        clipped = conductance.clamp(low, high)
        if self._spacing == "linear":
            position = clipped.sub_(low).mul_(top / (high - low))
        else:
            position = clipped.div_(low).log_().mul_(top / math.log(high / low))
        return position.round_().clamp_(0, top).long()

    def nominal(self, conductance: torch.Tensor) -> torch.Tensor:
        """The nominal conductance of devices programmed to ``conductance`` (>= 0): clipped, then on a level."""
        if self._range is None:
            return conductance
        if self._levels is None:
            return conductance.clamp(*self._range)
        return self.level_values(self.level_index(conductance), conductance.dtype)

    def factors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """Each device's spread factor ``exp(s z)`` for ``(W, v_bias, h_bias)``; None without spread."""
        if self._variability == 0 or self.spread is None:
            return None
        if self._factors is None or self._factors[0] != self._generation:
            W, a, b = (torch.exp(self._variability * z) for z in self.spread)
            self._factors = (self._generation, (W, a, b))
        return self._factors[1]

    def _device(self, programmed: torch.Tensor, supply: float, factor: torch.Tensor | None) -> torch.Tensor:
        magnitude = programmed.abs()
        conductance = self.nominal(magnitude if supply == 1.0 else magnitude.div_(supply))
        if factor is not None:
            conductance = conductance * factor
        if supply != 1.0:
            conductance.mul_(supply)
        return conductance.copysign_(programmed)

    def realise(
        self, W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, *, g_v: float, g_h: float
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``sign(p) * nominal(|p|/g) * exp(s z) * g`` for every parameter ``p`` (``g`` = 1 for weights)."""
        if not self.realising:
            return W, v_bias, h_bias
        factors = self.factors() or (None, None, None)
        return (self._device(W, 1.0, factors[0]), self._device(v_bias, g_v, factors[1]),
                self._device(h_bias, g_h, factors[2]))

    def key(self) -> Hashable:
        return ("devices", self._generation)

    def comparator_offsets(self, forward: bool) -> torch.Tensor | None:
        if self._comparator_offset == 0 or self.offset_draws is None:
            return None
        return self.offset_draws[1 if forward else 0] * self._comparator_offset

    def write(self, params: tuple[torch.Tensor, ...], step: Callable[[], None]) -> None:
        """Apply ``step``, then turn each parameter's change ``d`` into ``d (1 + write_noise xi)``."""
        if self.write_noise == 0:
            step()
            return
        before = [p.clone() for p in params]
        step()
        for p, old in zip(params, before):
            noise = torch.randn(p.shape, generator=self.host.generator, dtype=p.dtype, device=p.device)
            p.addcmul_(p - old, noise, value=self.write_noise)

    # ------------------------------------------------------------ state I/O
    def state_dict(self) -> dict[str, torch.Tensor]:
        """The spread's and the offsets' standard normal draws, where they were made."""
        tensors: dict[str, torch.Tensor] = {}
        if self.spread is not None:
            tensors.update(zip(_SPREAD, self.spread))
        if self.offset_draws is not None:
            tensors.update(zip(_OFFSETS, self.offset_draws))
        if self.level_draws is not None:
            tensors.update(zip(_LEVELS, self.level_draws))
        return tensors

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        h = self.host
        if _SPREAD[0] in tensors:
            W, a, b = (tensors[name].to(device=h.device, dtype=h.dtype) for name in _SPREAD)
            self.spread = (W, a, b)
        if _OFFSETS[0] in tensors:
            visible, hidden = (tensors[name].to(device=h.device, dtype=h.dtype) for name in _OFFSETS)
            self.offset_draws = (visible, hidden)
        if _LEVELS[0] in tensors:
            visible, hidden = (tensors[name].to(device=h.device, dtype=h.dtype) for name in _LEVELS)
            self.level_draws = (visible, hidden)
        self._changed()

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        if self.spread is not None:
            W, a, b = (t.to(device=device, dtype=dtype) for t in self.spread)
            self.spread = (W, a, b)
        if self.offset_draws is not None:
            visible, hidden = (t.to(device=device, dtype=dtype) for t in self.offset_draws)
            self.offset_draws = (visible, hidden)
        if self.level_draws is not None:
            visible, hidden = (t.to(device=device, dtype=dtype) for t in self.level_draws)
            self.level_draws = (visible, hidden)
        self._changed()

    def __repr__(self) -> str:
        return (f"Devices(conductance_range={self._range}, conductance_levels={self._levels}, "
                f"level_spacing={self._spacing!r}, variability={self._variability}, write_noise={self.write_noise}, "
                f"comparator_offset={self._comparator_offset}, comparator_levels={self._output}, "
                f"comparator_level_spread={self._level_spread})")
