"""Training: negative phases, the step's pieces, the trainer, the loop, monitoring.

=====================  ===========================================================
module                 what it holds
=====================  ===========================================================
``_accounting``        the passes of one update and their power (``PassRecorder``)
``phases``             negative phases, registered by ``train_algo`` name
``optim``              the gradient, centering, L1/L2, optimisers registered by name
``local``              the local learning rule: each edge's update from its readings in the twins
``pulse``              the ``pulse`` optimiser: one programming pulse per device and update
``trainer``            :class:`Trainer`: one update and the training state
``_finite``            the check that stops training at the first NaN or inf
``loop``               mini-batches, :func:`fit` with callbacks, Ctrl-C
``_monitor``           reconstruction errors drawn from a generator of their own
=====================  ===========================================================
"""

from . import pulse  # registers optimizer='pulse'
from ._monitor import evaluation_rng, monitored_error
from .loop import batches, fit, pass_seed
from .trainer import Trainer, UpdateResult

__all__ = ["Trainer", "UpdateResult", "batches", "evaluation_rng", "fit", "monitored_error", "pass_seed", "pulse"]
