"""Callbacks of :meth:`rkm.RBM.train`: save points and the progress report.

Each is called with the :class:`~rkm.training.trainer.UpdateResult` of every update, in the
order ``train`` gives them, by :func:`rkm.training.loop.fit`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import torch

from ..io import savepoints
from ._monitor import monitored_error
from .trainer import UpdateResult

__all__ = ["SavePoints", "Reporter"]

logger = logging.getLogger("rkm.training")


class SavePoints:
    """Callback of ``train``: a save point at each update of ``model.t_to_save``."""

    def __init__(self, model: Any, folder: Any) -> None:
        self.model, self.folder, self.points = model, folder, set(model.t_to_save)

    def __call__(self, update: UpdateResult) -> None:
        if update.update in self.points:
            savepoints.save_model(self.model, self.folder)


class Reporter:
    """Callback of ``train``: every ``every`` updates, log (or show on the progress bar) the errors and powers.

    The lines go to the logger ``rkm.training`` at INFO, where pyrkm printed them; the application
    decides whether they are shown (``logging.basicConfig(level=logging.INFO)`` in a script).
    """

    def __init__(self, model: Any, every: int, print_error: bool, test: torch.Tensor | None, progress: bool) -> None:
        self.model, self.every, self.print_error, self.test = model, every, print_error, test
        self.last = time.perf_counter()
        self.batch: torch.Tensor | None = None
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=model.max_epochs, initial=model.epoch, unit="update", dynamic_ncols=True)

    def watch(self, source: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        """``source``, remembering the batch of the running update (for ``print_error``)."""
        for batch in source:
            self.batch = batch
            yield batch

    def __call__(self, update: UpdateResult) -> None:
        if self.bar is not None:
            self.bar.update(1)
        if update.update % self.every:
            return
        now = time.perf_counter()
        seconds, self.last = (now - self.last) / self.every, now
        fields: dict[str, float] = {}
        if self.print_error and self.batch is not None:
            fields["train-err"] = monitored_error(self.model, self.batch)
        if self.test is not None:
            fields["test-err"] = monitored_error(self.model, self.test)
        fields["power_f"], fields["power_b"] = float(update.power_f), float(update.power_b)
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in fields.items()}, refresh=False)
            return
        parts = [f"Update: {update.update}"]
        parts += [f"{name} {fields[name]:.5g}" for name in ("test-err", "train-err") if name in fields]
        parts.append(f"time: {seconds:f}")
        logger.info(" , ".join(parts))

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

