"""The RBM and the Restricted Kirchhoff Machine: the seed API over a network and a trainer.

``RBM`` and ``RKM`` implement the documented API of pyrkm 0.1.0 (see
``shared/seed/RKM-api-reference.txt``): the same constructor, the same methods with the
same arguments and return values, so scripts port by changing the import. Where the
reference is broken its documented intent is implemented instead; the differences are
listed in the README ("Differences from pyrkm").

A model is a facade over two objects:

* ``model.network`` (:class:`rkm.core.network.Network`): parameters, supplies, comparator, device
  non-idealities, generator and the passes;
* ``model.trainer`` (:class:`rkm.training.Trainer`): the update and the training state.

Every constructor argument is checked against the one table of settings
(:mod:`rkm.hyperparams`) and held by one of them; ``model.lr = 0.01`` or
``model.offset = 0.5`` after construction is checked the same way and reaches the object that
holds it. Every seed method is a short delegate.

One class serves both energies. ``energy_type='hopfield'`` (the ``RBM`` default) is the
plain Bernoulli RBM; ``energy_type='RKM'`` (the ``RKM`` default) is the resistor network.
Power and relaxation times are those of the resistor network these parameters define, for
either energy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import hyperparams, plots
from ..core import _checks, comparators, hopfield, physics
from ..core.devices import Devices
from ..core.network import Network
from ..core.units import DEFAULT_UNITS, Readings, Units, readings
from ..errors import CheckpointError, ConfigError, DataError
from ..io import savepoints
from ..training import Trainer, batches, fit, phases
from ..training.callbacks import Reporter, SavePoints
from ..training.loop import Callback
from ..training.optim import Gradient
from . import _schema

logger = logging.getLogger("rkm.training")

_PASS_TENSORS = 4
"""Tensors of a batch's size that a pass holds at once (comparator input, probability, noise, sample)."""


class _Setting:
    """A setting held by the model's network or trainer: read there, checked when assigned."""

    def __init__(self, setting: hyperparams.Setting, attribute: str | None = None) -> None:
        self.setting, self.attribute = setting, attribute or setting.name
        self.__doc__ = setting.help

    def __get__(self, model: Any, cls: type | None = None) -> Any:
        if model is None:
            return self
        return getattr(getattr(model, self.setting.owner), self.attribute)

    def __set__(self, model: Any, value: Any) -> None:
        if not self.setting.mutable:
            raise AttributeError(f"{self.setting.name} is fixed at construction"
                                 + ("; use model.to(...)" if self.setting.name in ("mytype", "device") else "") + ".")
        setattr(getattr(model, self.setting.owner), self.attribute, self.setting.validate(value))


class _Attribute:
    """A plain attribute of the model's network or trainer (state, not a setting)."""

    def __init__(self, owner: str, name: str, doc: str) -> None:
        self.owner, self.name, self.__doc__ = owner, name, doc

    def __get__(self, model: Any, cls: type | None = None) -> Any:
        return self if model is None else getattr(getattr(model, self.owner), self.name)

    def __set__(self, model: Any, value: Any) -> None:
        setattr(getattr(model, self.owner), self.name, value)


