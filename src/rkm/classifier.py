"""pyrkm 0.1.0's module ``pyrkm.classifier``: the names of :mod:`rkm.compat.classifier`."""
from .compat.classifier import *  # noqa: F403
from .compat.classifier import __all__  # noqa: F401
