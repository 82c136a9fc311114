"""rkm: Restricted Kirchhoff Machines, simulated, trained and verified against the circuit.

``RKM`` and ``RBM`` implement the documented API of pyrkm 0.1.0; ``load_model`` reads the
save points ``train`` writes (safetensors, never pickles).
"""

from .checkpoint import save_model
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

__version__ = "0.1.0"

__all__ = [
    "RBM",
    "RKM",
    "load_model",
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
