"""rkm: Restricted Kirchhoff Machines, simulated, trained and verified against the circuit.

The names users write most are here: :class:`RKM` and :class:`RBM`, :func:`load_model`,
:func:`save_model`, the typed errors, and pyrkm 0.1.0's 22 top-level names, so a pyrkm
script ports by changing the word ``pyrkm`` to ``rkm``. The rest lives in subpackages by
what it is for:

=================  =================================================================
subpackage         what it is for
=================  =================================================================
``core``           the physical machine: physics, comparators, devices, network, units
``training``       negative phases, optimisers, the trainer and its loop
``machine``        the ``RBM`` / ``RKM`` facade (pyrkm's API) and loading save points
``evaluation``     sample quality, exact laws, AIS, likelihoods
``circuits``       explicit netlists, SPICE and ngspice, energy meters, the energy study
``io``             datasets and save-point files
``app``            runs on disk, sweeps, the ``rkm`` command
``compat``         pyrkm's modules and pickles
=================  =================================================================

plus the modules :mod:`rkm.hyperparams` (the one table of settings), :mod:`rkm.plots`,
:mod:`rkm.sklearn` and :mod:`rkm.errors`. ``import rkm`` imports no torch: every name and
subpackage is imported on first use.
"""

from __future__ import annotations

import logging as _logging
from typing import TYPE_CHECKING

import lazy_loader as _lazy

from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    NgspiceNotFoundError,
    RKMError,
    RunInUseError,
    SimulationError,
    StorageError,
)

if TYPE_CHECKING:
    from .compat.classifier import CustomDataset, SimpleClassifier, show_classification, train_classifier
    from .compat.utils import (
        Compute_FID,
        Compute_S,
        ComputeAATS,
        Covariance_error,
        PowerSpectrum_MSE,
        Third_moment_error,
        binarize_image,
        ensure_dir,
        generate_S_matrix,
        generate_synthetic_data,
        getbasebias,
        make_grid,
        my_entropy,
        show_and_save,
        unpickle,
    )
    from .io.savepoints import save_model
    from .machine import RBM, RKM, load_model

__version__ = "0.1.0"

_logging.getLogger(__name__).addHandler(_logging.NullHandler())
# rkm's messages go to the logger "rkm" and its children; like any library, rkm attaches no other handler:
# the application (the rkm command, a script's logging.basicConfig) decides what is shown.

PYRKM_NAMES = (
    "RBM", "RKM", "load_model", "show_and_save", "make_grid", "getbasebias", "Covariance_error",
    "Third_moment_error", "PowerSpectrum_MSE", "ComputeAATS", "Compute_FID", "Compute_S", "generate_S_matrix",
    "generate_synthetic_data", "my_entropy", "binarize_image", "CustomDataset", "SimpleClassifier",
    "train_classifier", "show_classification", "ensure_dir", "unpickle",
)
"""The 22 names pyrkm 0.1.0 exports, in its order."""

_CLASSIFIER = ("CustomDataset", "SimpleClassifier", "train_classifier", "show_classification")
SUBPACKAGES = ("core", "training", "machine", "evaluation", "circuits", "io", "app", "compat")
"""rkm's subpackages, from the physics up."""

_MODULES = (*SUBPACKAGES, "errors", "hyperparams", "plots", "sklearn", "utils", "rbm", "rkm", "classifier",
            "circuit_utils")

__getattr__, _, _ = _lazy.attach(
    __name__,
    submodules=list(_MODULES),
    submod_attrs={
        "machine": ["RBM", "RKM", "load_model"],
        "io.savepoints": ["save_model"],
        "compat.classifier": list(_CLASSIFIER),
        "compat.utils": [name for name in PYRKM_NAMES if name not in ("RBM", "RKM", "load_model", *_CLASSIFIER)],
    },
)

__all__ = [
    "RBM", "RKM", "load_model", "show_and_save", "make_grid", "getbasebias", "Covariance_error",
    "Third_moment_error", "PowerSpectrum_MSE", "ComputeAATS", "Compute_FID", "Compute_S", "generate_S_matrix",
    "generate_synthetic_data", "my_entropy", "binarize_image", "CustomDataset", "SimpleClassifier",
    "train_classifier", "show_classification", "ensure_dir", "unpickle",
    "PYRKM_NAMES",
    "SUBPACKAGES",
    "save_model",
    "RKMError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "CheckpointError",
    "RunInUseError",
    "StorageError",
    "NgspiceNotFoundError",
    "SimulationError",
    "__version__",
]


def __dir__() -> list[str]:
    """The public names and the modules, without the helpers this file imports."""
    return sorted({*__all__, *_MODULES})
