"""The training loop and its data: endless mini-batches, callbacks, Ctrl-C.

:func:`fit` knows nothing of files or logs: it draws batches, runs :meth:`Trainer.update`, and
hands each :class:`~rkm.training.trainer.UpdateResult` to the callbacks in order (save points,
metrics logs, learning-rate schedules, progress bars arrive this way). The first Ctrl-C lets
the running update and its callbacks finish, calls ``on_interrupt`` (a save point, say) and
raises :class:`KeyboardInterrupt`.
"""

from __future__ import annotations

import math
import signal
import threading
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import numpy as np
import torch

from .. import checks
from ..batches import batch_rows
from ..errors import DataError
from .trainer import Trainer, UpdateResult

Callback = Callable[[UpdateResult], None]


def pass_seed(seed: int, pass_index: int) -> int:
    """Seed of the shuffling of pass ``pass_index`` over an array: a pure function, so resumes repeat it."""
    return (int(seed) * 1_000_003 + int(pass_index) * 7919 + 12345) % (2**63)


def _is_array(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def batches(data: Any, *, n_visible: int, batch_size: int, epoch: int, seed: int, dtype: torch.dtype,
            device: torch.device) -> Iterator[torch.Tensor]:
    """Endless mini-batches from ``data``, positioned at update ``epoch``.

    Arrays and tensors are shuffled per pass with :func:`pass_seed`; other iterables (a
    DataLoader, a list of batches) are iterated again and again, the batches already consumed
    in the current pass skipped on resume when the iterable has a length.
    """
    if _is_array(data):
        X = checks.batch(data, n_visible, "train_data", dtype, device)[0]
        n = X.shape[0]
        per_pass = math.ceil(n / batch_size)
        pass_index, position = divmod(epoch, per_pass)
        while True:
            g = torch.Generator().manual_seed(pass_seed(seed, pass_index))
            order = torch.randperm(n, generator=g).to(X.device)
            for i in range(position, per_pass):
                yield X[order[i * batch_size : (i + 1) * batch_size]]
            position, pass_index = 0, pass_index + 1
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes, dict)):
        raise DataError(f"train_data must be a DataLoader, an iterable of batches, a tensor or an array, "
                        f"got {type(data).__name__}.")
    skip = epoch % len(data) if isinstance(data, Sized) and len(data) > 0 else 0
    while True:
        produced = 0
        for i, item in enumerate(data):
            if i < skip:
                continue
            produced += 1
            yield checks.batch(batch_rows(item), n_visible, "a training batch", dtype, device)[0]
        if produced == 0:
            raise DataError("train_data yielded no batches; pass a re-iterable (a DataLoader, a list) or an array.")
        skip = 0


class Interrupt:
    """First Ctrl-C: remember it (the loop finishes the running update); a second one raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> Interrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def fit(trainer: Trainer, source: Iterator[torch.Tensor], callbacks: list[Callback],
        on_interrupt: Callable[[], None] | None = None) -> None:
    """Update ``trainer`` on batches from ``source`` until ``trainer.epoch`` reaches ``trainer.max_epochs``.

    After each update every callback gets its :class:`UpdateResult`, in order. On Ctrl-C the
    running update and its callbacks finish, then ``on_interrupt()`` runs and KeyboardInterrupt
    is raised.
    """
    with Interrupt() as interrupt:
        while trainer.epoch < trainer.max_epochs:
            result = trainer.update(next(source))
            for callback in callbacks:
                callback(result)
            if interrupt.requested:
                if on_interrupt is not None:
                    on_interrupt()
                raise KeyboardInterrupt
