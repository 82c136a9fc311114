"""rkm: Restricted Kirchhoff Machines, simulated, trained and verified against the circuit.

``RKM`` and ``RBM`` implement the documented API of pyrkm 0.1.0; ``load_model`` reads the
save points ``train`` writes (safetensors, never pickles).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    from .checkpoint import save_model
    from .machine import RBM, RKM, load_model

__version__ = "0.1.0"

_LAZY = {"RBM": "machine", "RKM": "machine", "load_model": "machine", "save_model": "checkpoint"}


def __getattr__(name: str) -> Any:
    """``RBM``, ``RKM``, ``load_model``, ``save_model`` and every submodule, imported on first use.

    ``import rkm`` itself imports nothing heavy (no torch), so the ``rkm`` command can turn a
    Ctrl-C during its start-up into a quiet exit.
    """
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    else:
        try:
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    globals()[name] = value
    return value

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
    "RunInUseError",
    "StorageError",
    "NgspiceNotFoundError",
    "SimulationError",
    "__version__",
]
