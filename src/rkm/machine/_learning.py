"""The seed methods of learning, as a mixin of :class:`rkm.machine.RBM`, and pretraining.

:class:`Learning`: derivatives, steps, clipping, training, pretraining;
:func:`import_parameters` copies the parameters of a save point into a model (``pretrain``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from .. import hyperparams
from ..core import _checks
from ..errors import ConfigError, DataError
from ..io import savepoints
from ..training import batches, fit
from ..training.callbacks import Reporter, SavePoints
from ..training.loop import Callback
from ..training.optim import Gradient
from . import _schema
from ._passes import Boltzmann

logger = logging.getLogger("rkm.training")


class Learning(Boltzmann):
    """The seed methods of learning: derivatives, steps, clipping, training, pretraining."""

    # ------------------------------------------------------------- learning
    def derivatives(self, v: Any, h: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy derivatives on samples ``(v, h)``, AVERAGED over the batch.

        The reference returned per-sample tensors of shape (N, n_hidden, n_visible); this is
        one matrix product.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        h : Tensor or array, shape (N, n_hidden)

        Returns
        -------
        dEdW : Tensor, shape (n_hidden, n_visible)
            ``-mean_n (h_n - oh)(v_n - ov)^T`` (centering offsets ``ov``, ``oh`` are 0 without
            centering).
        dEdv_bias : Tensor, shape (n_visible,)
            ``-mean_n v_n``.
        dEdh_bias : Tensor, shape (n_hidden,)
            ``-mean_n h_n``.
        """
        v, _ = self._batch(v, self.n_visible, "v")
        h, _ = self._batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        return self.trainer.derivatives(v, h)

    def derivatives_hopfield(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Derivatives of the bilinear energy, the same as :meth:`derivatives`.

        Parameters
        ----------
        v : Tensor, shape (N, n_visible)
        h : Tensor, shape (N, n_hidden)

        Returns
        -------
        dEdW, dEdv_bias, dEdh_bias : Tensor
            As :meth:`derivatives`.
        """
        return self.trainer.derivatives(v, h)

    def clip_weights(self) -> None:
        """Clip ``W`` to [min_W, max_W] in place."""
        self.network.clip_weights()

    def clip_bias(self) -> None:
        """Clip both biases to [min_W, max_W] in place."""
        self.network.clip_bias()

    def after_step_keepup(self) -> None:
        """Keep parameters in range after an update (clipping); training calls it after every step."""
        self.clip_weights()
        self.clip_bias()

    def SGD_update(self, dEdW_data: torch.Tensor, dEdW_model: torch.Tensor, dEdv_bias_data: torch.Tensor,
                   dEdv_bias_model: torch.Tensor,
                   dEdh_bias_data: torch.Tensor, dEdh_bias_model: torch.Tensor) -> None:
        """One SGD step ``lr * (-dE_data + dE_model)`` plus centering and regularisation terms, then clipping.

        Parameters
        ----------
        dEdW_data, dEdW_model : Tensor, shape (n_hidden, n_visible)
            Weight derivatives (:meth:`derivatives`) on the data and on the model's samples.
        dEdv_bias_data, dEdv_bias_model : Tensor, shape (n_visible,)
            Visible-bias derivatives.
        dEdh_bias_data, dEdh_bias_model : Tensor, shape (n_hidden,)
            Hidden-bias derivatives.
        """
        self._step("SGD", None, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model)

    def Adam_update(self, t: int, dEdW_data: torch.Tensor, dEdW_model: torch.Tensor, dEdv_bias_data: torch.Tensor,
                    dEdv_bias_model: torch.Tensor,
                    dEdh_bias_data: torch.Tensor, dEdh_bias_model: torch.Tensor) -> None:
        """One bias-corrected Adam step (beta1 0.9, beta2 0.999, eps 1e-8) at time step ``t``.

        L2 and L1 terms shrink the parameters (the reference added L2 with the wrong sign).

        Parameters
        ----------
        t : int
            Time step of the bias correction (1 for the first step).
        dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model : Tensor
            As in :meth:`SGD_update`.
        """
        self._step("Adam", t, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model)

    def _step(self, optimizer: str, t: Any, *derivatives: torch.Tensor) -> None:
        dW_d, dW_m, dv_d, dv_m, dh_d, dh_m = derivatives
        self.trainer.apply(Gradient.given(dW_m - dW_d, dv_m - dv_d, dh_m - dh_d), optimizer=optimizer, t=t)

    # ------------------------------------------------------------- training
    def train(self, train_data: Any, test_data: Any = [], print_error: bool = False,  # noqa: B006 - the seed's
              print_test_error: bool = False, model_state_path: Any = "model_states/", print_every: int = 100, *,
              progress: bool = False, save: bool = True, callback: Callable[[Any], None] | None = None,
              values: str = "binary") -> None:
        """Train for ``max_epochs`` gradient updates (mini-batches), continuing from ``epoch``.

        Parameters
        ----------
        train_data : DataLoader, iterable of batches, Tensor or numpy array
            Arrays are split into shuffled mini-batches of ``batch_size`` (an order that
            depends only on ``seed`` and the pass, so resumed runs are bit-identical). An
            iterable of batches resumes bit-identically only if its order is reproducible:
            a DataLoader without shuffling, a list; a shuffling DataLoader or a generator
            resumes at the right position in the pass but with other batches, and a
            RuntimeWarning says so (:func:`rkm.training.loop.exact_order`).
        test_data : Tensor or array, optional
            Held-out data for ``print_test_error``.
        print_error, print_test_error : bool
            Log the reconstruction error (k=1) of the current batch / of ``test_data``
            every ``print_every`` updates (logger ``rkm.training``, INFO). rkm, a library,
            attaches no handler: a script shows these lines (pyrkm printed them) with
            ``logging.basicConfig(level=logging.INFO)``, or passes ``progress=True``.
        model_state_path : str
            Folder of the save points, written at ``t_to_save``.
        print_every : int
        progress : bool
            Show a tqdm progress bar (updates/s, error, power).
        save : bool
            Write save points (default True, as the reference).
        callback : callable, optional
            Called as ``callback(model)`` after every update.
        values : {'binary', 'probabilities', 'any'}
            What the data may hold: 0/1 units (default; anything else is a DataError that says
            how to binarise it: ``rkm.io.datasets.binarize(x, threshold=0.5)``, 0-255 images
            included), values in [0, 1] clamped as they are (the visible nodes held at those
            voltages: probabilities of on pixels), or any number (unchecked, as scikit-learn's
            ``BernoulliRBM``).

        Unlike the reference, training stops exactly at ``max_epochs`` (the reference
        finished the running pass over the data first).
        """
        print_every = _checks.integer("print_every", print_every)
        print_error, print_test_error, progress, save = (_checks.boolean(name, value) for name, value in (
            ("print_error", print_error), ("print_test_error", print_test_error), ("progress", progress),
            ("save", save)))
        model_state_path = _checks.folder("model_state_path", model_state_path)
        values = _checks.choice("values", values, _checks.VALUES)
        hyperparams.MODEL["model_name"].validate(self.model_name)
        if callback is not None and not callable(callback):
            raise ConfigError(f"callback must be callable as callback(model), got {type(callback).__name__}.")
        test = None
        if print_test_error:
            if test_data is None or len(test_data) == 0:
                raise DataError("print_test_error=True needs test_data.")
            test = self._batch(test_data, self.n_visible, "test_data")[0]
        self.network.physics()
        self.trainer.check()
        source = batches(train_data, n_visible=self.n_visible, batch_size=self.batch_size, epoch=self.epoch,
                         seed=self.seed, dtype=self.mytype, device=self.device, values=values)
        callbacks: list[Callback] = []
        if callback is not None:
            callbacks.append(lambda update: callback(self))
        if save:
            callbacks.append(SavePoints(self, model_state_path))
        reporter = Reporter(self, print_every, print_error, test, progress)
        callbacks.append(reporter)
        try:
            fit(self.trainer, reporter.watch(source), callbacks,
                on_interrupt=lambda: self._interrupted(model_state_path))
        finally:
            reporter.close()
        logger.info("*** Training finished at update %d", self.epoch)

    def _interrupted(self, folder: Any) -> None:
        path = savepoints.save_model(self, folder)
        logger.warning("Interrupted at update %d; resumable save point written to %s", self.epoch, path)

    def pretrain(self, pretrained_model: str, model_state_path: Any = "model_states/") -> bool:
        """Import W, h_bias and v_bias from the latest save point of ``pretrained_model``.

        Parameters
        ----------
        pretrained_model : str
            ``model_name`` of the trained model (same ``n_visible`` and ``n_hidden``).
        model_state_path : str
            Folder of its save points.

        Returns
        -------
        bool
            True if a save point was found, False otherwise (logged, as the reference).
        """
        return import_parameters(self, pretrained_model, model_state_path)


def import_parameters(model: Any, name: str, model_state_path: Any = "model_states/") -> bool:
    """Copy W, v_bias and h_bias of the latest save point of ``name`` into ``model``."""
    name = hyperparams.MODEL["model_name"].validate(name)
    model_state_path = _checks.folder("model_state_path", model_state_path)
    points = savepoints.list_savepoints(model_state_path, name)
    if not points:
        savepoints.refuse_pickles(model_state_path, name)
        logger.info("No load points for %s in %s", name, model_state_path)
        return False
    update, path = points[-1]
    tensors, header = savepoints.read_savepoint(path)
    _schema.check(tensors, header, path)
    if tuple(tensors["W"].shape) != (model.n_hidden, model.n_visible):
        raise DataError(
            f"save point {path} has W of shape {tuple(tensors['W'].shape)}, this model needs "
            f"{(model.n_hidden, model.n_visible)}; pretrain from a model of the same size."
        )
    model.W, model.v_bias, model.h_bias = (tensors[k].clone() for k in ("W", "v_bias", "h_bias"))
    logger.info("Using as pretraining model %s at update %d", name, update)
    return True
