"""Everything that exists so that pyrkm 0.1.0's scripts and files work in rkm.

=================  =================================================================
module             what it holds
=================  =================================================================
``utils``          pyrkm's ``utils``: thin adapters over rkm's metrics, plots and data
``classifier``     pyrkm's ``classifier``: its small CNN and training loop
``circuit_utils``  pyrkm's ``circuit_utils``: a resistor network on any networkx graph
``pickles``        pyrkm's pickled save points, read without running code (``rkm convert-pyrkm``)
=================  =================================================================

pyrkm's module names stay importable at the top (``rkm.utils``, ``rkm.rbm``, ``rkm.rkm``,
``rkm.classifier``, ``rkm.circuit_utils``) as one-line re-exports, so a pyrkm script ports
by renaming one word. These modules hold no physics of their own. Internal: ``_synthetic``
(the entropy-matched synthetic images behind ``generate_S_matrix`` and
``generate_synthetic_data``).
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["circuit_utils", "classifier", "pickles", "utils"])
