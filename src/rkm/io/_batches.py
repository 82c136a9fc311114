"""What one training batch may be, when it comes from an iterable of batches.

``RBM.train`` iterates a DataLoader or any iterable; each item it yields is one batch:

* an array or tensor of rows, or nested lists of numbers: the batch itself;
* a tuple or list whose first item is an array or tensor of rows (2-D), as a
  DataLoader over a dataset of tensors yields (``[data]``, or ``[data, label]`` for a
  labelled one): the batch is that first item;
* a ``(row, label)`` pair, two items whose first is a 1-D array and whose second is a
  label (a number, or an array or tensor of one number): a batch of that one row;
* a list or tuple of rows (1-D arrays, tensors or lists of numbers, all the same
  length): one batch of those rows;
* a flat list or tuple of numbers: one row.

Anything else, for example rows of different lengths or a mix of rows and batches, is
ambiguous and raises a :class:`~rkm.errors.DataError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import DataError

__all__ = ["batch_rows"]


def _is_array(x: Any) -> bool:
    return isinstance(x, (torch.Tensor, np.ndarray))


def _ndim(x: Any) -> int | None:
    """Dimensions of an array, tensor or nested list of numbers; None if it is ragged or not numeric."""
    if _is_array(x):
        return x.ndim
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return arr.ndim


def _is_label(x: Any) -> bool:
    """A class label: a real number, or an array or tensor holding one."""
    if _is_array(x):
        return x.size == 1 if isinstance(x, np.ndarray) else x.numel() == 1
    return isinstance(x, (int, float, np.number)) and not isinstance(x, bool)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(x.shape) if _is_array(x) else np.shape(x)


def batch_rows(batch: Any) -> Any:
    """The rows of one training batch (see the module docstring), without copying arrays.

    Raises
    ------
    DataError
        If ``batch`` is an empty or ambiguous list or tuple.
    """
    if not isinstance(batch, (list, tuple)):
        return batch
    if len(batch) == 0:
        raise DataError("a training batch is an empty list; every batch needs at least one row.")
    first = batch[0]
    if _is_array(first) and first.ndim == 2:
        return first  # [data] or (data, label)
    if len(batch) == 2 and _is_array(first) and first.ndim == 1 and _is_label(batch[1]):
        return first[None, :] if isinstance(first, np.ndarray) else first.unsqueeze(0)  # (row, label)
    dims = [_ndim(item) for item in batch]
    if all(d == 0 for d in dims):
        return batch  # one row of numbers
    if all(d == 1 for d in dims) and len({_shape(item) for item in batch}) == 1:
        if isinstance(first, torch.Tensor) and all(isinstance(item, torch.Tensor) for item in batch):
            return torch.stack(list(batch))
        return np.stack(
            [item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else np.asarray(item) for item in batch]
        )
    raise DataError(
        f"a training batch is a {type(batch).__name__} of {len(batch)} items that is neither a list of rows "
        "of one length nor a (data, label) pair whose data is a 2-D array or tensor; pass each batch as a "
        "(batch, n_visible) array or tensor."
    )
