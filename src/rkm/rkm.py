"""pyrkm 0.1.0's module ``pyrkm.rkm``: ``from rkm.rkm import RKM`` is :class:`rkm.RKM`."""

from .machine import RKM

__all__ = ["RKM"]
