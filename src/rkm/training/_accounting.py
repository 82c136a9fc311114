"""Energy accounting of one update: every pass's power, reduced once at the end.

Following the reference, ``power_f`` / ``power_b`` of an update are the sum, over its forward /
backward passes, of the batch-mean power of each pass; its energy is the power of every pass
and every sample (in units of power x pass time), summed in float64. For energy in joules
(``rkm.core.units``) a pass lasts a multiple of its direction's slowest relaxation time, which
changes as the parameters learn, so each update also sums power x that time (``settled``) and
counts its comparator decisions (samples x free nodes of every pass).

Twin networks. The hardware runs an update on two copies of the network at once: the clamped
twin runs the data pass, the free twin the negative phase. The recorder counts each twin's
passes (:attr:`PassRecorder.twin`: 0 until the trainer switches it to 1 for the negative
phase) and gives each twin's duration in samples x the direction's slowest relaxation time
(``twin_times``): one network takes one sample at a time, so a pass of a batch of B lasts B
passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.network import Network


@dataclass(frozen=True)
class Measured:
    """What the passes of one update dissipated (0-d float64 tensors on the model's device)."""

    power_f: torch.Tensor
    power_b: torch.Tensor
    energy_f: torch.Tensor
    energy_b: torch.Tensor
    settled: torch.Tensor
    decisions: int
    twin_times: tuple[torch.Tensor, torch.Tensor]


class PassRecorder:
    """Runs the passes of one update at inverse temperature ``beta`` and keeps each pass's power.

    The passes hold twice their power less the direction's constant, unclipped; :meth:`close`
    adds the constant to all of a direction's passes, halves and clips them in one go. The
    constants are taken now, before the update changes the parameters.
    """

    def __init__(self, network: Network, beta: float) -> None:
        self.network, self.beta = network, beta
        self.powers: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        cache = network.physics(check=False)
        self.constants = (cache.forward.constant, cache.backward.constant)
        self.slowest = (cache.forward.slowest, cache.backward.slowest)
        self.twin = 0
        """The twin whose passes are recorded: 0 the clamped (data) twin, 1 the free (model) twin."""
        self.samples = [[0, 0], [0, 0]]
        """Samples of forward and backward passes run by each twin."""

    def forward(self, v: torch.Tensor, binary: bool = True, beta: float | None = None) -> torch.Tensor:
        """Hidden sample from ``v``; ``binary=False`` when ``v`` may not be 0/1 (data, user-set chains).

        ``beta`` is the pass's inverse temperature (default: the recorder's).
        """
        result = self.network.pass_(v, True, self.beta if beta is None else beta, power=True, binary=binary)
        assert result.twice_power is not None
        self._keep(result.twice_power, 0)
        return result.s

    def backward(self, h: torch.Tensor, beta: float | None = None) -> torch.Tensor:
        """Visible sample from the 0/1 hidden layer ``h`` (at ``beta``, default the recorder's)."""
        result = self.network.pass_(h, False, self.beta if beta is None else beta, power=True, binary=True)
        assert result.twice_power is not None
        self._keep(result.twice_power, 1)
        return result.s

    def _keep(self, twice_power: torch.Tensor, direction: int) -> None:
        self.powers[direction].append(twice_power)
        self.samples[self.twin][direction] += twice_power.shape[0]

    def gibbs(self, v: torch.Tensor, steps: int, binary: bool = True,
              beta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` >= 1 full steps v -> h -> v at ``beta``; returns the last v and the h it came from.

        ``binary`` says whether the starting ``v`` is known to be 0/1; every later state is.
        """
        h = self.forward(v, binary, beta)
        v = self.backward(h, beta)
        for _ in range(steps - 1):
            h = self.forward(v, beta=beta)
            v = self.backward(h, beta)
        return v, h

    def read(self, clamped: torch.Tensor, forward: bool) -> torch.Tensor:
        """The comparator inputs of a pass from the 0/1 layer ``clamped``, at unit gain, without a decision.

        The pass reads the free nodes' voltages (:meth:`rkm.core.network.Network.read`); it costs
        what a sampling pass costs, so its power and its decisions count like one.
        """
        x, twice_power = self.network.read(clamped, forward)
        self._keep(twice_power, 0 if forward else 1)
        return x

    def close(self) -> Measured:
        """The update's per-direction power (sum of batch means) and energy (sum over samples)."""
        out, decisions = [], 0
        for powers, constant, n_free in zip(self.powers, self.constants, self.sizes):
            power = torch.cat(powers).add_(constant).clamp_min_(0.0).mul_(0.5)
            sizes = [p.shape[0] for p in powers]
            if len(set(sizes)) == 1:
                means = power.view(len(sizes), -1).mean(dim=1, dtype=torch.float64)
            else:  # a short last data batch beside full-size chains
                means = torch.stack([part.mean(dtype=torch.float64) for part in power.split(sizes)])
            out.append((means.sum(), power.sum(dtype=torch.float64)))
            decisions += power.shape[0] * n_free
        (power_f, energy_f), (power_b, energy_b) = out
        settled = energy_f * self.slowest[0] + energy_b * self.slowest[1]
        slowest = [t.to(torch.float64) for t in self.slowest]
        clamped, free = (n_f * slowest[0] + n_b * slowest[1] for n_f, n_b in self.samples)
        return Measured(power_f, power_b, energy_f, energy_b, settled, decisions, (clamped, free))

    @property
    def sizes(self) -> tuple[int, int]:
        """Free nodes of a forward and of a backward pass."""
        return self.network.n_hidden, self.network.n_visible
