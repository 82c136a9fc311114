"""Monitoring that never changes a training trajectory: its random draws come from a generator of their own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ..evaluation import metrics
from .loop import pass_seed


@contextlib.contextmanager
def evaluation_rng(model: Any) -> Iterator[None]:
    """Within the block, ``model`` draws from a generator seeded by its seed and update, then gets its own back."""
    saved = model.generator
    model.generator = torch.Generator(device=model.device).manual_seed(pass_seed(model.seed, -1 - model.epoch))
    try:
        yield
    finally:
        model.generator = saved


def monitored_error(model: Any, v: Any, k: int = 1) -> float:
    """Reconstruction error (:func:`rkm.evaluation.metrics.reconstruction_error`) drawn under :func:`evaluation_rng`."""
    with evaluation_rng(model):
        return metrics.reconstruction_error(model, v, k)
