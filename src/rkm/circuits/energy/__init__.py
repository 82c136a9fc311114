"""The energy study: time, power and energy of one operation, for the circuit and a digital RBM.

For a list of sizes N (``n_visible = n_hidden = N``, or the shape of a trained model) the
study makes one row per system, operation, size and batch:

* ``rkm-circuit``: the resistor network, from the physics in SI units (:mod:`rkm.core.units`).
  A synthetic machine has fixed conductance statistics, ``W_ji ~ Normal(0, weight_std)``,
  biases ``~ Normal(0, bias_std)``, whatever N. Its forward power is the mean over
  ``samples`` random 0/1 visible states, the backward power over the hidden samples the
  model's comparator draws from them; a pass lasts ``ln(1/eps)`` slowest relaxation times
  of its direction and uses power x duration (plus comparator decisions). One sample per
  pass, so ``batch`` is 1.
* ``rbm-cpu``, ``rbm-cuda``: the same operation as a plain RBM in torch on that device:
  the ``batch x n_visible`` by ``n_visible x n_hidden`` product plus the Bernoulli
  sampling, timed with ``torch.utils.benchmark.Timer`` (warm-up, blocks of calls, median
  and quartiles, accelerator synchronised). Energy comes from a real meter where one
  exists (:mod:`rkm.circuits.meters`: RAPL for the CPU package, NVML for the GPU) integrated over a
  separate window of calls, with the idle baseline measured before and reported apart;
  without a meter it is left empty (``not measured``), or estimated from ``--cpu-watts``
  and labelled ``estimate``.

Operations: ``pass`` (one forward pass, visible clamped), ``gibbs`` (a forward and a
backward pass), ``update`` (one CD/PCD-k training update: k + 1 forward and k backward
passes and the learning step; the digital one forms the two contrastive products and steps
the parameters, the circuit's twin networks run the data pass and the chain at the same time,
then every device compares its readings and the pulsed devices are pulsed, with the units'
time and energy per comparison and per pulse; ``Settings.update_model='sequential'`` times
the passes one after the other on one network instead).

Power laws ``y = a N^b`` are fitted by least squares on log-log over the large sizes, where a
series has :data:`MIN_SIZES` sizes or more (:func:`fit_power_law`, with a t-based confidence
interval of ``b``); two fits cross at ``N* = (a2 / a1)^(1 / (b1 - b2))``, reported only where
both exponents are determined and distinguishable and ``N*`` lies near the fitted sizes
(:func:`compare`, :func:`crossovers`). A study of one size (a trained model) has no fit: its
summary is a table of its numbers and its figure a bar chart.

=============  =====================================================================
module         what it holds
=============  =====================================================================
``_cost``      the circuit's cost of a pass, a Gibbs step and an update, in SI units
``_digital``   the digital RBM's operations in torch and their timing
``_study``     the settings, the study driver and its rows (circuit and digital)
``_fits``      power-law fits of the rows and the crossovers of two fits
``_report``    ``energy.csv``, the figure and the terminal summary
=============  =====================================================================

The study's names are imported here from those modules (``from rkm.circuits import energy;
energy.run_study(...)``). The ``rkm energy`` command that runs it belongs to the application
layer (:mod:`rkm.app`).
"""

from ._cost import UPDATE_MODELS, Cost, circuit_costs, devices_of, synthetic_machine
from ._digital import DigitalRBM, time_call
from ._fits import (
    EXTRAPOLATION,
    MIN_SIZES,
    QUANTITIES,
    Crossover,
    Fit,
    compare,
    comparisons,
    crossovers,
    fit_power_law,
    fit_rows,
)
from ._report import plot_study, read_csv, summary_text, write_csv
from ._study import CIRCUIT, COLUMNS, DEFAULT_SIZES, ESTIMATE, NOT_MEASURED, OPERATIONS, Settings, Study, run_study

__all__ = [
    "OPERATIONS", "CIRCUIT", "COLUMNS", "QUANTITIES", "DEFAULT_SIZES", "NOT_MEASURED", "ESTIMATE", "MIN_SIZES",
    "EXTRAPOLATION", "UPDATE_MODELS",
    "Cost", "Settings", "Study", "Fit", "Crossover", "synthetic_machine", "circuit_costs", "devices_of", "DigitalRBM",
    "time_call", "run_study", "fit_power_law", "fit_rows", "compare", "comparisons", "crossovers",
    "write_csv", "read_csv", "plot_study", "summary_text",
]
