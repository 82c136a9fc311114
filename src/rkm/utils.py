"""pyrkm 0.1.0's module ``pyrkm.utils``: the names of :mod:`rkm.compat.utils`."""
from .compat.utils import *  # noqa: F403
from .compat.utils import __all__  # noqa: F401
