"""pyrkm 0.1.0's ``pyrkm.utils``, as thin adapters over rkm's own functions.

Every function keeps pyrkm's name, signature, argument layout and return type, so that
``from pyrkm.utils import ...`` ports by changing the word ``pyrkm`` to ``rkm``. The
work is done by :mod:`rkm.evaluation.metrics`, :mod:`rkm.plots`, :mod:`rkm.io.datasets`,
:mod:`rkm.io.savepoints` and :mod:`rkm.compat.pickles`; where pyrkm computed something wrong, the
rkm function computes it right (each difference is listed in the README's
"Differences from pyrkm" table):

* ``Covariance_error`` compares covariance matrices (pyrkm crashed on a vector);
* ``Third_moment_error`` averages over the triples i < j < k without an ``Nv**3`` tensor;
* ``PowerSpectrum_MSE`` transforms each image, not the (samples, pixels) matrix;
* ``Compute_S`` compresses the real and the mixed set as separate streams;
* ``Compute_FID`` uses the classifier shipped with rkm, offline, instead of ImageNet
  Inception-v3 downloaded at run time;
* ``make_grid`` pads every side of every image;
* ``show_and_save`` returns the figure instead of calling ``plt.show()``;
* ``unpickle`` admits only plain data and never runs code from the file;
* ``load_model`` reads rkm's safetensors save points (``rkm convert-pyrkm FOLDER``
  converts pyrkm's pickles).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import plots
from ..core._checks import integer
from ..errors import ConfigError, DataError
from ..evaluation import metrics
from ..io import datasets as datasets
from ..machine import load_model
from . import _synthetic
from .pickles import unpickle

__all__ = [
    "load_model",
    "show_and_save",
    "make_grid",
    "getbasebias",
    "Covariance_error",
    "Third_moment_error",
    "PowerSpectrum_MSE",
    "ComputeAATS",
    "Compute_FID",
    "Compute_S",
    "generate_S_matrix",
    "generate_synthetic_data",
    "my_entropy",
    "binarize_image",
    "ensure_dir",
    "unpickle",
]

logger = logging.getLogger("rkm.utils")


def _scalar_tensor(value: float, like: Any) -> torch.Tensor:
    """``value`` as a 0-d float64 tensor, on ``like``'s device when it is a tensor."""
    device = like.device if isinstance(like, torch.Tensor) else "cpu"
    return torch.tensor(value, dtype=torch.float64, device=device)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _check_columns(x: Any, Nv: Any, name: str) -> None:
    n_columns = np.shape(x)[-1] if np.ndim(x) else 0
    if isinstance(Nv, bool) or not isinstance(Nv, (int, np.integer)) or int(Nv) != n_columns:
        raise DataError(f"Nv={Nv!r} must be the number of visible units, the {n_columns} columns of {name}.")


def show_and_save(
    file_name: str,
    img: Any,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    save: bool = False,
    savename: str | os.PathLike = "",
) -> Figure:
    """Draw the 2-D image ``img`` titled ``file_name``; with ``save``, write it to ``savename``.

    Parameters
    ----------
    file_name : str
        Title of the image.
    img : array_like or Tensor, shape (H, W)
        For example a :func:`make_grid` canvas.
    cmap, vmin, vmax
        As in :func:`matplotlib.pyplot.imshow`.
    save : bool
        Write the figure to ``savename`` and close it.
    savename : str
        Output file (its suffix sets the format).

    Returns
    -------
    matplotlib.figure.Figure
        The figure, made through pyplot: unlike pyrkm, rkm never calls ``plt.show()``;
        a notebook shows the returned figure, a script calls ``plt.show()`` itself.
    """
    return plots.show_image(img, file_name, cmap=cmap, vmin=vmin, vmax=vmax, save_to=savename if save else None)


