"""The trainer: one gradient update of a :class:`~rkm.core.network.Network`, with its state.

:meth:`Trainer.update` runs, with every pass's power accounted for:

1. the positive phase: the data ``v`` clamped, a hidden sample ``h`` (forward pass);
2. the negative phase of ``train_algo`` (:mod:`rkm.training.phases`);
3. the contrastive statistics (the products of the samples, or each edge's local rule in the twin
   networks, :mod:`rkm.training.local`, by ``learning_rule``) and the step
   (:mod:`rkm.training.optim`): centering, L2, L1, the optimiser, clipping;
4. the check that nothing became NaN or inf (:mod:`rkm.training._finite`), before the update is
   counted and its callbacks run.

It returns what the update measured (:class:`UpdateResult`) and keeps the training state: the
update counter ``epoch`` (pyrkm's name), the cumulative ``energy`` (float64), the last update's
``power_f``/``power_b``, the sums that give the energy in joules (``settled``: power x the
direction's slowest relaxation time, and the comparator ``decisions``, both counted from update
``settled_since``, 0 unless the model was resumed from an older save point; see ``rkm.core.units``), the
duration of the updates on twin networks (``circuit_time``: the clamped twin runs the data pass
while the free twin runs the negative phase, so an update lasts the slower twin's passes; and
``sequential_time``, one network running both one after the other, both in samples x the
direction's slowest relaxation time), the programming pulses (``pulses``, and ``pulsed_updates``,
the updates that sent any), the negative phases' chains, the optimisers' moments and the
centering offsets. The settings (``k``, ``lr``, ``train_algo``...) are plain attributes, taken as
validated (the model's facade checks them, see ``rkm.hyperparams``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ..core import _products
from ..core.network import Network
from ..errors import ConfigError
from . import local, optim, phases
from ._accounting import PassRecorder
from ._finite import check_update, step_overflow

__all__ = ["Trainer", "UpdateResult"]

Transform = Callable[[optim.Gradient, tuple[torch.Tensor, ...]], None]
"""A piece that modifies a gradient in place before the optimiser, given the parameters."""


@dataclass(frozen=True)
class UpdateResult:
    """What one update measured: its number, its power per direction and the energy it dissipated."""

    update: int
    power_f: torch.Tensor
    power_b: torch.Tensor
    energy: torch.Tensor


class Trainer:
    """Gradient updates of ``network`` and the state they carry.

    Parameters
    ----------
    network : Network
    k, lr, max_epochs, optimizer, regularization, l1_factor, l2_factor, batch_size, train_algo,
    centering, n_chains, n_temperatures, pt_beta_ratio, learning_rule, pulse_step, pulse_step_unit,
    pulse_dead_zone
        As the model's constructor arguments of the same names (``rkm.RBM``).
    average_data : Tensor, optional
        The data mean: the centering offset's start.
    after_step : callable, optional
        Keeps the parameters in range after a step (default: ``network.clip``).
    """

    def __init__(self, network: Network, *, k: int, lr: float, max_epochs: int, optimizer: str,
                 regularization: object, l1_factor: float, l2_factor: float, batch_size: int, train_algo: str,
                 centering: bool, n_temperatures: int, pt_beta_ratio: float, n_chains: int | None = None,
                 learning_rule: str = "algorithmic", pulse_step: float = 0.01, pulse_step_unit: str = "absolute",
                 pulse_dead_zone: float = 0.0, average_data: torch.Tensor | None = None,
                 after_step: Callable[[], None] | None = None) -> None:
        self.network = network
        self.k, self.lr, self.max_epochs, self.batch_size = k, lr, max_epochs, batch_size
        self.optimizer, self.regularization = optimizer, regularization
        self.l1_factor, self.l2_factor = l1_factor, l2_factor
        self.train_algo, self.centering, self.n_chains = train_algo, centering, n_chains
        self.n_temperatures, self.pt_beta_ratio = n_temperatures, pt_beta_ratio
        self.learning_rule, self.pulse_step, self.pulse_step_unit = learning_rule, pulse_step, pulse_step_unit
        self.pulse_dead_zone = pulse_dead_zone
        self.after_step = network.clip if after_step is None else after_step
        self.epoch = 0
        zero = torch.zeros((), dtype=torch.float64, device=network.device)
        self.energy, self.power_f, self.power_b = zero.clone(), zero.clone(), zero.clone()
        self.settled, self.decisions, self.settled_since = zero.clone(), 0, 0
        self.circuit_time, self.sequential_time = zero.clone(), zero.clone()
        self.pulses, self.pulsed_updates = 0, 0
        self.last_pulses: int | None = None
        """Programming pulses of the last update; None before one, or when the optimiser sends none."""
        self._phases: dict[str, phases.NegativePhase] = {}
        self._optimizers: dict[str, optim.Optimizer] = {}
        self.centering_state = None if average_data is None or not centering else optim.Centering(
            average_data, network.n_hidden)
        if optimizer == "Adam":
            adam = self.optimizer_state
            assert isinstance(adam, optim.Adam)
            adam.init_state(network.parameters())
        self.phase.init_state(network, self.chains, **self.phase_settings())

    # ---------------------------------------------------------------- state
    @property
    def chains(self) -> int:
        """Number of model chains: ``n_chains``, or ``batch_size`` when it is unset."""
        return self.batch_size if self.n_chains is None else self.n_chains

    def phase_settings(self) -> dict[str, Any]:
        """The settings the negative phase of ``train_algo`` reads (its ``settings``), by name."""
        return {name: getattr(self, name) for name in self.phase.settings}

    def phase_named(self, name: str) -> phases.NegativePhase:
        """The negative phase registered as ``name``, with its chain state (made on first use)."""
        if name not in self._phases:
            self._phases[name] = phases.PHASES[name]()
        return self._phases[name]

    def optimizer_named(self, name: str) -> optim.Optimizer:
        """The optimiser registered as ``name``, with its state (made on first use)."""
        if name not in self._optimizers:
            self._optimizers[name] = optim.OPTIMIZERS[name]()
        return self._optimizers[name]

    @property
    def phase(self) -> phases.NegativePhase:
        """The negative phase of ``train_algo``."""
        return self.phase_named(self.train_algo)

    @property
    def optimizer_state(self) -> optim.Optimizer:
        """The optimiser of ``optimizer``."""
        return self.optimizer_named(self.optimizer)

    def check(self) -> None:
        """Raise a ConfigError if the settings ask for state the trainer cannot have (centering without a mean)."""
        self.transforms()

    def transforms(self) -> list[Transform]:
        """The pieces that modify the step before the optimiser: centering, L2, L1."""
        pieces: list[Transform] = []
        if self.centering:
            if self.centering_state is None:
                raise ConfigError("centering was switched on after construction; construct the model with "
                                  "centering=True and average_data.")
            pieces.append(self.centering_state)
        terms = optim.regularization_terms(self.regularization)
        if "l2" in terms:
            pieces.append(optim.L2(self.l2_factor))
        if "l1" in terms:
            pieces.append(optim.L1(self.l1_factor))
        return pieces

    # --------------------------------------------------------------- update
    def update(self, v_data: torch.Tensor) -> UpdateResult:
        """One gradient update on the batch ``v_data`` (on the network's device and dtype)."""
        network = self.network
        recorder = PassRecorder(network, network.model_beta)
        pieces = self.transforms()
        # the int8 statistics need 0/1 data; the check also spares the data passes a square
        counting = not self.centering and network.fast_matmul is not False and v_data.device.type == "cpu"
        data_binary = counting and _products.is_binary(v_data)
        h_data = recorder.forward(v_data, binary=data_binary)
        recorder.twin = 1  # the free twin runs the negative phase
        v_model, h_model = self.phase.sample(recorder, v_data, k=self.k, n_chains=self.chains,
                                             data_binary=data_binary, **self.phase_settings())
        offsets = None
        if self.centering and self.centering_state is not None:
            offsets = self.centering_state.slide(v_data, h_data)
        if self.learning_rule == "local":
            grad = local.local_gradient(network, v_data, h_data, v_model, h_model, offsets)
        else:
            counts = _products.binary_counts(h_data, v_data, h_model, v_model) if data_binary else None
            grad = optim.Gradient(v_data, h_data, v_model, h_model, offsets=offsets, counts=counts,
                                  fast=network.uses_fast_matmul)
        self.apply(grad, pieces)
        measured = recorder.close()
        check_update(network, measured, self.epoch + 1, self.lr)
        self.power_f, self.power_b = measured.power_f, measured.power_b
        self.energy += measured.energy_f
        self.energy += measured.energy_b
        self.settled += measured.settled
        self.decisions += measured.decisions
        clamped, free = measured.twin_times
        self.circuit_time += torch.maximum(clamped, free)
        self.sequential_time += clamped + free
        self.last_pulses = self.optimizer_state.pulses
        if self.last_pulses is not None:
            self.pulses += self.last_pulses
            self.pulsed_updates += self.last_pulses > 0
        self.epoch += 1
        return UpdateResult(self.epoch, measured.power_f, measured.power_b, measured.energy_f + measured.energy_b)

    def apply(self, grad: optim.Gradient, pieces: list[Transform] | None = None, optimizer: str | None = None,
              t: int | None = None) -> None:
        """Step the parameters along ``grad``: the transforms, the optimiser (step ``t``, default
        ``epoch + 1``) as a write of the devices (``network.devices.write``: write noise), then
        ``after_step`` (clipping)."""
        params = self.network.parameters()
        for piece in self.transforms() if pieces is None else pieces:
            piece(grad, params)
        chosen = self.optimizer_named(self.optimizer if optimizer is None else optimizer)
        step = self.epoch + 1 if t is None else int(t)
        settings = {name: getattr(self, name) for name in chosen.settings}
        with step_overflow(self.epoch + 1, self.lr, self.network.dtype):
            self.network.devices.write(params, lambda: chosen.step(grad, params, self.lr, step, **settings))
        self.after_step()

    def derivatives(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batch-averaged energy derivatives ``(-mean (h - oh)(v - ov)^T, -mean v, -mean h)``."""
        centred_v, centred_h = v, h
        if self.centering_state is not None:
            centred_v, centred_h = v - self.centering_state.ov, h - self.centering_state.oh
        dW = _products.mm(centred_h.t(), centred_v, self.network.uses_fast_matmul).div_(-v.shape[0])
        return dW, -v.mean(dim=0), -h.mean(dim=0)

    # ------------------------------------------------------------ state I/O
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Energy, powers, chains, moments and offsets, as CPU tensors."""
        tensors = {"energy": self.energy, "power_f": self.power_f, "power_b": self.power_b,
                   "energy_settled": self.settled, "comparator_decisions": torch.tensor(self.decisions),
                   "energy_settled_since": torch.tensor(self.settled_since), "circuit_time": self.circuit_time,
                   "sequential_time": self.sequential_time, "programming_pulses": torch.tensor(self.pulses),
                   "pulsed_updates": torch.tensor(self.pulsed_updates)}
        tensors.update(self.phase.state_dict())
        tensors.update(self.optimizer_state.state_dict())
        if self.centering_state is not None:
            tensors.update(self.centering_state.state_dict())
        return {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], epoch: int) -> None:
        """Restore :meth:`state_dict` at update ``epoch``.

        Save points written before rkm recorded ``energy_settled``, or the circuit time and the
        pulses, start all these sums at 0 from their update (``settled_since``): the energy in
        joules and the duration of the updates before them are unknown.
        """
        device, dtype = self.network.device, self.network.dtype
        kept = ("energy", "power_f", "power_b", "energy_settled", "circuit_time", "sequential_time")
        moved = {k: v.to(device=device, dtype=dtype if k not in kept else None)
                 for k, v in tensors.items() if v.is_floating_point()}
        self.energy, self.power_f, self.power_b = moved["energy"], moved["power_f"], moved["power_b"]
        if "energy_settled" in moved and "circuit_time" in moved:
            self.settled = moved["energy_settled"]
            self.decisions = int(tensors["comparator_decisions"])
            self.settled_since = int(tensors["energy_settled_since"])
            self.circuit_time, self.sequential_time = moved["circuit_time"], moved["sequential_time"]
            self.pulses, self.pulsed_updates = int(tensors["programming_pulses"]), int(tensors["pulsed_updates"])
        else:
            zero = torch.zeros((), dtype=torch.float64, device=device)
            self.settled, self.circuit_time, self.sequential_time = zero, zero.clone(), zero.clone()
            self.decisions, self.settled_since, self.pulses, self.pulsed_updates = 0, epoch, 0, 0
        self.phase.load_state_dict({**tensors, **moved})
        self.optimizer_state.load_state_dict(moved)
        if self.centering_state is not None:
            self.centering_state.load_state_dict(moved)
        self.epoch = epoch

    def to(self, device: torch.device, dtype: torch.dtype) -> None:
        """Move the training state (energy and powers stay float64)."""
        self.energy, self.power_f, self.power_b, self.settled, self.circuit_time, self.sequential_time = (
            t.to(device) for t in (self.energy, self.power_f, self.power_b, self.settled, self.circuit_time,
                                   self.sequential_time))
        for piece in (*self._phases.values(), *self._optimizers.values(), self.centering_state):
            if piece is not None:
                piece.to(device, dtype)
