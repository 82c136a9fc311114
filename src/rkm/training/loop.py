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
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, SequentialSampler

from ..core import _checks
from ..errors import DataError
from ..io._batches import batch_rows
from .trainer import Trainer, UpdateResult

__all__ = ["fit", "batches", "exact_order", "pass_seed", "Interrupt", "Callback"]

Callback = Callable[[UpdateResult], None]


def pass_seed(seed: int, pass_index: int) -> int:
    """Seed of the shuffling of pass ``pass_index`` over an array: a pure function, so resumes repeat it."""
    return (int(seed) * 1_000_003 + int(pass_index) * 7919 + 12345) % (2**63)


def _is_array(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def exact_order(data: Any) -> bool:
    """Whether an iterable of batches gives, after a resume, the batches an uninterrupted run would get.

    True for a DataLoader over a map-style dataset with sequential sampling (``shuffle=False``)
    and for other re-iterable objects with a length (a list of batches), which are assumed to
    give the same batches on every pass. False for a shuffling DataLoader (its order comes
    from a generator whose state a save point does not hold), one over an ``IterableDataset``,
    and iterables without a length (they cannot be positioned).
    """
    if isinstance(data, DataLoader):
        if isinstance(data.dataset, IterableDataset):
            return False
        sampler = getattr(data.batch_sampler, "sampler", None) if data.batch_sampler is not None else data.sampler
        return isinstance(sampler, SequentialSampler)
    return isinstance(data, Sized) and not isinstance(data, Iterator)


def batches(data: Any, *, n_visible: int, batch_size: int, epoch: int, seed: int, dtype: torch.dtype,
            device: torch.device, values: str = "binary") -> Iterator[torch.Tensor]:
    """Endless mini-batches from ``data``, positioned at update ``epoch``.

    ``values`` says what the data may hold (``rkm.core._checks.VALUES``): an array is checked
    once, each batch of an iterable when it is drawn; other values are a DataError that says
    how to binarise them.

    Arrays and tensors are shuffled per pass with :func:`pass_seed`, so a resumed run gets
    exactly the batches of an uninterrupted one. Other iterables (a DataLoader, a list of
    batches) are iterated again and again, the batches already consumed in the current pass
    skipped on resume when the iterable has a length; a resume is exact only when
    :func:`exact_order` holds, and a RuntimeWarning says so once when it does not.
    """
    if _is_array(data):
        X = _checks.batch(data, n_visible, "train_data", dtype, device)[0]
        _checks.data_values(X, "train_data", values)  # now, before the first batch is asked for
        return _shuffled(X, batch_size, epoch, seed)
    return _iterated(data, n_visible=n_visible, epoch=epoch, dtype=dtype, device=device, values=values)


def _shuffled(X: torch.Tensor, batch_size: int, epoch: int, seed: int) -> Iterator[torch.Tensor]:
    n = X.shape[0]
    per_pass = math.ceil(n / batch_size)
    pass_index, position = divmod(epoch, per_pass)
    while True:
        g = torch.Generator().manual_seed(pass_seed(seed, pass_index))
        order = torch.randperm(n, generator=g).to(X.device)
        for i in range(position, per_pass):
            yield X[order[i * batch_size : (i + 1) * batch_size]]
        position, pass_index = 0, pass_index + 1


def _iterated(data: Any, *, n_visible: int, epoch: int, dtype: torch.dtype, device: torch.device,
              values: str) -> Iterator[torch.Tensor]:
    if not isinstance(data, Iterable) or isinstance(data, (str, bytes, dict)):
        raise DataError(f"train_data must be a DataLoader, an iterable of batches, a tensor or an array, "
                        f"got {type(data).__name__}.")
    if epoch > 0 and not exact_order(data):
        warnings.warn(f"resuming at update {epoch} with a {type(data).__name__} whose batch order cannot be "
                      "reproduced (shuffled, iterable-style or without a length): training continues, but not "
                      "bit for bit as an uninterrupted run would. Pass the data as an array or tensor for exact "
                      "resumes.", RuntimeWarning, stacklevel=2)
    skip = epoch % len(data) if isinstance(data, Sized) and len(data) > 0 else 0
    while True:
        produced = 0
        for i, item in enumerate(data):
            if i < skip:
                continue
            produced += 1
            batch = _checks.batch(batch_rows(item), n_visible, "a training batch", dtype, device)[0]
            _checks.data_values(batch, f"the training batch {i} of the pass", values)
            yield batch
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
