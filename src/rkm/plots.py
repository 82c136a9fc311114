"""Figures: weight filters, bias images and histograms, sample grids, training curves.

Every function returns a matplotlib ``Figure`` made through pyplot (so scripts that call
``plt.savefig`` after a plot method keep working) and never calls ``plt.show()``.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

from .errors import DataError


def _numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def infer_image_shape(n: int, image_shape=None) -> tuple[int, int]:
    """``image_shape`` if given (checked against ``n``), else a square side, else an error."""
    if image_shape is not None:
        h, w = (int(s) for s in image_shape)
        if h * w != n:
            raise DataError(f"image_shape {image_shape} has {h * w} pixels but the layer has {n} units.")
        return h, w
    side = math.isqrt(n)
    if side * side != n:
        raise DataError(f"{n} units do not form a square image; pass image_shape=(height, width).")
    return side, side


def image_grid(images, image_shape=None, *, ncols: int | None = None, title: str = "", cmap: str = "gray",
               symmetric: bool = False, colorbar: bool = False):
    """Show rows of ``images`` (N, n_pixels) as a grid of small images."""
    data = _numpy(images)
    if data.ndim == 1:
        data = data[None, :]
    n = data.shape[0]
    h, w = infer_image_shape(data.shape[1], image_shape)
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    pad = 1
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), np.nan)
    for i, row in enumerate(data):
        r, c = divmod(i, ncols)
        canvas[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = row.reshape(h, w)
    if symmetric:
        bound = float(np.nanmax(np.abs(canvas))) or 1.0
        vmin, vmax = -bound, bound
    else:
        vmin, vmax = float(np.nanmin(canvas)), float(np.nanmax(canvas))
    fig, ax = plt.subplots(figsize=(min(12, 1 + 0.9 * ncols * w / max(h, w)), min(12, 1 + 0.9 * nrows)))
    shown = ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return fig


def weight_grid(W, t, image_shape=None, max_filters: int = 100):
    """Each hidden unit's incoming weights as an image (the first ``max_filters`` units)."""
    W = _numpy(W)[:max_filters]
    return image_grid(W, image_shape, title=f"Weights, update {t}", cmap="RdBu_r", symmetric=True, colorbar=True)


def bias_image(bias, t, image_shape=None):
    """A layer's bias as one image with a colour bar."""
    return image_grid(_numpy(bias), image_shape, ncols=1, title=f"Visible bias, update {t}", cmap="magma", colorbar=True)


def bias_histograms(h_bias, v_bias, t):
    """Histograms of the hidden and visible biases side by side."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.hist(_numpy(h_bias), bins=20, color="tab:blue", edgecolor="black")
    ax1.set(xlabel="value", ylabel="count", title=f"Hidden bias, update {t}")
    ax2.hist(_numpy(v_bias), bins=20, color="tab:red", edgecolor="black")
    ax2.set(xlabel="value", ylabel="count", title=f"Visible bias, update {t}")
    fig.tight_layout()
    return fig


def save(fig, path) -> None:
    """Write ``fig`` to ``path`` and release it from pyplot."""
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
