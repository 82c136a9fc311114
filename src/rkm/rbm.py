"""pyrkm 0.1.0's module ``pyrkm.rbm``: ``from rkm.rbm import RBM`` is :class:`rkm.RBM`."""

from .machine import RBM

__all__ = ["RBM"]
