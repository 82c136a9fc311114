"""Figures: weight filters, bias images and histograms, sample grids, training curves.

Every function returns a matplotlib ``Figure`` made through pyplot (so scripts that call
``plt.savefig`` after a plot method keep working) and never calls ``plt.show()``.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from .errors import ConfigError, DataError
from .io.savepoints import atomic_write

__all__ = ["image_grid", "weight_grid", "bias_image", "bias_histograms", "reconstructions", "training_curves",
    "show_image", "graph_nodes", "graph_edges", "infer_image_shape", "tile", "save"]


def _numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def infer_image_shape(n: int, image_shape: Any = None) -> tuple[int, int]:
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


def tile(images: np.ndarray, ncols: int, pad: int, fill: float) -> np.ndarray:
    """Images (N, h, w) side by side, ``ncols`` per row, ``pad`` pixels of ``fill`` around each.

    Returns the canvas, shape ``(rows (h + pad) + pad, ncols (w + pad) + pad)`` with
    ``rows = ceil(N / ncols)``; image k sits at row ``k // ncols``, column ``k % ncols``.
    """
    n, h, w = images.shape
    nrows = int(math.ceil(n / ncols))
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad), fill, dtype=np.float64)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        canvas[top: top + h, left: left + w] = image
    return canvas


def image_grid(images: Any, image_shape: Any = None, *, ncols: int | None = None, title: str = "",
               cmap: str = "gray", symmetric: bool = False, colorbar: bool = False) -> Figure:
    """Show rows of ``images`` (N, n_pixels) as a grid of small images."""
    data = _numpy(images)
    if data.ndim == 1:
        data = data[None, :]
    n = data.shape[0]
    h, w = infer_image_shape(data.shape[1], image_shape)
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    canvas = tile(data.reshape(n, h, w), ncols, pad=1, fill=np.nan)
    if symmetric:
        bound = float(np.nanmax(np.abs(canvas))) or 1.0
        vmin, vmax = -bound, bound
    else:
        vmin, vmax = float(np.nanmin(canvas)), float(np.nanmax(canvas))
    fig, ax = plt.subplots(figsize=(min(12, 1 + 0.9 * ncols * w / max(h, w)), min(12, 1 + 0.9 * nrows)),
                           layout="constrained")
    shown = ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.axis("off")
    if title:
        ax.set_title(title)
    if colorbar:
        fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04)
    return fig


def weight_grid(W: Any, t: int, image_shape: Any = None, max_filters: int = 100) -> Figure:
    """Each hidden unit's incoming weights as an image (the first ``max_filters`` units)."""
    W = _numpy(W)[:max_filters]
    return image_grid(W, image_shape, title=f"Weights, update {t}", cmap="RdBu_r", symmetric=True, colorbar=True)


def bias_image(bias: Any, t: int, image_shape: Any = None) -> Figure:
    """A layer's bias as one image with a colour bar."""
    return image_grid(_numpy(bias), image_shape, ncols=1, title=f"Visible bias, update {t}", cmap="magma",
                      colorbar=True)


def bias_histograms(h_bias: Any, v_bias: Any, t: int) -> Figure:
    """Histograms of the hidden and visible biases side by side."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.hist(_numpy(h_bias), bins=20, color="tab:blue", edgecolor="black")
    ax1.set(xlabel="value", ylabel="count", title=f"Hidden bias, update {t}")
    ax2.hist(_numpy(v_bias), bins=20, color="tab:red", edgecolor="black")
    ax2.set(xlabel="value", ylabel="count", title=f"Visible bias, update {t}")
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Any) -> None:
    """Write ``fig`` to the file ``path`` atomically (never a half-written image) and release it from pyplot."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or None, dpi=100, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write(Path(path), buffer.getvalue())


