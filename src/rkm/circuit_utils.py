"""pyrkm 0.1.0's module ``pyrkm.circuit_utils``: the names of :mod:`rkm.compat.circuit_utils`."""
from .compat.circuit_utils import *  # noqa: F403
from .compat.circuit_utils import __all__  # noqa: F401
