"""The small MNIST classifier whose features define rkm's FID.

The Frechet Inception Distance of pyrkm downloads an ImageNet Inception-v3
network and compares its *logits* on upscaled 28x28 digits. rkm instead ships a
small convolutional network trained on binarised MNIST (the ``mnist-5k`` train
split, see ``scripts/train_fid_classifier.py``) and compares the 64
penultimate-layer features (the input of the last linear layer, after its
ReLU). Nothing is downloaded: the weights are package data in
``rkm/evaluation/assets/fid_classifier.safetensors`` and the accuracies measured when they
were trained are in ``rkm/evaluation/assets/fid_classifier.json``.

Architecture (about 57k parameters, 230 KB in float32)::

    (N, 1, 28, 28) -> conv 1->16 3x3 -> ReLU -> maxpool 2   (16, 13, 13)
                   -> conv 16->32 3x3 -> ReLU -> maxpool 2  (32, 5, 5)
                   -> flatten 800 -> linear 64 -> ReLU      <- features
                   -> linear 10                             <- logits
"""

from __future__ import annotations

import functools
import importlib.resources
import json
from typing import Any

import numpy as np
import torch
from torch import nn

from rkm.errors import DataError

__all__ = [
    "IMAGE_SIDE",
    "N_FEATURES",
    "FidClassifier",
    "classifier_from_state",
    "classifier_info",
    "features",
    "load_classifier",
    "predict",
]

IMAGE_SIDE = 28
"""Side of the square images the classifier takes (28x28 = 784 pixels)."""

N_FEATURES = 64
"""Width of the penultimate layer whose activations :func:`features` returns."""

WEIGHTS_FILE = "fid_classifier.safetensors"
INFO_FILE = "fid_classifier.json"


class FidClassifier(nn.Module):
    """Small CNN for 28x28 binary digits; see the module docstring.

    ``forward`` returns the 10 class logits; :meth:`features` the 64
    penultimate activations (after the ReLU), used for the FID.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, kernel_size=3)
        self.conv2 = nn.Conv2d(16, 32, kernel_size=3)
        self.fc1 = nn.Linear(32 * 5 * 5, N_FEATURES)
        self.fc2 = nn.Linear(N_FEATURES, 10)
        self.pool = nn.MaxPool2d(2)
        self.dropout = nn.Dropout(0.3)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, shape (N, 64), of images (N, 784) or (N, 1, 28, 28)."""
        x = x.reshape(-1, 1, IMAGE_SIDE, IMAGE_SIDE)
        x = self.pool(torch.relu(self.conv1(x)))
        x = self.pool(torch.relu(self.conv2(x)))
        return torch.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, 10)."""
        return self.fc2(self.dropout(self.features(x)))


def _asset(name: str) -> Any:
    return importlib.resources.files("rkm.evaluation") / "assets" / name


@functools.lru_cache(maxsize=1)
def _shipped_state() -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    resource = _asset(WEIGHTS_FILE)
    if not resource.is_file():
        raise FileNotFoundError(
            f"the FID classifier weights {WEIGHTS_FILE} are missing from the rkm "
            "package assets; regenerate them with `python scripts/train_fid_classifier.py`"
        )
    with importlib.resources.as_file(resource) as path:
        return load_file(str(path))


def classifier_from_state(state: dict[str, torch.Tensor]) -> FidClassifier:
    """A :class:`FidClassifier` holding ``state`` (float32 weights), in float64 and eval mode.

    The network is run in float64 so that its features and predictions do not
    depend, beyond round-off, on the batch size or on which CPU kernels torch
    picks (in float32 they differ by ~1e-6 between batch sizes). It is built on
    the meta device and then given ``state``, so no initial weights are drawn
    from torch's global generator (a script seeded with ``torch.manual_seed``
    repeats whether or not the classifier was loaded before).
    """
    with torch.device("meta"):
        model = FidClassifier()
    model.load_state_dict({k: v.detach().clone() for k, v in state.items()}, assign=True)
    model.double()
    model.eval()
    return model


def load_classifier() -> FidClassifier:
    """Load the shipped FID classifier (a fresh module each call, float64, eval mode, CPU).

    Returns
    -------
    FidClassifier
        The network with the weights of ``rkm/evaluation/assets/fid_classifier.safetensors``
        (stored in float32), converted to float64 (see :func:`classifier_from_state`).
    """
    return classifier_from_state(_shipped_state())


def classifier_info() -> dict[str, Any]:
    """The record written when the shipped classifier was trained.

    Returns
    -------
    dict
        ``train_accuracy``, ``test_accuracy``, ``epochs``, ``seed``, ``dataset``
        and ``command`` (see ``scripts/train_fid_classifier.py``).
    """
    return json.loads(_asset(INFO_FILE).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _default_classifier() -> FidClassifier:
    return load_classifier()


def _images_tensor(images: Any) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        x = images.detach().to("cpu", torch.float32)
    else:
        try:
            x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        except (TypeError, ValueError) as exc:
            raise DataError(f"images must be a numeric array, got {type(images).__name__}") from exc
    if x.ndim == 3 and tuple(x.shape[1:]) == (IMAGE_SIDE, IMAGE_SIDE):
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2 or x.shape[1] != IMAGE_SIDE * IMAGE_SIDE:
        raise DataError(
            f"the FID classifier takes 28x28 images as rows of 784 pixels, got shape "
            f"{tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise DataError("images contain NaN or infinite values")
    return x


def _run(images: Any, classifier: Any, batch_size: int, head: str) -> torch.Tensor:
    if batch_size < 1:
        raise DataError(f"batch_size must be >= 1, got {batch_size}")
    net = _default_classifier() if classifier is None else classifier
    x = _images_tensor(images)
    param = next(net.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else torch.device("cpu")
    was_training = net.training
    net.eval()
    outs = []
    try:
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                batch = x[start:start + batch_size].to(device, dtype)
                out = net.features(batch) if head == "features" else net(batch)
                outs.append(out.to("cpu", torch.float64))
    finally:
        net.train(was_training)
    if not outs:
        return torch.zeros((0, N_FEATURES if head == "features" else 10), dtype=torch.float64)
    return torch.cat(outs)


def features(images: Any, classifier: nn.Module | None = None, *, batch_size: int = 500) -> np.ndarray:
    """Penultimate-layer features of the FID classifier.

    Parameters
    ----------
    images : array_like or torch.Tensor, shape (N, 784) or (N, 28, 28)
        Binary (or [0, 1]-valued) 28x28 images, one per row.
    classifier : FidClassifier, optional
        Network to use; the shipped one (:func:`load_classifier`, cached) if None.
    batch_size : int
        Images per forward pass. The network is run in eval mode without gradients.

    Returns
    -------
    numpy.ndarray, shape (N, 64), float64

    Raises
    ------
    DataError
        If the images are not 28x28 or contain non-finite values.
    """
    return _run(images, classifier, batch_size, "features").numpy()


def predict(images: Any, classifier: nn.Module | None = None, *, batch_size: int = 500) -> np.ndarray:
    """Predicted digit (argmax of the logits) of each image, shape (N,), int64.

    Parameters are as for :func:`features`.
    """
    return _run(images, classifier, batch_size, "logits").argmax(dim=1).numpy()