def reconstructions(originals: Any, recon: Any, image_shape: Any = None, title: str = "") -> Figure:
    """Originals (top row) above their reconstructions (bottom row); ``title`` above them."""
    originals, recon = _numpy(originals), _numpy(recon)
    n = len(originals)
    h, w = infer_image_shape(originals.shape[1], image_shape)
    fig, axes = plt.subplots(2, n, figsize=(max(4, 0.9 * n), 2.2), squeeze=False)
    for i in range(n):
        for row, data in enumerate((originals, recon)):
            axes[row, i].imshow(data[i].reshape(h, w), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axes[row, i].axis("off")
    axes[0, 0].set_title("data", loc="left", fontsize=9)
    axes[1, 0].set_title("reconstruction", loc="left", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9, y=1.08)
    return fig


def training_curves(rows: list[dict[str, float]]) -> Figure:
    """Reconstruction errors, power, energy and relaxation times against updates; the quality of
    samples from noise (label entropy, FID) against the cumulative energy in joules; the swap
    acceptance of parallel tempering where the rows have it."""
    updates = [r["update"] for r in rows]

    def series(key: str) -> list[float]:
        return [r.get(key, np.nan) for r in rows]

    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    _quality_panel(axes[1, 2], rows)
    ax = axes[0, 2]
    if any("swap_acceptance" in r for r in rows):
        ax.plot(updates, series("swap_acceptance"))
        ax.set(ylabel="swap acceptance (PT, since the start)", ylim=(0, 1), xlabel="update")
    else:
        ax.set_axis_off()
    ax = axes[0, 0]
    ax.plot(updates, series("train_error"), label="train (k=1)")
    if any("test_error" in r for r in rows):  # empty where the data has no held-out set
        ax.plot(updates, series("test_error"), label="test (k=1)")
    ax.set(ylabel="reconstruction error", yscale="log")
    ax.legend()
    ax = axes[0, 1]
    ax.plot(updates, series("power_f"), label="forward")
    ax.plot(updates, series("power_b"), label="backward")
    ax.set(ylabel="power per update (sum of batch means)")
    ax.legend()
    ax = axes[1, 0]
    ax.plot(updates, series("energy"))
    ax.set(ylabel="cumulative energy")
    ax = axes[1, 1]
    ax.plot(updates, series("relax_t_f_mean"), label="hidden (forward)")
    ax.plot(updates, series("relax_t_b_mean"), label="visible (backward)")
    ax.set(ylabel="mean relaxation time", yscale="log")
    ax.legend()
    for ax in axes[:, :2].flat:
        ax.set_xlabel("update")
    fig.tight_layout()
    return fig


def _quality_panel(ax: Axes, rows: list[dict[str, float]]) -> None:
    """Label entropy (left axis) and FID (right axis, log) of samples from noise against cumulative energy."""
    ax.set(xlabel="cumulative energy (J)", ylabel="label entropy (nats)", title="samples from noise")
    marked = [r for r in rows if "label_entropy" in r or "fid" in r]
    if not marked:
        ax.text(0.5, 0.5, "no sample quality recorded", ha="center", va="center", transform=ax.transAxes)
        return
    energy = [r.get("energy_j", np.nan) for r in marked]
    ax.plot(energy, [r.get("label_entropy", np.nan) for r in marked], "o-", color="C0", label="label entropy")
    ax.axhline(np.log(10), color="C0", linestyle=":", linewidth=0.8)
    ax.set_ylim(0, 2.5)
    right = ax.twinx()
    right.plot(energy, [r.get("fid", np.nan) for r in marked], "s--", color="C3", label="FID")
    right.set(ylabel="FID (shipped classifier)", yscale="log")
    ax.legend(handles=[*ax.get_lines()[:1], *right.get_lines()], loc="upper right", fontsize=8)


def show_image(
    img: Any,
    title: str = "",
    *,
    cmap: str = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    labels: Sequence[Any] | None = None,
    figsize: tuple[float, float] | None = None,
    save_to: str | os.PathLike | None = None,
) -> Figure:
    """One 2-D image (for example a :func:`tile` canvas) with a title; returns the figure.

    ``labels``, one per cell of a square grid laid over the image (``len(labels)`` a perfect
    square), are written at the top right corner of each cell. With ``save_to`` the
    figure is written there (see :func:`save`) and closed.
    """
    if save_to is not None and not str(save_to):
        raise ConfigError("saving needs a file name to write (e.g. 'samples.png').")
    data = _numpy(img)
    if data.ndim != 2:
        raise DataError(f"show_image draws one 2-D image, got an array of shape {data.shape}.")
    side = math.isqrt(len(labels)) if labels is not None else 0
    if labels is not None and side * side != len(labels):
        raise DataError(f"labels must be one per cell of a square grid; {len(labels)} is not a perfect square.")
    fig, ax = plt.subplots(figsize=figsize)
    ax.set_title(title)
    ax.imshow(data, cmap=cmap, vmin=vmin, vmax=vmax)
    if labels is not None:
        cell_h, cell_w = data.shape[0] // side, data.shape[1] // side
        for i, label in enumerate(labels):
            r, c = divmod(i, side)
            ax.text((c + 1) * cell_w, r * cell_h, label, color="red", fontsize=10, ha="center", va="center",
                    bbox={"facecolor": "white", "alpha": 0.6, "edgecolor": "none"})
    if save_to is not None:
        save(fig, save_to)
    return fig


def _state_colours(state: np.ndarray, cmap: str) -> tuple[Normalize, Colormap]:
    norm = plt.Normalize(vmin=float(np.min(state)), vmax=float(np.max(state)))
    return norm, matplotlib.colormaps[cmap]


def graph_nodes(
    positions: Any,
    state: Any,
    title: str | None = None,
    lw: float = 0.5,
    cmap: str = "RdYlBu_r",
    size_factor: float = 100,
) -> Figure:
    """Nodes at ``positions`` (n, 2), sized by ``|state|`` and coloured by ``state``; returns the figure."""
    pts, state = _numpy(positions), _numpy(state)
    norm, colours = _state_colours(state, cmap)
    fig, ax = plt.subplots(figsize=(4, 4), constrained_layout=True)
    ax.scatter(pts[:, 0], pts[:, 1], s=size_factor * np.abs(state), c=state, edgecolors="black", linewidth=lw,
               cmap=colours, norm=norm)
    ax.set(aspect="equal", xticks=[], yticks=[], title=title)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colours), ax=ax, shrink=0.5)
    return fig


def graph_edges(
    segments: Any, state: Any, title: str | None = None, lw: float = 0.5, cmap: str = "RdYlBu_r"
) -> Figure:
    """Edges ``segments`` (n_edges, 2, 2) (two end points each) coloured by ``state``; returns the figure."""
    from matplotlib.collections import LineCollection

    segments, state = _numpy(segments), _numpy(state)
    norm, colours = _state_colours(state, cmap)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.add_collection(LineCollection(segments, colors=colours(norm(state)), linewidths=lw))
    ax.autoscale()
    ax.set(xticks=[], yticks=[], title=title)
    fig.colorbar(matplotlib.cm.ScalarMappable(norm=norm, cmap=colours), ax=ax, shrink=0.5)
    return fig
