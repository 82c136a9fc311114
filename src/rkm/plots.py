"""Figures: weight filters, bias images and histograms, sample grids, training curves.

Every function returns a matplotlib ``Figure`` made through pyplot (so scripts that call
``plt.savefig`` after a plot method keep working) and never calls ``plt.show()``. rkm's own
figures are drawn in the style of :mod:`rkm.plotstyle` (every axis a quantity with its unit,
only panels with data, readable log axes, borders between image cells); :func:`show_image`,
:func:`tile` and the graph figures keep the look of pyrkm's functions they serve.
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
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .errors import ConfigError, DataError
from .io.savepoints import atomic_write
from .plotstyle import CODE_UNITS, RC, cell_borders, log_axes, panel_columns, panel_grid, quantity, styled

__all__ = ["image_grid", "weight_grid", "bias_image", "bias_histograms", "reconstructions", "training_curves",
    "CURVES", "QUALITY_CURVES", "show_image", "graph_nodes", "graph_edges", "infer_image_shape", "tile", "save"]


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


@styled
def image_grid(images: Any, image_shape: Any = None, *, ncols: int | None = None, title: str = "",
               cmap: str = "gray", symmetric: bool = False, colorbar: str | None = None) -> Figure:
    """Show rows of ``images`` (N, n_pixels) as a grid of small images, with borders between the cells.

    ``colorbar``: the label of a colour bar (a quantity and its unit, :func:`rkm.plotstyle.quantity`);
    None draws none.
    """
    data = _numpy(images)
    if data.ndim == 1:
        data = data[None, :]
    n = data.shape[0]
    h, w = infer_image_shape(data.shape[1], image_shape)
    ncols = ncols or int(math.ceil(math.sqrt(n)))
    nrows = int(math.ceil(n / ncols))
    canvas = tile(data.reshape(n, h, w), ncols, pad=0, fill=np.nan)
    if symmetric:
        bound = float(np.nanmax(np.abs(canvas))) or 1.0
        vmin, vmax = -bound, bound
    else:
        vmin, vmax = float(np.nanmin(canvas)), float(np.nanmax(canvas))
    width = max(3.5, min(12, 1 + 0.9 * ncols * w / max(h, w))) + (1.0 if colorbar is not None else 0.0)
    height = max(2.8 if colorbar is not None else 1.5, min(12, 1 + 0.9 * nrows))
    fig, ax = plt.subplots(figsize=(width, height))
    shown = ax.imshow(np.ma.masked_invalid(canvas), cmap=cmap, vmin=vmin, vmax=vmax)
    cell_borders(ax, n, ncols, h, w)
    ax.axis("off")
    if title:
        ax.set_title(title)
    if colorbar is not None:
        fig.colorbar(shown, ax=ax, shrink=0.8, label=colorbar)
    return fig


def weight_grid(W: Any, t: int, image_shape: Any = None, max_filters: int = 100) -> Figure:
    """Each hidden unit's incoming weights as an image (the first ``max_filters`` units); ``t``: the update
    named in the title."""
    W = _numpy(W)
    shown = min(len(W), max_filters)
    units = f"the first {shown} of {len(W)} hidden units" if shown < len(W) else f"all {len(W)} hidden units"
    return image_grid(W[:shown], image_shape, title=f"Weights into {units}, update {t}", cmap="RdBu_r",
                      symmetric=True, colorbar=quantity("weight W", CODE_UNITS))


def bias_image(bias: Any, t: int, image_shape: Any = None) -> Figure:
    """The visible bias as one image with a colour bar; ``t``: the update named in the title."""
    return image_grid(_numpy(bias), image_shape, ncols=1, title=f"Visible bias, update {t}", cmap="magma",
                      colorbar=quantity("visible bias a", CODE_UNITS))


@styled
def bias_histograms(h_bias: Any, v_bias: Any, t: int) -> Figure:
    """Histograms of the hidden and visible biases side by side; ``t``: the update named in the titles."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3.2))
    for ax, bias, layer, symbol, colour in ((ax1, h_bias, "hidden", "b", "tab:blue"),
                                            (ax2, v_bias, "visible", "a", "tab:red")):
        ax.hist(_numpy(bias), bins=20, color=colour, edgecolor="black")
        ax.set(xlabel=quantity(f"{layer} bias {symbol}", CODE_UNITS), ylabel=f"{layer} units",
               title=f"{layer.capitalize()} bias, update {t}")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return fig


