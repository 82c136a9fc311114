"""The physical machine: a resistor network with comparators, in closed form.

=================  =================================================================
module             what it holds
=================  =================================================================
``physics``        node voltages, dissipated power, relaxation times (pure tensor functions)
``comparators``    how a node's analog input becomes a binary unit; register a new one here
``devices``        device non-idealities: programmed parameters -> realised conductances
``network``        :class:`~rkm.core.network.Network`: parameters, supplies, comparator, devices, passes
``units``          code units to SI (ohms, volts, farads, seconds, watts, joules)
``hopfield``       the Boltzmann energy of the plain RBM (``energy_type='hopfield'``)
=================  =================================================================

Internal: ``_checks`` (input checks shared by every module), ``_products`` (the matrix
products of a pass, with the fast float32 / int8 paths), ``_registry`` (the registries of
the variation points). The core imports nothing of rkm but :mod:`rkm.errors`.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(
    __name__, submodules=["comparators", "devices", "hopfield", "network", "physics", "units"])
