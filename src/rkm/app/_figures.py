"""The figures of a run folder, drawn after its results are safe: a figure that cannot be drawn is a note.

:func:`write_figures` draws every PNG of ``RUN/figures`` and returns what it could not draw and
why. The image figures (reconstructions, samples, weights) need the shape of the images the
rows are: a dataset's own, or ``data.image_shape``; rows without one get no image figures, and
a note says how to give the shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .. import plots
from ..errors import ConfigError, RKMError
from ..io import _files
from .metrics_log import read_metrics

__all__ = ["IMAGE_FIGURES", "write_figures"]

logger = logging.getLogger("rkm.app.run")

IMAGE_FIGURES = ("reconstructions.png", "samples.png", "weights.png")
"""The figures that show rows as images, drawn only where the rows have an image shape."""


def write_figures(model: Any, folder: Path, originals: np.ndarray, recon: np.ndarray, samples: np.ndarray,
                  shape: tuple[int, int] | None, metrics_csv: Path, *,
                  captions: Mapping[str, str] | None = None) -> list[str]:
    """Every PNG of a run folder; returns a note for each figure not drawn (no image shape, or its error).

    ``captions``: by figure name (``samples.png``, ``reconstructions.png``), a line saying which
    update, k, n and seed made it.
    """
    said = dict(captions or {})
    drawers: dict[str, Callable[[], Figure | None]] = {
        "reconstructions.png": lambda: plots.reconstructions(originals, recon, shape,
                                                             title=said.get("reconstructions.png", "")),
        "samples.png": lambda: plots.image_grid(samples, shape, title="\n".join(
            filter(None, [f"Samples from noise (update {model.epoch})", said.get("samples.png")]))),
        "weights.png": lambda: model.plot_weights(model.epoch, image_shape=shape),
        "biases.png": lambda: model.plot_bias(model.epoch),
        "training_curves.png": lambda: _curves(metrics_csv),
    }
    notes = []
    if shape is None:
        notes.append(f"{', '.join(IMAGE_FIGURES)} not drawn: rows of {model.n_visible} values have no image shape; "
                     "give it with --image-shape HEIGHTxWIDTH (data.image_shape), then `rkm plot RUN_DIR` draws them")
    for name, draw in drawers.items():
        if shape is None and name in IMAGE_FIGURES:
            continue
        try:
            _files.check_output(folder / name, "", "remove or rename it", ConfigError, replaced=True)
            figure = draw()
            if figure is not None:
                plots.save(figure, folder / name)
        except RKMError as err:
            notes.append(f"{name} not drawn: {err}")
        except Exception as err:  # a figure never costs the results: it is reported instead
            notes.append(f"{name} not drawn: {type(err).__name__}: {err}")
    for note in notes:
        logger.info("%s", note)
    return notes


def _curves(metrics_csv: Path) -> Figure | None:
    rows = read_metrics(metrics_csv) if metrics_csv.exists() else []
    return plots.training_curves(rows) if rows else None
