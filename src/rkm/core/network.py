"""The physical core: a resistor network with comparators, its parameters and its passes.

A :class:`Network` holds what the circuit is: the programmed parameters ``W`` (n_hidden,
n_visible), ``v_bias``, ``h_bias``; the supplies ``g_v``, ``g_h`` and the offset ``c``; the
energy type and layer scaling; the comparator; the device non-ideality; the random generator.
It keeps one physics cache: the realised parameters and both directions' pass constants
(:func:`rkm.core.physics.layer_physics`), rebuilt whenever a parameter, a supply or the
non-ideality changes (in-place edits included, through the tensors' version counters).

A pass clamps one layer and lets the other float: :meth:`Network.pass_` returns the
comparator's P(unit = 1), the binary sample and, when asked, twice the power of each
sample's pass (less the direction's constant, see :func:`rkm.core.physics.twice_pass_power`).

``energy_type='RKM'`` drives the comparators with the Kirchhoff node voltage (times the size
of the clamped layer when ``layer_scaled``); ``'hopfield'`` with the plain RBM field
``x @ W.T + b``. Power and relaxation times are those of the resistor network in both cases.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from ..errors import DataError
from . import _checks, _products, comparators, physics
from .devices import NonIdeality
from .physics import LayerPhysics

__all__ = ["Network", "Pass", "Physics", "ENERGY_TYPES", "FOLD_MIN_BETA"]

ENERGY_TYPES = ("RKM", "hopfield")
FOLD_MIN_BETA = 1e-6
"""The least inverse temperature a pass folds into the comparator input's per-node factor: below
it the power would be formed from comparator inputs near underflow and multiplied by ``1/beta``."""


class Pass(NamedTuple):
    """One clamped pass: P(unit = 1), the 0/1 sample, and twice the power per sample (or None)."""

    p: torch.Tensor
    s: torch.Tensor
    twice_power: torch.Tensor | None


@dataclass(frozen=True)
class Physics:
    """The physics cache: realised parameters and the constants of both pass directions."""

    W: torch.Tensor
    v_bias: torch.Tensor
    h_bias: torch.Tensor
    forward: LayerPhysics
    backward: LayerPhysics

    def direction(self, forward: bool) -> LayerPhysics:
        """Constants of the forward (hidden free) or backward (visible free) pass."""
        return self.forward if forward else self.backward


class Network:
    """The resistor network of an RBM/RKM. Settings are taken as validated (see ``rkm.hyperparams``).

    Parameters
    ----------
    n_visible, n_hidden : int
    generator : torch.Generator
        Source of every random draw (initial parameters, comparator noise).
    device : torch.device
    dtype : torch.dtype
    energy_type, g_v, g_h, offset, layer_scaled, model_beta, sampling, distribution,
    threshold_sharing, min_W, max_W, fast_matmul
        As the model's constructor arguments of the same names (``rkm.RBM``).
    devices : NonIdeality, optional
        The device model; ideal devices by default.
    """

    def __init__(self, n_visible: int, n_hidden: int, *, generator: torch.Generator, device: torch.device,
                 dtype: torch.dtype, energy_type: str, g_v: float, g_h: float, offset: float, layer_scaled: bool,
                 model_beta: float, sampling: str, distribution: str, threshold_sharing: str, min_W: float,
                 max_W: float, fast_matmul: bool | None, devices: NonIdeality | None = None) -> None:
        self.n_visible, self.n_hidden = n_visible, n_hidden
        self.generator, self.device, self.dtype = generator, device, dtype
        self.energy_type, self.g_v, self.g_h, self.offset = energy_type, g_v, g_h, offset
        self.layer_scaled, self.model_beta = layer_scaled, model_beta
        self.sampling, self.distribution, self.threshold_sharing = sampling, distribution, threshold_sharing
        self.min_W, self.max_W = min_W, max_W
        self.devices = NonIdeality() if devices is None else devices
        self.fast_matmul = fast_matmul
        self._comparator: tuple[tuple[str, str, str], comparators.Comparator] | None = None
        self._cache: tuple[tuple, Physics] | None = None

    def initialise(self, average_data: torch.Tensor | None) -> None:
        """Random weights N(0, 0.01/n_visible), visible bias at ``average_data`` (or N(0, 1)), zero hidden bias."""
        g, dtype, device = self.generator, self.dtype, self.device
        scale = 0.1 / math.sqrt(self.n_visible)
        self.W = torch.randn((self.n_hidden, self.n_visible), generator=g, dtype=dtype, device=device) * scale
        if average_data is not None:
            self.v_bias = average_data.clone()
        else:
            self.v_bias = torch.randn((self.n_visible,), generator=g, dtype=dtype, device=device)
        self.h_bias = torch.zeros((self.n_hidden,), dtype=dtype, device=device)
        self.clip()

    # ------------------------------------------------------------ parameters
    def _parameter(self, value: Any, shape: tuple[int, ...], name: str) -> torch.Tensor:
        return _checks.parameter(name, value, shape, self.dtype, self.device)

    @property
    def W(self) -> torch.Tensor:
        """Programmed weights, shape (n_hidden, n_visible)."""
        return self._W

    @W.setter
    def W(self, value: Any) -> None:
        self._W = self._parameter(value, (self.n_hidden, self.n_visible), "W")

    @property
    def v_bias(self) -> torch.Tensor:
        """Programmed visible bias, shape (n_visible,)."""
        return self._v_bias

    @v_bias.setter
    def v_bias(self, value: Any) -> None:
        self._v_bias = self._parameter(value, (self.n_visible,), "v_bias")

    @property
    def h_bias(self) -> torch.Tensor:
        """Programmed hidden bias, shape (n_hidden,)."""
        return self._h_bias

    @h_bias.setter
    def h_bias(self, value: Any) -> None:
        self._h_bias = self._parameter(value, (self.n_hidden,), "h_bias")

    def parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The programmed ``(W, v_bias, h_bias)``, the tensors the learning rule steps in place."""
        return self._W, self._v_bias, self._h_bias

    @property
    def fast_matmul(self) -> bool | None:
        """The fast-product setting; ``uses_fast_matmul`` says whether it is in effect (``rkm.core._products``)."""
        return self._fast_matmul

    @fast_matmul.setter
    def fast_matmul(self, value: bool | None) -> None:
        self.uses_fast_matmul = _products.resolve(value, self.device, self.dtype)
        self._fast_matmul = value

    @property
    def comparator(self) -> comparators.Comparator:
        """The comparator of the current ``sampling``, ``distribution`` and ``threshold_sharing``."""
        key = (self.sampling, self.distribution, self.threshold_sharing)
        if self._comparator is None or self._comparator[0] != key:
            self._comparator = (key, comparators.make(*key))
        return self._comparator[1]

    def clip_weights(self) -> None:
        """Clip ``W`` to [min_W, max_W] in place."""
        self._W.clamp_(self.min_W, self.max_W)

    def clip_bias(self) -> None:
        """Clip both biases to [min_W, max_W] in place."""
        self._v_bias.clamp_(self.min_W, self.max_W)
        self._h_bias.clamp_(self.min_W, self.max_W)

    def clip(self) -> None:
        """Clip every parameter to [min_W, max_W] in place."""
        self.clip_weights()
        self.clip_bias()

    # --------------------------------------------------------------- physics
    def _key(self) -> tuple[Hashable, ...]:
        W, a, b = self._W, self._v_bias, self._h_bias
        return (W, W._version, a, a._version, b, b._version, self.g_v, self.g_h, self.offset, self.devices.key())

    def physics(self, check: bool = True) -> Physics:
        """The realised parameters and pass constants, recomputed whenever something they depend on changed.

        ``check`` raises a DataError when a parameter is NaN or inf.
        """
        key, cached = self._key(), self._cache
        if cached is None or any(x is not y and (isinstance(x, torch.Tensor) or x != y)
                                 for x, y in zip(key, cached[0])):
            W, a, b = self.devices.realise(self._W, self._v_bias, self._h_bias, g_v=self.g_v, g_h=self.g_h)
            forward, backward = physics.layer_physics(W, a, b, self.g_v, self.g_h, self.offset)
            if check and not all(
                _checks.all_finite(t) for t in (forward.conductance, backward.conductance,
                                               forward.effective_bias, backward.effective_bias)
            ):
                raise DataError("the model parameters contain NaN or inf (W, v_bias or h_bias); "
                                "reinitialise them or load a save point.")
            cached = (key, Physics(W, a, b, forward, backward))
            self._cache = cached
        return cached[1]

    def realised_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The realised ``(W, v_bias, h_bias)`` the circuit sees (sign = terminal, magnitude = conductance)."""
        cache = self.physics(check=False)
        return cache.W, cache.v_bias, cache.h_bias

    def relaxation_times(self) -> tuple[torch.Tensor, torch.Tensor]:
        """RC relaxation times of the hidden nodes (forward pass) and the visible nodes (backward pass)."""
        cache = self.physics()
        return physics.relaxation_times(cache.forward), physics.relaxation_times(cache.backward)

    def scale(self, forward: bool) -> int:
        """Layer scaling of the comparator input: the size of the clamped layer, or 1."""
        return (self.n_visible if forward else self.n_hidden) if self.layer_scaled else 1

    # ------------------------------------------------------------ the passes
    def voltages(self, states: torch.Tensor, visible: bool) -> torch.Tensor:
        """Node voltages of a layer's units in the 0/1 ``states`` (a value x in [0, 1] sits at
        ``V_low + (V_high - V_low) x``): the comparators' output levels (``devices.output_levels``);
        ``states`` itself for ideal comparators."""
        levels = self.devices.output_levels(visible)
        if levels is None:
            return states
        low, high = levels
        return torch.addcmul(low, states, high - low)

    def numerator(self, clamped: torch.Tensor, forward: bool) -> tuple[torch.Tensor, LayerPhysics]:
        """Kirchhoff numerator ``V(clamped) @ W.T + b_eff`` of the free layer, and the pass constants
        (``V``: :meth:`voltages`)."""
        return self._numerator(self.voltages(clamped, forward), forward)

    def power(self, clamped: torch.Tensor, forward: bool) -> torch.Tensor:
        """Power dissipated by each sample's pass with the layer ``clamped`` (0/1 states), shape (batch,)."""
        volts = self.voltages(clamped, forward)
        return physics.pass_power(volts, *self._numerator(volts, forward))

    def _numerator(self, volts: torch.Tensor, forward: bool) -> tuple[torch.Tensor, LayerPhysics]:
        cache = self.physics(check=False)
        phys = cache.direction(forward)
        W = cache.W.t() if forward else cache.W
        return _products.addmm(phys.effective_bias, volts, W, self.uses_fast_matmul), phys

    def drive(self, clamped: torch.Tensor, forward: bool, numerator: bool = False,
              gain: float = 1.0) -> tuple[torch.Tensor, torch.Tensor | None, LayerPhysics]:
        """Comparator input of the free layer times ``gain``, and the Kirchhoff numerator if asked.

        Returns ``(gain * x, num, phys)``; ``num`` is None unless ``numerator`` or the energy is RKM.
        The clamped layer sits at its node voltages (:meth:`voltages`). A comparator offset
        ``V_os`` of the devices (``devices.comparator_offsets``) is taken from the node voltage
        before the layer scaling, ``x = scale (V - V_os)``, and from the field for the hopfield
        energy.
        """
        return self._drive(self.voltages(clamped, forward), forward, numerator, gain)

    def _drive(self, volts: torch.Tensor, forward: bool, numerator: bool,
               gain: float) -> tuple[torch.Tensor, torch.Tensor | None, LayerPhysics]:
        offsets = self.devices.comparator_offsets(forward)
        if self.energy_type == "RKM":
            num, phys = self._numerator(volts, forward)
            if offsets is None:
                return num * ((gain * self.scale(forward)) * phys.inverse_conductance), num, phys
            return (num * phys.inverse_conductance).sub_(offsets).mul_(gain * self.scale(forward)), num, phys
        cache = self.physics(check=False)
        phys = cache.direction(forward)
        bias = cache.h_bias if forward else cache.v_bias
        x = _products.addmm(bias, volts, cache.W.t() if forward else cache.W, self.uses_fast_matmul)
        kirchhoff = x + (phys.effective_bias - bias) if numerator else None
        if offsets is not None:
            x.sub_(offsets)
        return (x if gain == 1.0 else x.mul_(gain)), kirchhoff, phys

    def pass_(self, clamped: torch.Tensor, forward: bool, beta: float, power: bool = False,
              binary: bool = False) -> Pass:
        """One clamped pass at inverse temperature ``beta``.

        ``power`` also returns twice each sample's power, unclipped and without the direction's
        constant (``binary``: ``clamped`` is known to be 0/1). A finite ``beta`` is folded into
        the comparator input's per-node factor, saving the comparator a full-size multiplication
        (from :data:`FOLD_MIN_BETA` on).
        """
        gain = beta if FOLD_MIN_BETA <= beta and not comparators.is_deterministic(beta) else 1.0
        volts = self.voltages(clamped, forward)
        z, num, phys = self._drive(volts, forward, numerator=power, gain=gain)
        p, s = comparators.binarise(self.comparator, z, beta / gain, self.generator)
        if not power:
            return Pass(p, s, None)
        plain = self.energy_type == "RKM" and self.devices.comparator_offsets(forward) is None
        drive = (z, 1.0 / (gain * self.scale(forward))) if plain else None
        assert num is not None
        binary = binary and volts is clamped
        return Pass(p, s, physics.twice_pass_power(volts, num, phys, binary, drive, constant=False))

    def read(self, clamped: torch.Tensor, forward: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A pass that reads the free layer's comparator inputs instead of sampling it.

        Returns the comparator inputs at unit gain (the drive :meth:`drive` forms, offsets
        included) and twice each sample's power, as :meth:`pass_` with ``power`` (``clamped``
        0/1). Draws nothing from the generator.
        """
        volts = self.voltages(clamped, forward)
        x, num, phys = self._drive(volts, forward, numerator=True, gain=1.0)
        assert num is not None
        plain = self.energy_type == "RKM" and self.devices.comparator_offsets(forward) is None
        drive = (x, 1.0 / self.scale(forward)) if plain else None
        return x, physics.twice_pass_power(volts, num, phys, volts is clamped, drive, constant=False)

    def gibbs(self, v: torch.Tensor, k: int, beta: float) -> torch.Tensor:
        """``k`` Gibbs steps v -> h -> v from ``v``; returns the last visible sample."""
        for _ in range(k):
            h = self.pass_(v, True, beta).s
            v = self.pass_(h, False, beta).s
        return v

    def random_visible(self, n: int) -> torch.Tensor:
        """``n`` fair random 0/1 visible layers."""
        return comparators.random_binary((n, self.n_visible), self.generator, self.dtype, self.device)

    def random_hidden(self, n: int) -> torch.Tensor:
        """``n`` fair random 0/1 hidden layers."""
        return comparators.random_binary((n, self.n_hidden), self.generator, self.dtype, self.device)

    # ---------------------------------------------------------------- moving
    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the parameters to ``device`` / ``dtype``; a device change reseeds a generator there from this one."""
        uses_fast = _products.resolve(self._fast_matmul, device, dtype)  # fails before anything moves
        if device != self.device:
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device).item())
            self.generator = torch.Generator(device=device).manual_seed(seed)
        self.device, self.dtype = device, dtype
        self._W, self._v_bias, self._h_bias = (t.to(device=device, dtype=dtype) for t in self.parameters())
        self.devices.to(device, dtype)
        self._cache = None
        self.uses_fast_matmul = uses_fast

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Parameters, generator state and device state, as CPU tensors."""
        tensors = {"W": self._W, "v_bias": self._v_bias, "h_bias": self._h_bias,
                   "rng_state": self.generator.get_state(), **self.devices.state_dict()}
        return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], rng: bool = True) -> None:
        """Restore :meth:`state_dict` (``rng=False`` keeps the current generator state)."""
        self.W, self.v_bias, self.h_bias = tensors["W"], tensors["v_bias"], tensors["h_bias"]
        self.devices.load_state_dict(tensors)
        if rng:
            self.generator.set_state(tensors["rng_state"])
