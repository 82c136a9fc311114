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

The seed methods come from mixins grouped by concern, one internal module each:
:mod:`rkm.machine._passes` (the passes and the hopfield energy methods) and
:mod:`rkm.machine._learning` (derivatives, steps, training); the descriptors of the settings
are in :mod:`rkm.machine._settings`, and :mod:`rkm.machine._loading` builds a model from a
save point.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from .. import hyperparams, plots
from ..core import _checks
from ..core.devices import Devices
from ..core.network import Network
from ..core.units import DEFAULT_UNITS, Readings, Units, readings
from ..errors import ConfigError, DataError
from ..training import Trainer, phases
from . import _schema
from ._learning import Learning
from ._settings import Attribute, Setting


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
run_id : str or None
    The run folder the model trains in (set by ``rkm train``; recorded in its save points, so a
    save point copied from another run is refused there); None outside a run folder.
energy, power_f, power_b : Tensor
    Cumulative energy of every pass (float64) and the last update's forward/backward power.
relax_t_f, relax_t_b : Tensor
    Relaxation times of the hidden nodes (forward pass) and the visible nodes (backward pass).
network, trainer
    The physical core (:class:`rkm.core.network.Network`) and the trainer (:class:`rkm.training.Trainer`).
"""


class RBM(Learning):
    __doc__ = _DOC.format(summary="A restricted Boltzmann machine with the pyrkm 0.1.0 API "
                          "(``energy_type='hopfield'``).",
                          parameters=hyperparams.parameters_doc())
    __init__ = _constructor("hopfield")

    network: Network
    trainer: Trainer

    def _build(self, a: dict[str, Any]) -> None:
        special = ("device", "generator", "average_data")
        v = {name: hyperparams.MODEL[name].validate(value) for name, value in a.items() if name not in special}
        generator = None if a["generator"] is None else hyperparams.MODEL["generator"].validate(a["generator"])
        device = _checks.device(a["device"], generator)
        hyperparams.check_model(v)
        hyperparams.check_memory(v, device)
        self.model_name = v["model_name"]
        self.run_id: str | None = None
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
    W = Attribute("network", "W", "Programmed weights, shape (n_hidden, n_visible).")
    v_bias = Attribute("network", "v_bias", "Programmed visible bias, shape (n_visible,).")
    h_bias = Attribute("network", "h_bias", "Programmed hidden bias, shape (n_hidden,).")
    generator = Attribute("network", "generator", "The model's torch.Generator: every random draw comes from it.")
    devices = Attribute("network", "devices", "The device model (rkm.core.devices.Devices): conductance range, "
                        "levels, spread, write noise, comparator offsets.")
    uses_fast_matmul = Attribute("network", "uses_fast_matmul", "Whether the fast float32 products are in effect.")
    epoch = Attribute("trainer", "epoch", "Gradient updates done (pyrkm's name).", _checks.count)
    energy = Attribute("trainer", "energy", "Cumulative energy of every pass, float64.", _checks.accumulated)
    power_f = Attribute("trainer", "power_f", "Forward power of the last update (sum of its passes' batch means).",
                        _checks.accumulated)
    power_b = Attribute("trainer", "power_b", "Backward power of the last update.", _checks.accumulated)

    @property
    def W_t(self) -> torch.Tensor:
        """``W.T``, always current; assigning sets ``W`` to the transpose (pyrkm scripts refresh it so)."""
        return self.network.W.t()

    @W_t.setter
    def W_t(self, value: Any) -> None:
        self.network.W = _checks.parameter("W_t", value, (self.n_visible, self.n_hidden), self.mytype, self.device).t()

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

    # -------------------------------------------------------------- settings
    _RULED = ("n_visible", "n_hidden", "min_W", "max_W", "g_v", "g_h", "offset", "model_beta", "mytype",
              "conductance_range", "conductance_levels", "variability", "write_noise", "comparator_offset",
              *hyperparams.TRAINING_SIZES)

    def check_change(self, name: str, value: Any) -> None:
        """Raise a ConfigError if setting ``name`` to ``value`` (checked alone) breaks a rule between
        settings (:func:`rkm.hyperparams.check_model`) or needs more memory than is free."""
        held = {key: getattr(self, key) for key in dict.fromkeys(self._RULED)}
        changed = {**held, name: value}
        hyperparams.check_model(changed)
        if name in hyperparams.TRAINING_SIZES:
            hyperparams.check_memory(changed, self.device, held=held)

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
        problems = _schema.out_of_range(tensors, config, int(self.epoch))
        if problems:
            raise DataError(f"the state of {self.model_name!r} at update {self.epoch} is not one its settings allow "
                            f"({'; '.join(problems)}); it is not saved, as no save point of it could be loaded. Clip "
                            "the parameters (model.network.clip()) or widen min_W and max_W.")
        config.update(mytype=_checks.dtype_name(self.mytype), average_data=None)
        state = {"epoch": int(self.epoch), "seed": self.seed, "threshold_sharing": self.threshold_sharing,
                 "fast_matmul": self.fast_matmul, "rng_device": self.generator.device.type, "run": self.run_id}
        return tensors, {"class": type(self).__name__, "config": config, "state": state}

    # --------------------------------------------------------------- moving
    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> RBM:
        """Move every tensor of the model to ``device`` and/or ``dtype``; returns self.

        A generator cannot move between devices: on a device change the model gets a new
        generator on the new device, seeded from the old one (still reproducible).
        """
        dtype = self.mytype if dtype is None else _checks.dtype(dtype, "dtype")
        device = self.device if device is None else _checks.device(device)
        self.check_change("mytype", dtype)
        self.network.to(device, dtype)
        self.trainer.to(device, dtype)
        if self.average_data is not None:
            self.average_data = self.average_data.to(device=device, dtype=dtype)
        return self

    # -------------------------------------------------------------- plotting
    def plot_weights(self, t: int | None = None, image_shape: tuple[int, int] | None = None,
                     max_filters: int = 100) -> Figure:
        """Grid of the first ``max_filters`` hidden units' weights as images.

        Save the figure with ``rkm.plots.save(fig, path)`` (tight margins) or ``fig.savefig``.

        Parameters
        ----------
        t : int, optional
            The update shown in the title (pyrkm's "current epoch"); default: the model's
            ``epoch``.
        image_shape : (int, int), optional
            ``(height, width)`` of the visible layer; default: square.
        max_filters : int
            At most this many hidden units are drawn.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.weight_grid(self.W, self.epoch if t is None else t, image_shape=image_shape,
                                 max_filters=max_filters)

    def plot_visible_bias(self, t: int | None = None, image_shape: tuple[int, int] | None = None) -> Figure:
        """Visible bias as an image with a colour bar.

        Parameters
        ----------
        t : int, optional
            The update shown in the title; default: the model's ``epoch``.
        image_shape : (int, int), optional
            ``(height, width)`` of the visible layer; default: square.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.bias_image(self.v_bias, self.epoch if t is None else t, image_shape=image_shape)

    def plot_bias(self, t: int | None = None) -> Figure:
        """Histograms of the hidden and visible biases.

        Parameters
        ----------
        t : int, optional
            The update shown in the titles; default: the model's ``epoch``.

        Returns
        -------
        matplotlib.figure.Figure
        """
        return plots.bias_histograms(self.h_bias, self.v_bias, self.epoch if t is None else t)

    @property
    def seed(self) -> int:
        """The seed the model's generator started from: an integer in [0, 2^63 - 1], checked when set."""
        return self._seed

    @seed.setter
    def seed(self, value: Any) -> None:
        if value is None:
            raise ConfigError("seed must be an integer >= 0, got None.", names=("seed",))
        self._seed = hyperparams.MODEL["seed"].validate(value)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, n_visible={self.n_visible}, "
            f"n_hidden={self.n_hidden}, energy_type={self.energy_type!r}, train_algo={self.train_algo!r}, "
            f"sampling={self.sampling!r}, epoch={self.epoch}, device={str(self.device)!r})"
        )


for _s in hyperparams.MODEL.values():
    if _s.owner in ("network", "trainer", "devices"):
        setattr(RBM, _s.name, Setting(_s, "dtype" if _s.name == "mytype" else None))


class RKM(RBM):
    __doc__ = _DOC.format(summary="A Restricted Kirchhoff Machine: the RBM built as a resistor network "
                          "(``energy_type='RKM'``; https://arxiv.org/abs/2509.15842, ``rkm.core.physics``).",
                          parameters=hyperparams.parameters_doc())
    __init__ = _constructor("RKM")
