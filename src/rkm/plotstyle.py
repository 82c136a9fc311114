"""The look of every figure rkm writes: one style, axes labelled with quantity and unit, readable log axes.

Every figure function of rkm (:mod:`rkm.plots`, the energy study's ``energy.png``, a sweep's
``summary.png``) draws inside :func:`style` and labels its axes with :func:`quantity`; the
helpers below take a figure or an axes, so other code can use them on its own figures::

    import matplotlib.pyplot as plt
    from rkm import plotstyle

    with plotstyle.style():
        fig, ax = plt.subplots()
        ax.plot(n, energy_j, "o")
        ax.set(xlabel="size N", ylabel=plotstyle.quantity("energy per pass", "J"))
        plotstyle.log_axes(ax, "xy")

The rules, and matplotlib's machinery that keeps them:

* **Tight layout, tight margins.** ``constrained_layout`` places every panel, label and
  colour bar (:data:`RC`); figures are saved with a 0.05-inch margin (``savefig.pad_inches``).
* **Only panels with data.** :func:`panel_grid` lays out exactly as many axes as there are
  panels, row by row; no empty cell is drawn.
* **A quantity and its unit on every axis.** :func:`quantity` writes ``"name (unit)"``; SI
  units where :mod:`rkm.core.units` gives one, :data:`CODE_UNITS` said in words otherwise, and
  a dimensionless quantity is named with what it counts.
* **Readable log axes.** :func:`log_axes` puts a logarithmic scale only where the drawn values
  span at least a decade (over less, a log axis shows one tick or none, and a linear axis
  says more); labelled major ticks at 1, 2 and 5 times the powers of ten over a few decades, at
  the powers of ten over many (``LogLocator``, ``LogFormatterSciNotation``); minor ticks never
  carry labels (``NullFormatter``), so labels cannot overlap.
* **Image grids with borders.** :func:`cell_borders` frames each cell of a grid of images with
  a thin grey line, whatever the images' size.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["RC", "CODE_UNITS", "BORDER", "style", "styled", "quantity", "log_axes", "panel_columns", "panel_grid",
           "cell_borders", "figure_legend"]

_P = ParamSpec("_P")
_R = TypeVar("_R")

CODE_UNITS = "code units"
"""The unit of a quantity rkm computes in the circuit's code units (:mod:`rkm.core.units`) and shows without
converting, such as the weights."""

BORDER = "0.6"
"""Colour of the frames around the cells of an image grid (:func:`cell_borders`): a mid grey, apart from the
black and white of binary images and from the ends of the diverging and sequential colour maps."""

RC: dict[Any, Any] = {
    "figure.constrained_layout.use": True,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "savefig.bbox": "tight",
    "savefig.pad_inches": 0.05,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 8,
    "legend.framealpha": 0.8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.5,
    "lines.markersize": 4,
    "image.interpolation": "nearest",
    "axes.formatter.use_mathtext": True,
    "axes.formatter.limits": (-2, 4),
}
"""The ``rcParams`` of every rkm figure (:func:`style`)."""


def style() -> contextlib.AbstractContextManager:
    """A context in which new figures take rkm's style (:data:`RC`, through ``matplotlib.rc_context``).

    Returns
    -------
    contextlib.AbstractContextManager
        Use it in a ``with`` statement; matplotlib's settings are restored on leaving it.
    """
    return matplotlib.rc_context(RC)


def styled(make: Callable[_P, _R]) -> Callable[_P, _R]:
    """Decorator: ``make`` draws its figure inside :func:`style`.

    Parameters
    ----------
    make : callable
        A function that draws and returns a figure.

    Returns
    -------
    callable
        ``make`` with the same signature, run inside :func:`style`.
    """

    @functools.wraps(make)
    def draw(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with style():
            return make(*args, **kwargs)

    return draw


def quantity(name: str, unit: str | None = None) -> str:
    """An axis label: ``"name (unit)"``, or ``name`` alone for a count or a ratio that says what it counts.

    Parameters
    ----------
    name : str
        The quantity, in words (``"energy per pass"``).
    unit : str, optional
        Its unit: an SI unit (``"J"``), :data:`CODE_UNITS`, or None for a dimensionless quantity.

    Returns
    -------
    str
        The label.
    """
    return f"{name} ({unit})" if unit else name


def _span(ax: Axes, axis: str) -> tuple[float, float] | None:
    """Smallest and largest positive finite value drawn along ``axis`` ('x' or 'y') of ``ax``."""
    values: list[np.ndarray] = []
    for line in ax.get_lines():
        values.append(np.asarray(line.get_xdata() if axis == "x" else line.get_ydata(), dtype=float))
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=float)
        if offsets.size:
            values.append(offsets[:, 0 if axis == "x" else 1])
    for patch in ax.patches:
        if isinstance(patch, Rectangle):  # a bar: its top (or right) end
            box = patch.get_bbox()
            values.append(np.array([box.x1] if axis == "x" else [box.y1], dtype=float))
    if not values:
        return None
    data = np.concatenate([v.ravel() for v in values])
    data = data[np.isfinite(data) & (data > 0)]
    return (float(data.min()), float(data.max())) if data.size else None


def log_axes(ax: Axes, axes: str = "y") -> None:
    """Logarithmic scale, with readable ticks, on the axes of ``ax`` named in ``axes`` ('x', 'y' or 'xy').

    Call it after drawing: an axis whose positive values span less than a decade (or that has
    none) stays linear. Major ticks are labelled, minor ticks are not; the major ticks are at 1, 2
    and 5 x 10^n over up to three decades along y (one and a half along x, then 1 and 3 x 10^n up
    to three), at 10^n over more.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes with their data drawn (lines, scatter collections or bars).
    axes : {'y', 'x', 'xy'}
        Which of its axes to make logarithmic.
    """
    for name in axes:
        span = _span(ax, name)
        if span is None or span[1] < 10 * span[0]:
            continue
        axis = ax.xaxis if name == "x" else ax.yaxis
        (ax.set_xscale if name == "x" else ax.set_yscale)("log")
        decades = math.log10(span[1] / span[0])
        # a label "2x10^1" is wider than it is tall: fewer per decade along x than along y
        subs = (1.0, 2.0, 5.0) if decades <= (1.5 if name == "x" else 3) else (1.0, 3.0) if decades <= 3 else (1.0,)
        axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
        axis.set_major_formatter(ticker.LogFormatterSciNotation(labelOnlyBase=False,
                                                                minor_thresholds=(math.inf, math.inf)))
        axis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(range(2, 10))))
        axis.set_minor_formatter(ticker.NullFormatter())


def panel_columns(n: int) -> int:
    """Columns of a grid of ``n`` panels: all in one row up to three, two by two for four, three to a row above.

    Parameters
    ----------
    n : int
        Number of panels.

    Returns
    -------
    int
        Number of columns.
    """
    return n if n <= 3 else 2 if n == 4 else 3


def panel_grid(fig: Figure, n: int, **kwargs: Any) -> list[Axes]:
    """``n`` axes on ``fig``, :func:`panel_columns` to a row, filled row by row; no empty cell.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure to add the axes to.
    n : int
        Number of panels; none for ``n < 1``.
    **kwargs
        Passed to every ``fig.add_subplot``.

    Returns
    -------
    list of matplotlib.axes.Axes
        The ``n`` axes, row by row.
    """
    if n < 1:
        return []
    ncols = panel_columns(n)
    nrows = math.ceil(n / ncols)
    return [fig.add_subplot(nrows, ncols, i + 1, **kwargs) for i in range(n)]


def cell_borders(ax: Axes, n: int, ncols: int, height: int, width: int, colour: str = BORDER) -> None:
    """A thin frame around each of the ``n`` cells of an image grid drawn on ``ax`` with ``imshow``.

    The cells are ``height x width`` pixels, ``ncols`` to a row from the top left, with no
    padding between them (:func:`rkm.plots.tile` with ``pad=0``); a frame is a line, whatever
    the size of the images, so the borders of a grid of 4 x 4 images are as thin as those of
    28 x 28 ones.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes of the tiled image.
    n : int
        Number of cells to frame.
    ncols : int
        Cells to a row.
    height, width : int
        Size of one cell in pixels.
    colour : str
        A matplotlib colour; default :data:`BORDER`.
    """
    frames = [Rectangle((c * width - 0.5, r * height - 0.5), width, height)
              for r, c in (divmod(i, ncols) for i in range(n))]
    ax.add_collection(PatchCollection(frames, facecolor="none", edgecolor=colour, linewidth=0.8, clip_on=False))


def figure_legend(fig: Figure, axes: Sequence[Axes], labels: Sequence[str] | None = None, **kwargs: Any) -> None:
    """One legend for ``fig`` above its panels: each label of ``axes`` once (only those in ``labels`` if given).

    Draws nothing when there is no label.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure that gets the legend.
    axes : sequence of matplotlib.axes.Axes
        The panels whose labelled artists go into it, each label once.
    labels : sequence of str, optional
        Only these labels; default: all.
    **kwargs
        Passed to ``Figure.legend`` (``loc="outside lower center"`` puts it below the panels).
    """
    handles: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if labels is None or label in labels:
                handles.setdefault(label, handle)
    if handles:
        fig.legend(list(handles.values()), list(handles), **{"loc": "outside upper center",
                                                             "ncols": min(len(handles), 3), **kwargs})
