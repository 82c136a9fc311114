"""The RBM and the Restricted Kirchhoff Machine: pyrkm's API as a facade over a network and a trainer.

:class:`RBM` and :class:`RKM` hold a :class:`~rkm.core.network.Network` (the physics) and a
:class:`~rkm.training.Trainer` (the learning); :func:`load_model` and :func:`restore` build
a model from a save point, after checking it against the schema of its configuration.
"""

from ._learning import import_parameters
from ._loading import load_model, restore
from ._model import RBM, RKM

__all__ = ["RBM", "RKM", "import_parameters", "load_model", "restore"]
