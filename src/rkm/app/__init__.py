"""Applications: training runs on disk, sweeps, and the ``rkm`` command.

=================  =================================================================
module             what it holds
=================  =================================================================
``config``         run configurations: defaults, presets, TOML files, checks, the learning-rate schedule
``metrics_log``    ``metrics.csv``: its columns, the quality columns, the callback that writes it
``run``            run folders: their data and model, training, figures, summaries
``sweep``          every combination of a grid of settings over seeds, on Dask distributed
=================  =================================================================

Internal: ``_cli`` (the ``rkm`` command's parser and its subcommands; a new command goes
here), ``_runfolder`` (run-folder locks and checked resumes), and the parts of a sweep:
``_sweep_plan`` (grid, seeds and the checked runs), ``_sweep_worker`` (one run on a Dask
worker) and ``_sweep_results`` (``results.csv`` and ``summary.png``). Only the applications
import the applications.
"""

import lazy_loader as _lazy

__getattr__, __dir__, __all__ = _lazy.attach(__name__, submodules=["config", "metrics_log", "run", "sweep"])
