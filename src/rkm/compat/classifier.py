"""pyrkm 0.1.0's ``pyrkm.classifier``: a small CNN digit classifier and its training loop.

``SimpleClassifier`` is pyrkm's network, layer for layer (so its state dicts load);
``train_classifier`` trains it with Adam and cross-entropy and returns it with its test
accuracy in percent, as pyrkm did. Unlike pyrkm it writes nothing: pyrkm saved (and
resumed from) ``classifier_states/model_epoch_{n}.pth`` in the working directory;
save ``model.state_dict()`` yourself if you need it. Progress goes to the logger
``rkm.classifier`` instead of ``print``. Weights are initialised and batches shuffled
from torch's global generator, as in pyrkm, so ``torch.manual_seed`` repeats a run.

For FID-style features rkm uses its own shipped network (:mod:`rkm.evaluation.fid`), not this one.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, Dataset

from .. import plots
from ..core._checks import integer
from ..errors import DataError

__all__ = ["CustomDataset", "SimpleClassifier", "show_classification", "train_classifier"]

logger = logging.getLogger("rkm.classifier")

IMAGE_SIDE = 28


class CustomDataset(Dataset):
    """Samples and their labels as a torch ``Dataset``.

    Parameters
    ----------
    data : indexable
        The samples; ``data[idx]`` is one sample.
    targets : indexable
        The labels, ``targets[idx]`` for sample ``idx``.
    transform : callable, optional
        Applied to each sample when it is read.
    """

    def __init__(self, data: Any, targets: Any, transform: Callable[[Any], Any] | None = None) -> None:
        if len(data) != len(targets):
            raise DataError(f"data has {len(data)} samples but targets has {len(targets)} labels.")
        self.data = data
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> tuple[Any, Any]:
        img = self.data[idx]
        if self.transform:
            img = self.transform(img)
        return img, self.targets[idx]


class SimpleClassifier(nn.Module):
    """pyrkm's CNN for 28x28 digits: two 3x3 convolutions (32, 64) with pooling, 128 features, 10 logits.

    ``forward`` takes images of shape (N, 1, 28, 28) (or (N, 784)) and returns logits (N, 10).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2, padding=0)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, stride=1, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        x = torch.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def _labelled(pair: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` as a floating (N, 1, 28, 28) tensor and int64 labels (N,)."""
    try:
        images, labels = pair
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a pair (data, targets).") from None
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images, dtype=np.float32))
    if not x.is_floating_point():
        x = x.to(torch.float32)
    y = labels if isinstance(labels, torch.Tensor) else torch.as_tensor(np.asarray(labels))
    y = y.reshape(-1).to(torch.int64)
    if x.numel() != x.shape[0] * IMAGE_SIDE**2 or x.shape[0] == 0:
        raise DataError(f"{name} images must be 28x28, as rows of 784 or (N, 28, 28), got shape {tuple(x.shape)}.")
    if y.shape[0] != x.shape[0]:
        raise DataError(f"{name} has {x.shape[0]} images but {y.shape[0]} labels.")
    if y.min() < 0 or y.max() > 9:
        raise DataError(f"{name} labels must be digits 0 to 9, got values from {int(y.min())} to {int(y.max())}.")
    return x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE), y


def train_classifier(
    test_set: Sequence[Any],
    train_set: Sequence[Any],
    device: torch.device | str | None = None,
    batch_size: int = 64,
    learning_rate: float = 0.001,
    num_epochs: int = 5,
) -> tuple[SimpleClassifier, float]:
    """Train a :class:`SimpleClassifier` on ``train_set`` and measure it on ``test_set``.

    Parameters
    ----------
    test_set, train_set : (data, targets)
        Images (N, 784) or (N, 28, 28), tensors or arrays, and integer labels 0 to 9.
    device : torch.device or str, optional
        Default: CUDA when available, else CPU.
    batch_size : int
    learning_rate : float
        Adam's learning rate.
    num_epochs : int
        Passes over the training set.

    Returns
    -------
    model : SimpleClassifier
        In eval mode, in the dtype of the training images.
    accuracy : float
        Test accuracy in percent.
    """
    x_train, y_train = _labelled(train_set, "train_set")
    x_test, y_test = _labelled(test_set, "test_set")
    batch_size, num_epochs = integer("batch_size", batch_size), integer("num_epochs", num_epochs)
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    model = SimpleClassifier().to(device=device, dtype=x_train.dtype)
    optimizer = torch.optim.Adam(model.parameters(), lr=float(learning_rate))
    criterion = nn.CrossEntropyLoss()
    loader = DataLoader(CustomDataset(x_train, y_train), batch_size=batch_size, shuffle=True)
    for epoch in range(num_epochs):
        model.train()
        running = 0.0
        for images, labels in loader:
            loss = criterion(model(images.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            running += loss.item()
        logger.info("Epoch [%d/%d], Loss: %.4f", epoch + 1, num_epochs, running / len(loader))
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, x_test.shape[0], batch_size):
            logits = model(x_test[start : start + batch_size].to(device=device, dtype=x_train.dtype))
            correct += int((logits.argmax(dim=1).cpu() == y_test[start : start + batch_size]).sum())
    accuracy = 100.0 * correct / x_test.shape[0]
    logger.info("Test Accuracy: %.2f%%", accuracy)
    return model, accuracy


def show_classification(
    file_name: str,
    img: Any,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    save: bool = False,
    savename: str | os.PathLike = "",
    labels: Sequence[Any] | None = None,
) -> Figure:
    """Draw ``img`` (for example a grid of digits) with one label per grid cell; returns the figure.

    Parameters are those of :func:`rkm.utils.show_and_save`, plus ``labels``: one per
    cell of a square grid laid over ``img`` (their number a perfect square), written at
    the top right corner of each cell as pyrkm did. rkm never calls ``plt.show()``.

    Raises
    ------
    DataError
        If the number of labels is not a perfect square (pyrkm: ValueError, which
        ``DataError`` also is).
    """
    return plots.show_image(img, file_name, cmap=cmap, vmin=vmin, vmax=vmax, labels=labels, figsize=(8, 8),
                            save_to=savename if save else None)
