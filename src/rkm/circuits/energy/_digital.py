"""The digital RBM of the energy study: its operations on a batch in torch, and their timing."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import torch

from ...core import comparators

__all__ = ["DigitalRBM", "time_call"]


class DigitalRBM:
    """The plain RBM's operations on a batch, as a digital computer runs them (torch).

    Parameters
    ----------
    W, v_bias, h_bias : Tensor
        Parameters, on the device and in the dtype to time (W is (n_hidden, n_visible)).
    batch : int
        Samples per call.
    generator : torch.Generator
        On the same device; draws the start states and every Bernoulli sample.
    k : int
        Gibbs steps of :meth:`update`.
    lr : float
        Learning rate of :meth:`update`.
    """

    def __init__(
        self,
        W: torch.Tensor,
        v_bias: torch.Tensor,
        h_bias: torch.Tensor,
        batch: int,
        generator: torch.Generator,
        k: int = 1,
        lr: float = 1e-3,
    ) -> None:
        self.W, self.a, self.b, self.g, self.k, self.lr = W, v_bias, h_bias, generator, k, lr
        shape = (batch, W.shape[1])
        self.v_data = comparators.random_binary(shape, generator, W.dtype, W.device)
        self.chains = comparators.random_binary(shape, generator, W.dtype, W.device)

    def _sample(self, bias: torch.Tensor, clamped: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(bias, clamped, weights)
        return comparators.binarise(comparators.Bernoulli(), x, 1.0, self.g)[1]

    def up(self, v: torch.Tensor) -> torch.Tensor:
        """Hidden sample given ``v``: ``h ~ Bernoulli(sigmoid(v W^T + b))``."""
        return self._sample(self.b, v, self.W.t())

    def down(self, h: torch.Tensor) -> torch.Tensor:
        """Visible sample given ``h``: ``v ~ Bernoulli(sigmoid(h W + a))``."""
        return self._sample(self.a, h, self.W)

    def forward_pass(self) -> torch.Tensor:
        """One forward pass on the batch."""
        return self.up(self.v_data)

    def gibbs_step(self) -> torch.Tensor:
        """One Gibbs step v -> h -> v on the batch."""
        return self.down(self.up(self.v_data))

    def update(self) -> None:
        """One PCD-k update: positive pass, k chain steps, contrastive products, SGD step."""
        n = self.v_data.shape[0]
        h_data = self.up(self.v_data)
        h = self.up(self.chains)
        v = self.down(h)
        for _ in range(self.k - 1):
            h = self.up(v)
            v = self.down(h)
        self.chains = v
        self.W.addmm_(h_data.t(), self.v_data, alpha=self.lr / n).addmm_(h.t(), v, alpha=-self.lr / n)
        self.a.add_(self.v_data.mean(0) - v.mean(0), alpha=self.lr)
        self.b.add_(h_data.mean(0) - h.mean(0), alpha=self.lr)

    def operation(self, name: str) -> Callable[[], object]:
        """The method that runs operation ``name`` (one of :data:`OPERATIONS`)."""
        return {"pass": self.forward_pass, "gibbs": self.gibbs_step, "update": self.update}[name]


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_call(fn: Callable[[], object], *, threads: int = 1, min_time_s: float = 0.2, warmup: int = 3) -> dict:
    """Median and quartiles of the duration of ``fn()`` with ``torch.utils.benchmark.Timer``.

    ``warmup`` calls run first; the timer then picks a block size and times blocks for at
    least ``min_time_s``, synchronising the accelerator around each block.

    Returns
    -------
    dict
        ``time_s`` (median per call), ``time_q1_s``, ``time_q3_s`` and ``timing_blocks``.
    """
    from torch.utils.benchmark import Timer

    with torch_threads(threads):
        for _ in range(warmup):
            fn()
    measurement = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(min_run_time=min_time_s)
    q1, q3 = np.percentile(measurement.times, [25, 75])
    return {
        "time_s": measurement.median,
        "time_q1_s": float(q1),
        "time_q3_s": float(q3),
        "timing_blocks": len(measurement.times),
    }
