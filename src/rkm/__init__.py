"""rkm: Restricted Kirchhoff Machines, simulated, trained and verified against the circuit.

rkm implements the public API of pyrkm 0.1.0: its 22 top-level names below and its
modules ``rkm.rbm``, ``rkm.rkm``, ``rkm.utils``, ``rkm.classifier`` and
``rkm.circuit_utils``, so a script ports by changing the word ``pyrkm`` to ``rkm``.
``load_model`` reads the save points ``train`` writes (safetensors, never pickles).
"""

from .checkpoint import save_model
from .classifier import CustomDataset, SimpleClassifier, show_classification, train_classifier
from .errors import (
    CheckpointError,
    ConfigError,
    DataError,
    DatasetNotFoundError,
    NgspiceNotFoundError,
    RKMError,
    SimulationError,
)
from .machine import RBM, RKM, load_model
from .utils import (
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

__version__ = "0.1.0"

PYRKM_NAMES = (
    "RBM", "RKM", "load_model", "show_and_save", "make_grid", "getbasebias", "Covariance_error",
    "Third_moment_error", "PowerSpectrum_MSE", "ComputeAATS", "Compute_FID", "Compute_S", "generate_S_matrix",
    "generate_synthetic_data", "my_entropy", "binarize_image", "CustomDataset", "SimpleClassifier",
    "train_classifier", "show_classification", "ensure_dir", "unpickle",
)
"""The 22 names pyrkm 0.1.0 exports, in its order."""

__all__ = [
    "RBM", "RKM", "load_model", "show_and_save", "make_grid", "getbasebias", "Covariance_error",
    "Third_moment_error", "PowerSpectrum_MSE", "ComputeAATS", "Compute_FID", "Compute_S", "generate_S_matrix",
    "generate_synthetic_data", "my_entropy", "binarize_image", "CustomDataset", "SimpleClassifier",
    "train_classifier", "show_classification", "ensure_dir", "unpickle",
    "PYRKM_NAMES",
    "save_model",
    "RKMError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "CheckpointError",
    "NgspiceNotFoundError",
    "SimulationError",
    "__version__",
]
