"""The circuit as hardware: explicit netlists, SPICE and ngspice, energy meters, the energy study.

=================  =================================================================
module             what it holds
=================  =================================================================
``netlist``        the explicit resistor network of a pass and its sparse Kirchhoff solve
``spice``          SPICE decks of a netlist; ngspice's operating point and transients
``meters``         energy meters: CPU package through RAPL, NVIDIA GPUs through NVML
``energy``         the energy study: time, power and energy of the circuit vs a digital RBM
=================  =================================================================

These modules are the independent ground truth the physics is tested against, and the
hardware view of a trained machine. A new energy meter goes in ``meters``.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["energy", "meters", "netlist", "spice"])