def _constructor(energy_type: str) -> Callable[..., None]:
    signature = hyperparams.constructor_signature(energy_type)

    def __init__(self: RBM, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        self._build(arguments)

    __init__.__signature__ = signature  # type: ignore[attr-defined]
    return __init__


_DOC = """{summary}

{parameters}

Attributes
----------
W, v_bias, h_bias : Tensor
    The programmed parameters, shapes (n_hidden, n_visible), (n_visible,), (n_hidden,);
    assigning converts and checks the shape, in-place edits are seen by every later pass.
epoch : int
    Gradient updates done.
energy, power_f, power_b : Tensor
    Cumulative energy of every pass (float64) and the last update's forward/backward power.
relax_t_f, relax_t_b : Tensor
    Relaxation times of the hidden nodes (forward pass) and the visible nodes (backward pass).
network, trainer
    The physical core (:class:`rkm.core.network.Network`) and the trainer (:class:`rkm.training.Trainer`).
"""


class _Passes:
    """The seed methods of the passes: samples, comparator inputs, power, relaxation times."""

    network: Network
    trainer: Trainer

    def __getattr__(self, name: str) -> Any:
        """Adam's moments ``m_dW``... as pyrkm names them; the settings are descriptors of :class:`RBM`."""
        if name.startswith(("m_d", "v_d")) and "trainer" in self.__dict__:
            moments = self.trainer.optimizer_named("Adam").state_dict()
            if name in moments:
                return moments[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


    # ---------------------------------------------------------------- inputs
    def _batch(self, x: Any, n: int, name: str) -> tuple[torch.Tensor, bool]:
        return _checks.batch(x, n, name, self.mytype, self.device)

    def _beta(self, beta: Any) -> float:
        return self.model_beta if beta is None else _checks.beta(beta)

    def _layer(self, x: Any, forward: bool, name: str) -> tuple[torch.Tensor, bool]:
        tensor, single = self._batch(x, self.n_visible if forward else self.n_hidden, name)
        self.network.physics()
        return tensor, single

    # ------------------------------------------------------------ the passes
    def v_to_h(self, v: Any, beta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the hidden layer given the visible layer.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        beta : float, optional
            Inverse temperature; default ``model_beta``.

        Returns
        -------
        p_h : Tensor, shape (N, n_hidden)
            P(h = 1 | v) of the comparator in closed form (the reference returned the
            analog voltage here for the threshold comparators).
        h : Tensor, shape (N, n_hidden)
            Binary sample.
        """
        return self._sample(v, True, beta, "v")

    def h_to_v(self, h: Any, beta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the visible layer given the hidden layer; see :meth:`v_to_h`."""
        return self._sample(h, False, beta, "h")

    def _sample(self, x: Any, forward: bool, beta: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, single = self._layer(x, forward, name)
        p, s, _ = self.network.pass_(x, forward, self._beta(beta))
        return (p[0], s[0]) if single else (p, s)

    def delta_eh(self, v: Any) -> torch.Tensor:
        """Comparator input of each hidden unit given ``v``, shape (N, n_hidden).

        For the RBM this is the energy change ``v @ W.T + h_bias`` of switching the unit
        on; for the RKM it is the node voltage (times ``n_visible`` if layer-scaled). With
        comparator offsets (``comparator_offset``) each unit's offset voltage is taken from it
        first: ``scale (V - V_os)``.
        """
        return self._drive(v, True, "v")

    def delta_ev(self, h: Any) -> torch.Tensor:
        """Comparator input of each visible unit given ``h``; see :meth:`delta_eh`."""
        return self._drive(h, False, "h")

    def _drive(self, x: Any, forward: bool, name: str) -> torch.Tensor:
        x, single = self._layer(x, forward, name)
        out = self.network.drive(x, forward)[0]
        return out[0] if single else out

    def _bernoulli(self, x: torch.Tensor, beta: Any) -> tuple[torch.Tensor, torch.Tensor]:
        p = comparators.probability(comparators.Bernoulli(), x, _checks.beta(beta))
        u = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        return p, (u < p).to(x.dtype)

    def Bernoulli_v_to_h(self, v: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden sample with a sigmoid (Bernoulli) comparator whatever ``sampling`` is; returns ``(p_h, h)``."""
        return self._bernoulli(self.delta_eh(v), beta)

    def Bernoulli_h_to_v(self, h: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Visible sample with a sigmoid (Bernoulli) comparator; returns ``(p_v, v)``."""
        return self._bernoulli(self.delta_ev(h), beta)

    def Deterministic_v_to_h(self, v: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free hidden units ``[delta_eh(v) > 0]``; returns ``(h, h)``."""
        h = (self.delta_eh(v) > 0).to(self.mytype)
        return h, h

    def Deterministic_h_to_v(self, h: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free visible units ``[delta_ev(h) > 0]``; returns ``(v, v)``."""
        v = (self.delta_ev(h) > 0).to(self.mytype)
        return v, v

    def forward(self, v: Any, k: int, beta: float | None = None) -> torch.Tensor:
        """Run ``k`` Gibbs steps (v -> h -> v) from ``v``; ``k=0`` returns ``v`` (the reference raised).

        Returns
        -------
        Tensor, shape (N, n_visible)
            The visible sample after ``k`` steps.
        """
        k = _checks.integer("k", k, minimum=0)
        v, single = self._layer(v, True, "v")
        out = self.network.gibbs(v, k, self._beta(beta))
        return out[0] if single else out

    def generate(self, n_samples: int, k: int, h_binarized: bool = True, from_visible: bool = True,
                 beta: float | None = None) -> np.ndarray:
        """Generate samples by Gibbs sampling from random noise.

        Parameters
        ----------
        n_samples : int
        k : int
            Gibbs steps.
        h_binarized : bool
            With ``from_visible=False``: start from binary (True) or uniform analog hiddens.
        from_visible : bool
            Start from random binary visibles (True) or from random hiddens.
        beta : float, optional

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_visible)
        """
        n_samples = _checks.integer("n_samples", n_samples)
        k = _checks.integer("k", k, minimum=0)
        h_binarized = _checks.boolean("h_binarized", h_binarized)
        from_visible = _checks.boolean("from_visible", from_visible)
        beta = self._beta(beta)
        _checks.memory(f"generate(n_samples={n_samples})", _PASS_TENSORS * n_samples * (self.n_visible + self.n_hidden)
                      * self.mytype.itemsize, self.device, "generate fewer samples per call")
        net = self.network
        net.physics()
        if from_visible:
            v = net.random_visible(n_samples)
        else:
            h = net.random_hidden(n_samples) if h_binarized else torch.rand(
                (n_samples, self.n_hidden), generator=self.generator, dtype=self.mytype, device=self.device)
            v = net.pass_(h, False, beta).s
        return net.gibbs(v, k, beta).cpu().numpy()

    def reconstruct(self, data: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruct ``data`` after ``k`` Gibbs steps; returns the data and its reconstruction, (N, n_visible)."""
        data, _ = self._batch(data, self.n_visible, "data")
        return data.cpu().numpy(), self.forward(data, k).cpu().numpy()

    # --------------------------------------------------------------- physics
    def power_forward(self, v: Any) -> torch.Tensor:
        """Power dissipated by the forward pass (visible clamped), shape (N,).

        P = 1/2 sum over resistors of G dV^2 with the hidden nodes at their Kirchhoff
        voltages; always >= 0, for every offset.
        """
        return self._power(v, True, "v")

    def power_backward(self, h: Any) -> torch.Tensor:
        """Power dissipated by the backward pass (hidden clamped), shape (N,)."""
        return self._power(h, False, "h")

    def _power(self, x: Any, forward: bool, name: str) -> torch.Tensor:
        x, _ = self._layer(x, forward, name)
        return physics.pass_power(x, *self.network.numerator(x, forward))

    def av_power_forward(self, v: Any) -> torch.Tensor:
        """Mean of :meth:`power_forward` over the batch."""
        return self.power_forward(v).mean()

    def av_power_backward(self, h: Any) -> torch.Tensor:
        """Mean of :meth:`power_backward` over the batch."""
        return self.power_backward(h).mean()

    def relaxation_times(self) -> tuple[torch.Tensor, torch.Tensor]:
        """RC relaxation times 2 / G of the free nodes: ``(t_forward (n_hidden,), t_backward (n_visible,))``.

        The reference docstring swaps the two shapes. An isolated node has an infinite time.
        """
        return self.network.relaxation_times()


class _Boltzmann(_Passes):
    """pyrkm's energy methods for ``energy_type='hopfield'``, as delegates to :mod:`rkm.core.hopfield`.

    They use the realised parameters, the ones every pass uses (the programmed ones for ideal devices).
    """

    def _hopfield_only(self, method: str) -> None:
        if self.energy_type != "hopfield":
            raise ConfigError(
                f"{method} is the Boltzmann law of energy_type='hopfield'; this model's energy_type is "
                f"{self.energy_type!r}, whose Gibbs chain has no energy function in general (see "
                "RBM.free_energy). Use v_to_h / h_to_v for its conditionals (they return P(unit = 1))."
            )

    def free_energy(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """Free energy ``F(v)`` of each row, shape (N,), so that ``P(v) ~ exp(-F(v))``.

        For ``energy_type='hopfield'`` this is pyrkm's value,
        ``-sum_j softplus(beta (W v + b)_j) - beta v_bias . v`` (``rkm.core.hopfield``).

        An RKM (``energy_type='RKM'``) has no free energy in general: its forward pass
        divides hidden unit j's weights by the node conductance ``G_j`` and its backward
        pass divides visible unit i's by ``G_i``, so the two conditionals are not those of
        one Boltzmann law and its distribution is only the Gibbs chain's stationary law
        (``rkm.evaluation.exact.stationary_distribution``). pyrkm returned the Hopfield value of the RKM's
        parameters, which is not that law; ``_free_energy_hopfield`` still computes it.

        Raises
        ------
        ConfigError
            For ``energy_type='RKM'``, or a non-finite ``beta``.
        """
        self._hopfield_only("free_energy")
        return self._free_energy_hopfield(v, beta)

    def _free_energy_hopfield(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """Free energy of the bilinear (Hopfield) energy with this model's parameters, shape (N,)."""
        v, single = self._batch(v, self.n_visible, "v")
        W, a, b = self.network.realised_parameters()
        out = hopfield.free_energy(v, W, a, b, self._beta(beta))
        return out[0] if single else out

    def _energy_hopfield(self, v: Any, h: Any) -> torch.Tensor:
        """Bilinear energy ``-h . (W v) - v_bias . v - h_bias . h`` of each row pair, shape (N,)."""
        v, single = self._batch(v, self.n_visible, "v")
        h, _ = self._batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        out = hopfield.energy(v, h, *self.network.realised_parameters())
        return out[0] if single else out

    def _prob_h_given_v(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """``P(h = 1 | v) = sigmoid(beta (v W^T + h_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_h_given_v")
        v, single = self._batch(v, self.n_visible, "v")
        W, _, b = self.network.realised_parameters()
        out = hopfield.prob_h_given_v(v, W, b, self._beta(beta))
        return out[0] if single else out

    def _prob_v_given_h(self, h: Any, beta: float | None = None) -> torch.Tensor:
        """``P(v = 1 | h) = sigmoid(beta (h W + v_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_v_given_h")
        h, single = self._batch(h, self.n_hidden, "h")
        W, a, _ = self.network.realised_parameters()
        out = hopfield.prob_v_given_h(h, W, a, self._beta(beta))
        return out[0] if single else out


class _Learning(_Boltzmann):
    """The seed methods of learning: derivatives, steps, clipping, training, pretraining."""

    # ------------------------------------------------------------- learning
    def derivatives(self, v: Any, h: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Energy derivatives on samples ``(v, h)``, AVERAGED over the batch.

        Returns ``(dEdW, dEdv_bias, dEdh_bias)``: ``-mean_n (h_n - oh)(v_n - ov)^T``, ``-mean_n v_n``
        and ``-mean_n h_n`` (centering offsets are 0 without centering). The reference returned
        per-sample tensors of shape (N, n_hidden, n_visible); this is one matrix product.
        """
        v, _ = self._batch(v, self.n_visible, "v")
        h, _ = self._batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        return self.trainer.derivatives(v, h)

    def derivatives_hopfield(self, v: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Derivatives of the bilinear energy; see :meth:`derivatives`."""
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
        """One SGD step ``lr * (-dE_data + dE_model)`` plus centering and regularisation terms, then clipping."""
        self._step("SGD", None, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model)

    def Adam_update(self, t: int, dEdW_data: torch.Tensor, dEdW_model: torch.Tensor, dEdv_bias_data: torch.Tensor,
                    dEdv_bias_model: torch.Tensor,
                    dEdh_bias_data: torch.Tensor, dEdh_bias_model: torch.Tensor) -> None:
        """One bias-corrected Adam step (beta1 0.9, beta2 0.999, eps 1e-8) at time step ``t``.

        L2 and L1 terms shrink the parameters (the reference added L2 with the wrong sign).
        """
        self._step("Adam", t, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model)

    def _step(self, optimizer: str, t: Any, *derivatives: torch.Tensor) -> None:
        dW_d, dW_m, dv_d, dv_m, dh_d, dh_m = derivatives
        self.trainer.apply(Gradient.given(dW_m - dW_d, dv_m - dv_d, dh_m - dh_d), optimizer=optimizer, t=t)

    # ------------------------------------------------------------- training
    def train(self, train_data: Any, test_data: Any = [], print_error: bool = False,  # noqa: B006 - the seed's
              print_test_error: bool = False, model_state_path: Any = "model_states/", print_every: int = 100, *,
              progress: bool = False, save: bool = True, callback: Callable[[Any], None] | None = None) -> None:
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
            every ``print_every`` updates (logger ``rkm.training``, shown on stderr when
            logging is not configured).
        model_state_path : str
            Folder of the save points, written at ``t_to_save``.
        print_every : int
        progress : bool
            Show a tqdm progress bar (updates/s, error, power).
        save : bool
            Write save points (default True, as the reference).
        callback : callable, optional
            Called as ``callback(model)`` after every update.

        Unlike the reference, training stops exactly at ``max_epochs`` (the reference
        finished the running pass over the data first).
        """
        print_every = _checks.integer("print_every", print_every)
        print_error, print_test_error, progress, save = (_checks.boolean(name, value) for name, value in (
            ("print_error", print_error), ("print_test_error", print_test_error), ("progress", progress),
            ("save", save)))
        model_state_path = _checks.folder("model_state_path", model_state_path)
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
                         seed=self.seed, dtype=self.mytype, device=self.device)
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

        Returns True if a save point was found, False otherwise (logged, as the reference).
        """
        return import_parameters(self, pretrained_model, model_state_path)


class RBM(_Learning):
    __doc__ = _DOC.format(summary="A restricted Boltzmann machine with the pyrkm 0.1.0 API "
                          "(``energy_type='hopfield'``).",
                          parameters=hyperparams.parameters_doc())
    __init__ = _constructor("hopfield")

    network: Network
    trainer: Trainer

    def _build(self, a: dict[str, Any]) -> None:
        special = ("device", "generator", "average_data")
        v = {name: hyperparams.MODEL[name].validate(value) for name, value in a.items() if name not in special}
        if v["min_W"] >= v["max_W"]:
            raise ConfigError(f"min_W ({a['min_W']}) must be smaller than max_W ({a['max_W']}).")
        generator = None if a["generator"] is None else hyperparams.MODEL["generator"].validate(a["generator"])
        device = _checks.device(a["device"], generator)
        copies = 2 + (2 if v["optimizer"] == "Adam" else 0)  # W, one |W| temporary, Adam's two moments
        _checks.memory(f"a model of n_visible={v['n_visible']} and n_hidden={v['n_hidden']}",
                      copies * v["n_visible"] * v["n_hidden"] * v["mytype"].itemsize, device, "use smaller layers")
        self.model_name = v["model_name"]
        if generator is None:
            self.seed = v["seed"] if v["seed"] is not None else int(torch.randint(0, 2**63 - 1, ()).item())
            generator = torch.Generator(device=device).manual_seed(self.seed)
        else:
            self.seed = generator.initial_seed()
        average = None if a["average_data"] is None else self._vector(a["average_data"], v, device)
        if v["centering"] and average is None:
            raise ConfigError("centering=True needs average_data, the mean of the training data as a vector of "
                              f"n_visible={v['n_visible']} values (e.g. data.mean(0)).")
        self.average_data = average
        owned = {owner: {n: v[n] for n, s in hyperparams.MODEL.items() if s.owner == owner and n in v}
                 for owner in ("network", "trainer", "devices")}
        net = owned["network"]
        dtype = net.pop("mytype")
        self.network = Network(net.pop("n_visible"), net.pop("n_hidden"), generator=generator, device=device,
                               dtype=dtype, **net)
        self.network.initialise(average)
        self.network.devices = Devices(self.network, **owned["devices"])
        self.trainer = Trainer(self.network, average_data=average, after_step=self.after_step_keepup,
                               **owned["trainer"])

    @staticmethod
    def _vector(value: Any, settings: dict[str, Any], device: torch.device) -> torch.Tensor:
        n = settings["n_visible"]
        array = value if isinstance(value, torch.Tensor) else _checks.numeric_array(value, "average_data")
        tensor = torch.as_tensor(array, dtype=settings["mytype"], device=device)
        if tuple(tensor.shape) != (n,):
            raise DataError(f"average_data must have shape ({n},), got {tuple(tensor.shape)}.")
        if not bool(torch.isfinite(tensor).all()):
            raise DataError("average_data contains NaN or inf.")
        return tensor

    # ------------------------------------------------------------ parameters
    W = _Attribute("network", "W", "Programmed weights, shape (n_hidden, n_visible).")
    v_bias = _Attribute("network", "v_bias", "Programmed visible bias, shape (n_visible,).")
    h_bias = _Attribute("network", "h_bias", "Programmed hidden bias, shape (n_hidden,).")
    generator = _Attribute("network", "generator", "The model's torch.Generator: every random draw comes from it.")
    devices = _Attribute("network", "devices", "The device model (rkm.core.devices.Devices): conductance range, "
                         "levels, spread, write noise, comparator offsets.")
    uses_fast_matmul = _Attribute("network", "uses_fast_matmul", "Whether the fast float32 products are in effect.")
    epoch = _Attribute("trainer", "epoch", "Gradient updates done (pyrkm's name).")
    energy = _Attribute("trainer", "energy", "Cumulative energy of every pass, float64.")
    power_f = _Attribute("trainer", "power_f", "Forward power of the last update (sum of its passes' batch means).")
    power_b = _Attribute("trainer", "power_b", "Backward power of the last update.")

    @property
    def W_t(self) -> torch.Tensor:
        """``W.T``, always current; assigning sets ``W`` to the transpose (pyrkm scripts refresh it so)."""
        return self.network.W.t()

    @W_t.setter
    def W_t(self, value: Any) -> None:
        tensor = torch.as_tensor(value, dtype=self.mytype, device=self.device)
        if tuple(tensor.shape) != (self.n_visible, self.n_hidden):
            raise DataError(f"W_t must have shape {(self.n_visible, self.n_hidden)}, got {tuple(tensor.shape)}.")
        self.network.W = tensor.t()

    @property
    def _pcd(self) -> phases.PCD:
        phase = self.trainer.phase_named("PCD")
        assert isinstance(phase, phases.PCD)
        return phase

    @property
    def persistent_chains(self) -> torch.Tensor | None:
        """PCD's chains, shape (n_chains, n_visible); None before PCD has chains."""
        return self._pcd.chains

    @persistent_chains.setter
    def persistent_chains(self, value: Any) -> None:
        self._pcd.chains = torch.as_tensor(value, dtype=self.mytype, device=self.device)

    @property
    def ov(self) -> torch.Tensor | int:
        """Centering offset of the visible layer (0 without centering)."""
        return 0 if self.trainer.centering_state is None else self.trainer.centering_state.ov

    @property
    def oh(self) -> torch.Tensor | int:
        """Centering offset of the hidden layer (0 without centering)."""
        return 0 if self.trainer.centering_state is None else self.trainer.centering_state.oh

    @property
    def relax_t_f(self) -> torch.Tensor:
        """Relaxation times of the hidden nodes, shape (n_hidden,)."""
        return self.network.relaxation_times()[0]

    @property
    def relax_t_b(self) -> torch.Tensor:
        """Relaxation times of the visible nodes, shape (n_visible,)."""
        return self.network.relaxation_times()[1]

    @property
    def t_to_save(self) -> list[int]:
        """Updates at which ``train`` writes a save point: ~50 log-spaced in [1, max_epochs]."""
        points = np.round(np.logspace(0, np.log10(self.max_epochs), 50)).astype(int)
        return sorted(set(points.tolist()))

    def si(self, units: Units = DEFAULT_UNITS) -> Readings:
        """Power, energy and relaxation times in SI units (``rkm.core.units``); ``power_f``... stay in code units."""
        return readings(self, units)

    def realised_parameters(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The realised ``(W, v_bias, h_bias)`` the circuit sees (sign = terminal, magnitude = conductance)."""
        return self.network.realised_parameters()

    # ------------------------------------------------------------- save points
    def savepoint(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """The tensors and header of this model's save point (:func:`rkm.io.savepoints.save_model`)."""
        tensors = {**self.network.state_dict(), **self.trainer.state_dict()}
        if self.average_data is not None:
            tensors["average_data"] = self.average_data.detach().cpu().clone()
        bad = _schema.non_finite(tensors)
        if bad:
            raise DataError(f"the state of {self.model_name!r} at update {self.epoch} holds NaN or inf in {bad}; "
                            "it is not saved. Load the last save point.")
        config = {name: getattr(self, name) for name in _schema.CONFIG_KEYS}
        config.update(mytype=_checks.dtype_name(self.mytype), average_data=None)
        state = {"epoch": int(self.epoch), "seed": self.seed, "threshold_sharing": self.threshold_sharing,
                 "fast_matmul": self.fast_matmul, "rng_device": self.generator.device.type}
        return tensors, {"class": type(self).__name__, "config": config, "state": state}

    # --------------------------------------------------------------- moving
    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> RBM:
        """Move every tensor of the model to ``device`` and/or ``dtype``; returns self.

        A generator cannot move between devices: on a device change the model gets a new
        generator on the new device, seeded from the old one (still reproducible).
        """
        dtype = self.mytype if dtype is None else _checks.dtype(dtype, "dtype")
        device = self.device if device is None else _checks.device(device)
        self.network.to(device, dtype)
        self.trainer.to(device, dtype)
        if self.average_data is not None:
            self.average_data = self.average_data.to(device=device, dtype=dtype)
        return self

    # -------------------------------------------------------------- plotting
    def plot_weights(self, t: int, image_shape: tuple[int, int] | None = None, max_filters: int = 100) -> Figure:
        """Grid of the first ``max_filters`` hidden units' weights as images; returns the figure."""
        return plots.weight_grid(self.W, t, image_shape=image_shape, max_filters=max_filters)

    def plot_visible_bias(self, t: int, image_shape: tuple[int, int] | None = None) -> Figure:
        """Visible bias as an image with a colour bar; returns the figure."""
        return plots.bias_image(self.v_bias, t, image_shape=image_shape)

    def plot_bias(self, t: int) -> Figure:
        """Histograms of the hidden and visible biases; returns the figure."""
        return plots.bias_histograms(self.h_bias, self.v_bias, t)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, n_visible={self.n_visible}, "
            f"n_hidden={self.n_hidden}, energy_type={self.energy_type!r}, train_algo={self.train_algo!r}, "
            f"sampling={self.sampling!r}, epoch={self.epoch}, device={str(self.device)!r})"
        )


for _s in hyperparams.MODEL.values():
    if _s.owner in ("network", "trainer", "devices"):
        setattr(RBM, _s.name, _Setting(_s, "dtype" if _s.name == "mytype" else None))


class RKM(RBM):
    __doc__ = _DOC.format(summary="A Restricted Kirchhoff Machine: the RBM built as a resistor network "
                          "(``energy_type='RKM'``; https://arxiv.org/abs/2509.15842, ``rkm.core.physics``).",
                          parameters=hyperparams.parameters_doc())
    __init__ = _constructor("RKM")


# ------------------------------------------------------------------ loading
def restore(tensors: dict[str, torch.Tensor], header: dict[str, Any], device: Any = None, *,
            source: Any = "the save point") -> RBM:
    """Build the model a save point describes, in the exact state it was saved in.

    The header and tensors are checked against the schema (:mod:`rkm.machine._schema`) first; a
    CheckpointError that names ``source`` says what is wrong, and no model is returned.
    """
    config, state = _schema.check(tensors, header, source)
    device = _checks.device(device)
    if "average_data" in tensors:
        config["average_data"] = tensors["average_data"]
    cls = {"RKM": RKM, "RBM": RBM}[header["class"]]
    try:
        model = cls(**config, seed=state["seed"], device=device, threshold_sharing=state["threshold_sharing"])
    except (ConfigError, DataError) as err:
        raise CheckpointError(f"{source} describes a model that cannot be built here: {err}") from None
    fresh = {**model.network.state_dict(), **model.trainer.state_dict()}
    _schema.check_against(fresh, tensors, config, state, model.device, _schema.format_version(header), source)
    try:
        model.fast_matmul = state.get("fast_matmul")
    except ConfigError as err:
        logger.warning("save point asked for fast_matmul=True, unavailable here (%s); using the automatic setting.",
                       err)
    same_device = state["rng_device"] == model.device.type
    model.network.load_state_dict(tensors, rng=same_device)
    if not same_device:
        logger.warning("save point's random state is for %s but the model is on %s: reseeded, so the run will not "
                       "repeat the original bit for bit.", state["rng_device"], model.device.type)
        model.generator.manual_seed(int(state["seed"]) + int(state["epoch"]))
    model.trainer.load_state_dict(tensors, int(state["epoch"]))
    return model


def load_model(name: str, delete_previous: bool = False, model_state_path: Any = "model_states/", *,
               device: Any = None) -> tuple[bool, Any]:
    """Load the latest save point of model ``name``.

    Parameters
    ----------
    name : str
        The model's ``model_name``.
    delete_previous : bool
        Delete every older save point of this model after a successful load.
    model_state_path : str
        Folder of the save points.
    device : str, optional
        Where to put the model (default: as a new model would choose).

    Returns
    -------
    (True, model) if a save point was found, else (False, []), as the reference.

    Raises
    ------
    CheckpointError
        The latest save point is truncated, corrupted or not an rkm save point (for
        example a pickle); nothing is deleted then.
    """
    name = hyperparams.MODEL["model_name"].validate(name)
    model_state_path = _checks.folder("model_state_path", model_state_path)
    points = savepoints.list_savepoints(model_state_path, name)
    if not points:
        savepoints.refuse_pickles(model_state_path, name)
        logger.info("No load points for %s in %s", name, model_state_path)
        return False, []
    update, path = points[-1]
    model = restore(*savepoints.read_savepoint(path), device=device, source=path)
    logger.info("Model %s trained up to update %d, loaded from %s", name, update, path)
    if delete_previous:
        for _, old in points[:-1]:
            old.unlink(missing_ok=True)
    return True, model


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