def save(fig: Figure, path: Any) -> None:
    """Write ``fig`` to the file ``path`` atomically (never a half-written image) and release it from pyplot."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or None, dpi=RC["savefig.dpi"],
                    bbox_inches="tight", pad_inches=RC["savefig.pad_inches"])
    finally:
        plt.close(fig)
    atomic_write(Path(path), buffer.getvalue())


@styled
def reconstructions(originals: Any, recon: Any, image_shape: Any = None, title: str = "") -> Figure:
    """Originals (top row) above their reconstructions (bottom row), with borders between the cells;
    ``title`` above them."""
    originals, recon = _numpy(originals), _numpy(recon)
    n = len(originals)
    h, w = infer_image_shape(originals.shape[1], image_shape)
    canvas = tile(np.concatenate([originals, recon]).reshape(2 * n, h, w), n, pad=0, fill=np.nan)
    fig, ax = plt.subplots(figsize=(min(12, 1.5 + 0.6 * n * w / max(h, w)), 1.6))
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
    cell_borders(ax, 2 * n, n, h, w)
    ax.set_xticks([])
    ax.set_yticks([h / 2 - 0.5, 3 * h / 2 - 0.5], ["data", "reconstruction"])
    ax.tick_params(left=False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if title:
        ax.set_title(title)
    return fig


CURVES: tuple[tuple[str, str, tuple[tuple[str, str, str], ...], str], ...] = (
    ("reconstruction error", "fraction of pixels",
     (("train_error", "", "training rows, k = 1"), ("test_error", "", "test rows, k = 1")), "y"),
    ("power per update", "W", (("power_f_w", "power_f", "forward (hidden nodes)"),
                               ("power_b_w", "power_b", "backward (visible nodes)")), "y"),
    ("cumulative energy", "J", (("energy_j", "energy", ""),), ""),
    ("mean relaxation time", "s", (("relax_t_f_mean_s", "relax_t_f_mean", "hidden nodes (forward)"),
                                   ("relax_t_b_mean_s", "relax_t_b_mean", "visible nodes (backward)")), "y"),
    ("swap acceptance since the start", "fraction of swaps", (("swap_acceptance", "", ""),), ""),
)
"""The panels of :func:`training_curves` against the update: quantity, unit, its series (SI column of
``metrics.csv``, the code-unit column used where a log of an older rkm has no SI one, legend label) and
which axes are logarithmic where the values span a decade (:func:`rkm.plotstyle.log_axes`)."""

QUALITY_CURVES: tuple[tuple[str, str, str, str, str], ...] = (
    ("label_entropy", "samples from noise", "label entropy", "nats", ""),
    ("fid", "samples from noise", "FID, shipped classifier", "", "y"),
    ("exact_kl", "the model's stationary law", "KL(training data || model)", "nats", "y"),
)
"""The quality panels of :func:`training_curves`, against the cumulative energy: column, title, quantity, unit,
log axes."""


def _values(rows: list[dict[str, float]], key: str) -> np.ndarray:
    return np.array([r.get(key, np.nan) for r in rows], dtype=float)


def _curve_panels(rows: list[dict[str, float]]) -> list[tuple[str, str, list[tuple[np.ndarray, str]], str]]:
    """The panels of :data:`CURVES` that have data: (quantity, unit, [(values, label)], log axes).

    A panel shows its SI columns; only where the log has none of them (an older rkm), its code-unit ones.
    """
    panels = []
    for name, unit, columns, log in CURVES:
        for keys, shown_unit in (([c[0] for c in columns], unit), ([c[1] for c in columns], CODE_UNITS)):
            series = [(_values(rows, key), label) for key, (_, _, label) in zip(keys, columns) if key]
            series = [(values, label) for values, label in series if not np.isnan(values).all()]
            if series:
                panels.append((name, shown_unit, series, log))
                break
    return panels


@styled
def training_curves(rows: list[dict[str, float]]) -> Figure:
    """The rows of a ``metrics.csv`` as curves, one panel per quantity the rows have.

    Against the update: reconstruction errors, power per update (W), cumulative energy (J),
    mean relaxation times (s), parallel tempering's swap acceptance (:data:`CURVES`). Against
    the cumulative energy (J): the quality of samples from noise, where it was recorded on at
    least two rows, i.e. during training and not only at the end (:data:`QUALITY_CURVES`).
    """
    updates = _values(rows, "update")
    panels = _curve_panels(rows)
    energy = _values(rows, "energy_j")
    quality = [(key, title, name, unit, log) for key, title, name, unit, log in QUALITY_CURVES
               if np.count_nonzero(~np.isnan(_values(rows, key)) & ~np.isnan(energy)) >= 2]
    n = len(panels) + len(quality)
    ncols = panel_columns(n)
    fig = plt.figure(figsize=(4.2 * ncols, 3.1 * math.ceil(n / ncols)))
    axes = panel_grid(fig, n)
    for ax, (name, unit, series, log) in zip(axes, panels):
        for values, label in series:
            ax.plot(updates, values, label=label or None)
        ax.set(xlabel="update", ylabel=quantity(name, unit))
        if unit == "fraction of swaps":
            ax.set_ylim(0, 1)
        log_axes(ax, log)
        if any(label for _, label in series):
            ax.legend()
    for ax, (key, title, name, unit, log) in zip(axes[len(panels):], quality):
        values = _values(rows, key)
        kept = ~np.isnan(values) & ~np.isnan(energy)
        ax.plot(energy[kept], values[kept], "o-")
        if key == "label_entropy":
            ax.axhline(np.log(10), color="0.4", linestyle=":", linewidth=1, label="ten balanced classes")
            ax.legend()
        ax.set(xlabel=quantity("cumulative energy", "J"), ylabel=quantity(name, unit), title=title)
        log_axes(ax, log)
    for ax in axes:
        ax.grid(True)
    return fig


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
