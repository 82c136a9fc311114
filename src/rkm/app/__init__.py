"""Applications: training runs on disk, sweeps, and the ``rkm`` command.

=================  =================================================================
module             what it holds
=================  =================================================================
``run``            configurations, run folders, ``metrics.csv``, figures, summaries
``sweep``          every combination of a grid of settings over seeds, on Dask distributed
=================  =================================================================

Internal: ``_cli`` (the ``rkm`` command's parser and its subcommands; a new command goes
here) and ``_runfolder`` (run-folder locks and checked resumes). Only the applications
import the applications.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["run", "sweep"])
