"""Pulse programming: each device moves by at most one fixed step per update, in the sign of its signal.

The ``pulse`` optimiser (``optimizer='pulse'``) is the Manhattan rule of memristive crossbars and
the one-tap move of a digital potentiometer: after the transforms (centering, L2, L1), each
device whose contrastive signal ``d`` (its component of the step's direction, from the
algorithmic or the local rule) lies outside the dead zone, ``|d| > pulse_dead_zone``, receives one
programming pulse in the direction of ``sign(d)``; every other device is left alone. A pulse
moves the device's conductance ``|p| / g`` (``g`` = 1 for a weight, the supply ``g_v`` or ``g_h``
for a bias) by

* one level, where the devices have ``conductance_levels``: along the ordered ladder
  ``-l_{L-1} < ... < -l_0 < +l_0 < ... < +l_{L-1}`` of the parameter's realisable values, so a
  pulse down from ``+l_0`` switches the device to the other terminal at ``-l_0``; at either end
  of the ladder the pulse is sent and the device stays;
* otherwise ``pulse_step`` (``pulse_step_unit='absolute'``, conductance in code units) or
  ``pulse_step * (g_max - g_min)`` (``'relative'``: a fraction of the conductance window, which
  needs ``conductance_range``).

The learning rate plays no part. The step runs through the devices' write (``write_noise``
makes a pulse's size vary, ``d (1 + s xi)``) and the clipping to ``[min_W, max_W]``; range,
levels and spread act on the realised conductances as for any other step. :attr:`Pulse.pulses`
counts the pulses of the last step: the devices whose signal left the dead zone.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core.network import Network
from ..errors import ConfigError
from .optim import Gradient, Optimizer, register

__all__ = ["Pulse", "PULSE_STEP_UNITS", "check"]

PULSE_STEP_UNITS = ("absolute", "relative")
"""How ``pulse_step`` is read without levels: a conductance, or a fraction of ``g_max - g_min``."""


def check(optimizer: str, pulse_step_unit: str, conductance_range: tuple[float, float] | None,
          pulse_step: float = 0.01, weight_range: tuple[float, float] = (-10.0, 10.0)) -> None:
    """Refuse pulses that are to be a fraction of a conductance window the devices do not have,
    and pulses larger than the window they move in.

    Parameters
    ----------
    optimizer : str
        The ``optimizer`` setting; only ``'pulse'`` is checked.
    pulse_step_unit : str
        The ``pulse_step_unit`` setting (:data:`PULSE_STEP_UNITS`).
    conductance_range : (float, float) or None
        The devices' ``conductance_range``.
    pulse_step : float
        The ``pulse_step`` setting (> 0).
    weight_range : (float, float)
        ``(min_W, max_W)``, the range every programmed parameter is clipped to.

    Raises
    ------
    rkm.errors.ConfigError
        ``pulse_step_unit='relative'`` without a ``conductance_range``; a relative step above 1
        (more than the whole window); an absolute step above ``max_W - min_W``.
    """
    if optimizer != Pulse.name:
        return
    if pulse_step_unit == "relative" and conductance_range is None:
        raise ConfigError("pulse_step_unit='relative' makes a pulse a fraction of the conductance window "
                          "g_max - g_min, and there is none: set conductance_range=(g_min, g_max), or use "
                          "pulse_step_unit='absolute'.", names=("pulse_step_unit", "conductance_range"))
    if pulse_step_unit == "relative" and pulse_step > 1.0:
        raise ConfigError(f"pulse_step={pulse_step:g} with pulse_step_unit='relative' is more than the whole "
                          "conductance window g_max - g_min; use a fraction in (0, 1].",
                          names=("pulse_step", "pulse_step_unit"))
    width = weight_range[1] - weight_range[0]
    if pulse_step_unit == "absolute" and not pulse_step <= width:
        raise ConfigError(f"pulse_step={pulse_step:g} is more than the whole range a parameter moves in, "
                          f"max_W - min_W = {width:g}: one pulse would jump from end to end; use a pulse_step "
                          "of at most that (a level, a small fraction of it, is usual).",
                          names=("pulse_step", "min_W", "max_W"))


@register
class Pulse(Optimizer):
    """At most one programming pulse per device and update, of fixed size, in the sign of its signal.

    The optimiser registered as ``optimizer='pulse'``; its settings are the network (for its
    devices and supplies), ``pulse_step``, ``pulse_step_unit`` and ``pulse_dead_zone``. After each
    :meth:`step`, ``pulses`` is the number of devices it pulsed.
    """

    name = "pulse"
    settings = ("network", "pulse_step", "pulse_step_unit", "pulse_dead_zone")

    def step(self, grad: Gradient, params: tuple[torch.Tensor, torch.Tensor, torch.Tensor], lr: float, t: int,
             **settings: Any) -> None:
        """Pulse every device whose signal lies outside the dead zone, in place.

        Parameters
        ----------
        grad : rkm.training.optim.Gradient
            The step's directions after the transforms; each component is a device's signal.
        params : (Tensor, Tensor, Tensor)
            ``W``, ``v_bias`` and ``h_bias``, moved in place.
        lr : float
            Not used: a pulse has a fixed size.
        t : int
            Not used.
        **settings
            ``network``, ``pulse_step``, ``pulse_step_unit``, ``pulse_dead_zone``.
        """
        network: Network = settings["network"]
        devices = network.devices
        levels = getattr(devices, "conductance_levels", None)
        size = None if levels is not None else self.step_size(network, settings["pulse_step"],
                                                                 settings["pulse_step_unit"])
        count = 0
        for param, signal, supply in zip(params, grad.directions(), (1.0, network.g_v, network.g_h)):
            fire = signal.abs() > settings["pulse_dead_zone"]
            count += int(torch.count_nonzero(fire))
            direction = torch.sign(signal).mul_(fire)
            if size is None:
                param.copy_(torch.where(fire, self.ladder(param, direction, devices, supply), param))
            else:
                param.add_(direction, alpha=size * supply)
        self.pulses = count

    @staticmethod
    def step_size(network: Network, pulse_step: float, unit: str) -> float:
        """The conductance change of one pulse without levels.

        Parameters
        ----------
        network : rkm.core.network.Network
            Its devices' ``conductance_range`` is the window of a relative step.
        pulse_step : float
            The ``pulse_step`` setting.
        unit : {'absolute', 'relative'}
            The ``pulse_step_unit`` setting.

        Returns
        -------
        float
            The step in code units of conductance.
        """
        window = getattr(network.devices, "conductance_range", None)
        check(Pulse.name, unit, window)
        if unit == "absolute" or window is None:
            return pulse_step
        return pulse_step * (window[1] - window[0])

    @staticmethod
    def ladder(param: torch.Tensor, direction: torch.Tensor, devices: Any, supply: float) -> torch.Tensor:
        """``param`` moved by ``direction`` steps along the ladder of its signed levels.

        Parameters
        ----------
        param : Tensor
            Programmed parameters (a weight matrix or a bias vector).
        direction : Tensor
            -1, 0 or +1 for each element of ``param``.
        devices : rkm.core.devices.Devices
            The devices, with ``conductance_levels`` set.
        supply : float
            1 for weights, ``g_v`` or ``g_h`` for biases (a level is a conductance ``|p| / supply``).

        Returns
        -------
        Tensor
            The moved parameters; at either end of the ladder a device stays.
        """
        top = devices.conductance_levels
        index = devices.level_index(param.abs().div_(supply))
        position = torch.where(torch.signbit(param), top - 1 - index, top + index)
        position = position.add_(direction.long()).clamp_(0, 2 * top - 1)
        positive = position >= top
        magnitude = devices.level_values(torch.where(positive, position - top, top - 1 - position), param.dtype)
        return torch.where(positive, magnitude, -magnitude).mul_(supply)