def make_grid(array: Any, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """Images side by side, ``nrow`` per row, ``padding`` zero pixels around each.

    Parameters
    ----------
    array : array_like or Tensor, shape (N, H, W)
        The images (rows of a square number of pixels, (N, H*W), are read as square images).
    nrow : int
        Images per row of the grid.
    padding : int
        Pixels between images and around the border.

    Returns
    -------
    numpy.ndarray, shape (ceil(N / nrow) (H + padding) + padding, nrow (W + padding) + padding)
        float64; image k sits at grid row ``k // nrow``, column ``k % nrow``, with
        ``padding`` pixels on every side (pyrkm left out the top and left border and
        doubled the bottom and right one).
    """
    images = _numpy(array).astype(np.float64, copy=False)
    if images.ndim == 2:
        h, w = plots.infer_image_shape(images.shape[1])
        images = images.reshape(-1, h, w)
    if images.ndim != 3 or images.shape[0] == 0:
        raise DataError(f"make_grid needs images of shape (N, H, W), got {images.shape}.")
    return plots.tile(images, integer("nrow", nrow), pad=integer("padding", padding, minimum=0), fill=0.0)


def getbasebias(data: Any) -> torch.Tensor:
    """Maximum-likelihood visible bias of independent units: ``logit`` of the data mean.

    The mean of each column is clipped to [1e-5, 1 - 1e-5] first, as in pyrkm.

    Parameters
    ----------
    data : Tensor or array_like, shape (N, n_visible)

    Returns
    -------
    torch.Tensor, shape (n_visible,)
        In the dtype of a floating tensor ``data``, else float32.
    """
    x = data if isinstance(data, torch.Tensor) else torch.as_tensor(np.asarray(data, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"getbasebias needs data of shape (N, n_visible), got {tuple(x.shape)}.")
    if not x.is_floating_point():
        x = x.to(torch.float32)
    return torch.logit(x.mean(0), eps=1e-5)


def Covariance_error(centered_data_original: Any, centered_data_model: Any, Nv: int) -> torch.Tensor:
    """Mean squared difference of the off-diagonal covariances (:func:`rkm.evaluation.metrics.covariance_error`).

    Parameters
    ----------
    centered_data_original, centered_data_model : Tensor or array_like, shape (N, Nv)
        Samples as rows (each set is centred again, so raw data work too).
    Nv : int
        Number of visible units, checked against the columns.

    Returns
    -------
    torch.Tensor
        0-d float64. pyrkm crashed here (it took the mean of the covariance matrix,
        a vector, then ``triu`` of it).
    """
    _check_columns(centered_data_original, Nv, "centered_data_original")
    return _scalar_tensor(metrics.covariance_error(centered_data_original, centered_data_model), centered_data_original)


def Third_moment_error(centered_data_original: Any, centered_data_model: Any, Nv: int) -> torch.Tensor:
    """Mean squared difference of the third central moments over i < j < k.

    :func:`rkm.evaluation.metrics.third_moment_error`, which never forms the ``Nv**3`` tensor (pyrkm
    formed three, divided both sets by the model's sample count and summed over every
    i with j < k).

    Returns
    -------
    torch.Tensor
        0-d float64.
    """
    _check_columns(centered_data_original, Nv, "centered_data_original")
    return _scalar_tensor(
        metrics.third_moment_error(centered_data_original, centered_data_model), centered_data_original
    )


def PowerSpectrum_MSE(v: Any, v_model: Any) -> torch.Tensor:
    """Mean squared difference of the natural logs of the mean 2-D power spectra of two image sets.

    :func:`rkm.evaluation.metrics.power_spectrum_error` (``log10`` with a 1e-8 floor) times
    ``ln(10)**2``, which puts it in pyrkm's natural-log units. Each row is one image: a square
    one where its length is a perfect square (784 pixels: 28 x 28), otherwise an image of one
    row (its 1-D spectrum), so that every input pyrkm accepted gives a value. pyrkm applied one
    2-D FFT to the whole (samples, pixels) matrix instead of each image. rkm's own metric keeps
    asking for ``image_shape`` where the rows are not square images.

    Parameters
    ----------
    v, v_model : Tensor or array_like, shape (n, n_pixels)
        Images as rows, the same number of pixels in both; the sets may differ in size.

    Returns
    -------
    torch.Tensor
        0-d float64.
    """
    n_pixels = np.shape(v)[-1] if np.ndim(v) == 2 else 0
    side = math.isqrt(n_pixels)
    shape = None if side * side == n_pixels else (1, n_pixels)
    return _scalar_tensor(math.log(10.0) ** 2 * metrics.power_spectrum_error(v, v_model, shape), v)


def ComputeAATS(v: Any, v_model: Any) -> tuple[float, float]:
    """Nearest-neighbour adversarial accuracy of real and generated samples (:func:`rkm.evaluation.metrics.aats`).

    Parameters
    ----------
    v, v_model : Tensor or array_like, shape (n_visible, n_samples)
        pyrkm's layout: one sample per COLUMN (the transpose of what ``generate``
        returns), the same number of samples in each.

    Returns
    -------
    (float, float)
        ``(AA_truth, AA_syn)``; ideal (0.5, 0.5).
    """
    return metrics.aats(_numpy(v).T, _numpy(v_model).T)


def Compute_FID(synthetic_images: Any, real_images: Any) -> float:
    """Frechet distance of classifier features of generated and real 28x28 digits.

    :func:`rkm.evaluation.metrics.fid`: the 64 penultimate features of the small MNIST classifier
    shipped with rkm, offline. pyrkm downloaded ImageNet Inception-v3 and compared its
    logits, so the values are not comparable.

    Parameters
    ----------
    synthetic_images, real_images : Tensor or array_like, shape (N, 784)
        Images as rows, at least 2 of each.

    Returns
    -------
    float
    """
    return metrics.fid(real_images, synthetic_images)


def Compute_S(v: Any, v_gen: Any) -> float:
    """Compression-based relative entropy of a half-generated set (:func:`rkm.evaluation.metrics.entropy_measure`).

    Parameters
    ----------
    v, v_gen : Tensor or array_like, shape (N, n_visible)
        Real and generated samples as rows.

    Returns
    -------
    float
        Ideal 0. pyrkm wrote both sets into one byte stream, so its mixed stream also
        held the real set.
    """
    return metrics.entropy_measure(v, v_gen)


def generate_S_matrix(
    shape: tuple[int, int], target: float, *, random_state: int | np.random.RandomState | None = None
) -> np.ndarray:
    """Random values in [0, 1] with their mean moved to ``target`` (:func:`rkm.compat._synthetic.entropy_targets`).

    ``random_state`` (keyword, rkm only): None draws from NumPy's global generator like
    pyrkm, so ``np.random.seed`` repeats pyrkm's matrix; an int or RandomState owns them.

    Returns
    -------
    numpy.ndarray, float64, of ``shape``
    """
    return _synthetic.entropy_targets(shape, target, random_state)


def generate_synthetic_data(
    target_entropy: float,
    data_size: tuple[int, int, int],
    structured: bool = True,
    *,
    random_state: int | np.random.RandomState | None = None,
) -> np.ndarray:
    """Binary images whose pixels have prescribed entropies (:func:`rkm.compat._synthetic.entropy_images`).

    The target and the generated mean entropies per image and per pixel are logged
    (logger ``rkm.utils``, level INFO), where pyrkm printed them.

    Parameters
    ----------
    target_entropy : float
        Mean entropy per pixel, in bits.
    data_size : (int, int, int)
        ``(n_images, height, width)``.
    structured : bool
        Entropy grows from the top left pixel to the bottom right one.
    random_state : None, int or numpy.random.RandomState, keyword-only
        As in :func:`generate_S_matrix`.

    Returns
    -------
    numpy.ndarray, int64, shape ``data_size``
    """
    images = _synthetic.entropy_images(target_entropy, data_size, structured, random_state)
    s_image, s_pixel = my_entropy(images)
    logger.info(
        "Target = %s; generated entropy (image) = %s, (pixels) = %s", target_entropy, s_image.mean(), s_pixel.mean()
    )
    return images


def my_entropy(data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Entropy in bits of each image's mean pixel and of each pixel's mean over the images.

    Parameters
    ----------
    data : array_like or Tensor, shape (N, H, W)
        Values in [0, 1].

    Returns
    -------
    S_image : numpy.ndarray, shape (N,)
        :func:`rkm.evaluation.metrics.binary_entropy` of the mean of each image.
    S_pixel : numpy.ndarray, shape (H, W)
        :func:`rkm.evaluation.metrics.binary_entropy` of each pixel's mean.
    """
    x = _numpy(data).astype(np.float64, copy=False)
    if x.ndim != 3 or x.shape[0] == 0:
        raise DataError(f"my_entropy needs images of shape (N, H, W), got {x.shape}.")
    return metrics.binary_entropy(x.mean(axis=(1, 2))), metrics.binary_entropy(x.mean(axis=0))


def binarize_image(image: Any, threshold: float = 128) -> np.ndarray:
    """``1`` where ``image > threshold``, else ``0`` (raw values, no rescaling).

    Returns
    -------
    numpy.ndarray of int64, the shape of ``image``
    """
    return datasets.binarize(_numpy(image), threshold, scale=1).astype(np.int64)


def ensure_dir(dirname: str | os.PathLike) -> None:
    """Create the folder ``dirname`` (and its parents) if it does not exist.

    Raises
    ------
    ConfigError
        If ``dirname`` exists and is not a folder.
    """
    path = Path(dirname)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{path} exists and is not a folder; choose another name.")
    path.mkdir(parents=True, exist_ok=True)
