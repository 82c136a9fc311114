"""The RBM and the Restricted Kirchhoff Machine: parameters, conditionals, sampling.

``RBM`` and ``RKM`` implement the documented API of pyrkm 0.1.0 (see
``shared/seed/RKM-api-reference.txt``): the same constructor, the same methods with the
same arguments and return values, so scripts port by changing the import. Where the
reference is broken its documented intent is implemented instead; the differences are
listed in the README ("Differences from pyrkm").

One class serves both energies. ``energy_type='hopfield'`` (the ``RBM`` default) is the
plain Bernoulli RBM, whose comparator input is ``v @ W.T + h_bias``.
``energy_type='RKM'`` (the ``RKM`` default) is the resistor network: the comparator
input is the Kirchhoff node voltage (``rkm.physics``), times the size of the clamped
layer when ``layer_scaled``. Power and relaxation times are those of the resistor
network these parameters define, for either energy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from . import comparators, hopfield, matmul, physics, plots
from .errors import ConfigError, DataError

ENERGY_TYPES = ("RKM", "hopfield")
OPTIMIZERS = ("SGD", "Adam")
TRAIN_ALGOS = ("CD", "PCD", "RDM", "vRDM", "hRDM")
REGULARIZATIONS = ("l1", "l2", "l1+l2")
ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON = 0.9, 0.999, 1e-8
CENTERING_SLIDE = 0.01
"""Sliding factor of the centering offsets (the reference's ``slv``/``slh``)."""
FLOAT_TYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _finite(name: str, value: Any, *, positive: bool = False, nonnegative: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} must be finite, got {value!r}.")
    if positive and number <= 0:
        raise ConfigError(f"{name} must be > 0, got {value!r}.")
    if nonnegative and number < 0:
        raise ConfigError(f"{name} must be >= 0, got {value!r}.")
    return number


def _all_finite(tensor: torch.Tensor) -> bool:
    """No NaN or inf in ``tensor``: one sum decides unless it overflows, then an exact check."""
    return bool(torch.isfinite(tensor.sum())) or bool(torch.isfinite(tensor).all())


def _regularization(value: Any) -> str | None:
    """Normalise ``regularization``: False/None -> None, True -> 'l1+l2' (the documented intent)."""
    if value is None or value is False or value == "none":
        return None
    if value is True:
        return "l1+l2"
    return comparators.check_choice("regularization", value, REGULARIZATIONS)


class RBM:
    """A restricted Boltzmann machine with the pyrkm 0.1.0 API (``energy_type='hopfield'``).

    Parameters
    ----------
    model_name : str
        Name used for save points (``{model_name}_t{update}.safetensors``).
    n_visible, n_hidden : int
        Layer sizes.
    k : int
        Gibbs steps of the negative phase (>= 1).
    lr : float
        Learning rate.
    max_epochs : int
        Number of gradient updates (mini-batches) ``train`` performs, as in the reference.
    energy_type : {'hopfield', 'RKM'}
        Plain Bernoulli RBM or resistor network.
    optimizer : {'SGD', 'Adam'}
    regularization : False, True, 'l1', 'l2' or 'l1+l2'
        True means both (the reference documents "L1+L2").
    l1_factor, l2_factor : float
    g_v, g_h : float
        Bias supply voltages of the visible and hidden layer.
    batch_size : int
        Mini-batch size for array inputs and size of the model chains.
    train_algo : {'CD', 'PCD', 'RDM', 'vRDM', 'hRDM'}
    centering : bool
        Centred gradients; needs ``average_data``.
    average_data : tensor of shape (n_visible,), optional
        Mean of the data: initial visible bias and centering offset.
    model_beta : float
        Inverse temperature (``inf`` or > 1000: deterministic units).
    mytype : torch.dtype
        Floating dtype of every tensor of the model (never set globally).
    min_W, max_W : float
        Clipping range of weights and biases.
    offset : float
        Offset voltage c of the inverted sources.
    sampling : {'bernoulli', 'multi-threshold', 'single-threshold'}
    distribution : {'gaussian', 'uniform'}
        Threshold noise of the threshold comparators.
    layer_scaled : bool
        Scale the RKM comparator input by the size of the clamped layer.
    seed : int, optional
        Seed of the model's random generator; when omitted, drawn from torch's global
        generator (so ``torch.manual_seed`` makes a pyrkm-style script repeat) and
        recorded in ``model.seed``, so every run can be repeated.
    generator : torch.Generator, optional
        Use this generator instead (it must live on ``device``).
    device : str or torch.device, optional
        Default: CUDA when available, else CPU (as the reference).
    threshold_sharing : {'sample', 'batch'}
        ``single-threshold`` shares one threshold per sample (default) or per batch
        (the reference).
    fast_matmul : bool, optional
        Large float32 products on the CPU through oneDNN's bfloat16-based float32 mode,
        about twice as fast, where a probe finds it as accurate as IEEE float32
        (``None``, the default); ``True`` requires it, ``False`` never uses it. See
        ``rkm.matmul``.
    """

    _default_energy = "hopfield"

    def __init__(
        self,
        model_name,
        n_visible,
        n_hidden,
        k=1,
        lr=0.001,
        max_epochs=200000,
        energy_type="hopfield",
        optimizer="SGD",
        regularization=False,
        l1_factor=0,
        l2_factor=0.001,
        g_v=0.5,
        g_h=0.5,
        batch_size=1,
        train_algo="vRDM",
        centering=False,
        average_data=None,
        model_beta=1,
        mytype=torch.float32,
        min_W=-10,
        max_W=10,
        offset=0.0,
        sampling="bernoulli",
        distribution="gaussian",
        layer_scaled=True,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        threshold_sharing: str = "sample",
        fast_matmul: bool | None = None,
    ):
        if not isinstance(model_name, str) or not model_name or "/" in model_name:
            raise ConfigError(f"model_name must be a non-empty string without '/', got {model_name!r}.")
        self.model_name = model_name
        self.n_visible = _positive_int("n_visible", n_visible)
        self.n_hidden = _positive_int("n_hidden", n_hidden)
        self.k = _positive_int("k", k)
        self.lr = _finite("lr", lr, positive=True)
        self.max_epochs = _positive_int("max_epochs", max_epochs)
        self.energy_type = comparators.check_choice("energy_type", energy_type, ENERGY_TYPES)
        self.optimizer = comparators.check_choice("optimizer", optimizer, OPTIMIZERS)
        self.regularization = regularization
        _regularization(regularization)
        self.l1_factor = _finite("l1_factor", l1_factor, nonnegative=True)
        self.l2_factor = _finite("l2_factor", l2_factor, nonnegative=True)
        self.g_v = _finite("g_v", g_v, positive=True)
        self.g_h = _finite("g_h", g_h, positive=True)
        self.batch_size = _positive_int("batch_size", batch_size)
        self.train_algo = comparators.check_choice("train_algo", train_algo, TRAIN_ALGOS)
        self.centering = bool(centering)
        self.model_beta = comparators.check_beta(model_beta)
        if mytype not in FLOAT_TYPES:
            raise ConfigError(f"mytype must be a floating torch dtype such as torch.float32, got {mytype!r}.")
        self.mytype = mytype
        self.min_W = _finite("min_W", min_W)
        self.max_W = _finite("max_W", max_W)
        if self.min_W >= self.max_W:
            raise ConfigError(f"min_W ({min_W}) must be smaller than max_W ({max_W}).")
        self.offset = _finite("offset", offset)
        self.sampling = comparators.check_choice("sampling", sampling, comparators.SAMPLINGS)
        self.distribution = comparators.check_choice("distribution", distribution, comparators.DISTRIBUTIONS)
        self.layer_scaled = bool(layer_scaled)
        self.threshold_sharing = comparators.check_choice(
            "threshold_sharing", threshold_sharing, comparators.SHARINGS
        )

        self.device = self._resolve_device(device, generator)
        self.fast_matmul = fast_matmul
        if generator is not None:
            self.generator = generator
            self.seed = generator.initial_seed()
        else:
            self.seed = int(torch.randint(2**63 - 1, ())) if seed is None else _positive_int("seed", seed, minimum=0)
            self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

        self.average_data = None if average_data is None else self._as_vector(average_data, self.n_visible, "average_data")
        if self.centering and self.average_data is None:
            raise ConfigError(
                "centering=True needs average_data, the mean of the training data as a vector of "
                f"n_visible={self.n_visible} values (e.g. data.mean(0))."
            )

        self._cache_key: tuple | None = None
        self._cache: tuple[physics.LayerPhysics, physics.LayerPhysics] | None = None
        self.epoch = 0
        self._initialize_parameters()
        self._initialize_training_state()

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _resolve_device(device, generator) -> torch.device:
        if device is None:
            device = generator.device if generator is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ConfigError(f"device={device!r} is not a torch device; use 'cpu' or 'cuda'.") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA device is available; use device='cpu'.")
        if generator is not None and generator.device.type != device.type:
            raise ConfigError(f"the generator lives on {generator.device} but the model on {device}; create it there.")
        return device

    def _initialize_parameters(self) -> None:
        g = self.generator
        scale = 0.1 / math.sqrt(self.n_visible)
        self.W = torch.randn((self.n_hidden, self.n_visible), generator=g, dtype=self.mytype, device=self.device) * scale
        if self.average_data is not None:
            self.v_bias = self.average_data.clone()
        else:
            self.v_bias = torch.randn((self.n_visible,), generator=g, dtype=self.mytype, device=self.device)
        self.h_bias = torch.zeros((self.n_hidden,), dtype=self.mytype, device=self.device)
        self.clip_weights()
        self.clip_bias()

    def _initialize_training_state(self) -> None:
        zero = torch.zeros((), dtype=torch.float64, device=self.device)
        self.energy = zero.clone()
        self.power_f = zero.clone()
        self.power_b = zero.clone()
        self.relax_t_f, self.relax_t_b = self.relaxation_times()
        if self.optimizer == "Adam":
            self._init_adam()
        if self.train_algo == "PCD":
            self._init_persistent_chains()
        if self.centering:
            self.ov = self.average_data.clone()
            self.oh = torch.full((self.n_hidden,), 0.5, dtype=self.mytype, device=self.device)
            self.slv = self.slh = CENTERING_SLIDE
        else:
            self.ov = 0
            self.oh = 0

    def _init_adam(self) -> None:
        self.beta1, self.beta2, self.epsilon = ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON
        for name, ref in (("W", self.W), ("v", self.v_bias), ("h", self.h_bias)):
            setattr(self, f"m_d{name}", torch.zeros_like(ref))
            setattr(self, f"v_d{name}", torch.zeros_like(ref))

    def _init_persistent_chains(self) -> None:
        u = torch.rand((self.batch_size, self.n_visible), generator=self.generator, dtype=self.mytype, device=self.device)
        self.persistent_chains = (u > 0.5).to(self.mytype)

    def _check_settings(self) -> None:
        """Re-validate settings a user may have changed since construction."""
        comparators.check_choice("energy_type", self.energy_type, ENERGY_TYPES)
        comparators.check_choice("optimizer", self.optimizer, OPTIMIZERS)
        comparators.check_choice("train_algo", self.train_algo, TRAIN_ALGOS)
        comparators.check_choice("sampling", self.sampling, comparators.SAMPLINGS)
        comparators.check_choice("distribution", self.distribution, comparators.DISTRIBUTIONS)
        comparators.check_choice("threshold_sharing", self.threshold_sharing, comparators.SHARINGS)
        _regularization(self.regularization)
        _positive_int("k", self.k)
        _positive_int("batch_size", self.batch_size)
        _positive_int("max_epochs", self.max_epochs)
        _finite("lr", self.lr, positive=True)
        comparators.check_beta(self.model_beta)
        if self.centering and not isinstance(self.ov, torch.Tensor):
            raise ConfigError("centering was switched on after construction; construct the model with centering=True and average_data.")
        if self.optimizer == "Adam" and not hasattr(self, "m_dW"):
            self._init_adam()
        if self.train_algo == "PCD" and getattr(self, "persistent_chains", None) is None:
            self._init_persistent_chains()

    # ------------------------------------------------------------ parameters
    def _as_parameter(self, value, shape: tuple[int, ...], name: str) -> torch.Tensor:
        tensor = torch.as_tensor(value, dtype=self.mytype, device=self.device)
        if tuple(tensor.shape) != shape:
            raise DataError(f"{name} must have shape {shape}, got {tuple(tensor.shape)}.")
        return tensor

    def _as_vector(self, value, n: int, name: str) -> torch.Tensor:
        tensor = self._as_parameter(value, (n,), name)
        if not bool(torch.isfinite(tensor).all()):
            raise DataError(f"{name} contains NaN or inf.")
        return tensor

    @property
    def W(self) -> torch.Tensor:
        """Weights, shape (n_hidden, n_visible); assigning converts and checks the shape."""
        return self._W

    @W.setter
    def W(self, value) -> None:
        self._W = self._as_parameter(value, (self.n_hidden, self.n_visible), "W")

    @property
    def v_bias(self) -> torch.Tensor:
        """Visible bias, shape (n_visible,)."""
        return self._v_bias

    @v_bias.setter
    def v_bias(self, value) -> None:
        self._v_bias = self._as_parameter(value, (self.n_visible,), "v_bias")

    @property
    def h_bias(self) -> torch.Tensor:
        """Hidden bias, shape (n_hidden,)."""
        return self._h_bias

    @h_bias.setter
    def h_bias(self, value) -> None:
        self._h_bias = self._as_parameter(value, (self.n_hidden,), "h_bias")

    @property
    def fast_matmul(self) -> bool | None:
        """The ``fast_matmul`` setting; ``uses_fast_matmul`` says whether it is in effect."""
        return self._fast_matmul

    @fast_matmul.setter
    def fast_matmul(self, value) -> None:
        self.uses_fast_matmul = matmul.resolve(value, self.device, self.mytype)
        self._fast_matmul = value

    @property
    def W_t(self) -> torch.Tensor:
        """``W.T``, always current (the reference kept a stale copy); assigning sets ``W`` to its transpose."""
        return self._W.t()

    @W_t.setter
    def W_t(self, value) -> None:
        self.W = self._as_parameter(value, (self.n_visible, self.n_hidden), "W_t").t()

    @property
    def t_to_save(self) -> list[int]:
        """Updates at which ``train`` writes a save point: ~50 log-spaced in [1, max_epochs]."""
        points = np.round(np.logspace(0, np.log10(self.max_epochs), 50)).astype(int)
        return sorted(set(points.tolist()))

    def _physics(self, check: bool = True) -> tuple[physics.LayerPhysics, physics.LayerPhysics]:
        """Forward and backward pass constants, recomputed whenever a parameter changed."""
        W, a, b = self._W, self._v_bias, self._h_bias
        key = (W, W._version, a, a._version, b, b._version, self.g_v, self.g_h, self.offset)
        cached = self._cache_key
        if cached is None or any(x is not y and (isinstance(x, torch.Tensor) or x != y) for x, y in zip(key, cached)):
            forward, backward = physics.layer_physics(W, a, b, self.g_v, self.g_h, self.offset)
            if check and not all(
                bool(torch.isfinite(t).all()) for t in (forward.conductance, backward.conductance, forward.effective_bias, backward.effective_bias)
            ):
                raise DataError(
                    "the model parameters contain NaN or inf (W, v_bias or h_bias); "
                    "reinitialise them or load a save point."
                )
            self._cache, self._cache_key = (forward, backward), key
        return self._cache

    # ---------------------------------------------------------------- inputs
    def _as_batch(self, x, n: int, name: str) -> tuple[torch.Tensor, bool]:
        """Convert user input to a (batch, n) tensor of the model's dtype and device."""
        if isinstance(x, (list, tuple)) and len(x) == 0:
            raise DataError(f"{name} is empty; pass a (batch, {n}) array.")
        tensor = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
        tensor = tensor.to(device=self.device, dtype=self.mytype)
        single = tensor.dim() == 1
        if single:
            tensor = tensor.unsqueeze(0)
        if tensor.dim() != 2 or tensor.shape[1] != n:
            raise DataError(
                f"{name} must have shape (batch, {n}) for this model, got {tuple(tensor.shape)}; "
                "flatten images to rows first."
            )
        if not _all_finite(tensor):
            raise DataError(f"{name} contains NaN or inf; clean the data first.")
        return tensor, single

    def _beta(self, beta) -> float:
        return self.model_beta if beta is None else comparators.check_beta(beta)

    # ------------------------------------------------------------ the passes
    def _numerator(self, clamped: torch.Tensor, forward: bool):
        """Kirchhoff numerator ``clamped @ W.T + b_eff`` of the free layer, and the pass constants."""
        phys = self._physics(check=False)[0 if forward else 1]
        product = matmul.addmm(phys.effective_bias, clamped, self._W.t() if forward else self._W, self.uses_fast_matmul)
        return product, phys

    def _drive(self, clamped: torch.Tensor, forward: bool, numerator: bool = False, gain: float = 1.0):
        """Comparator input of the free layer times ``gain``, and the Kirchhoff numerator if asked.

        Returns ``(gain * x, num, phys)``; ``num`` is None unless ``numerator`` or the energy is RKM.
        """
        if self.energy_type == "RKM":
            num, phys = self._numerator(clamped, forward)
            x = num * ((gain * self._scale(forward)) * phys.inverse_conductance)
            return x, num, phys
        phys = self._physics(check=False)[0 if forward else 1]
        bias = self._h_bias if forward else self._v_bias
        x = matmul.addmm(bias, clamped, self._W.t() if forward else self._W, self.uses_fast_matmul)
        num = x + (phys.effective_bias - bias) if numerator else None
        return (x if gain == 1.0 else x.mul_(gain)), num, phys

    def _scale(self, forward: bool) -> int:
        """Layer scaling of the comparator input: the size of the clamped layer, or 1."""
        return (self.n_visible if forward else self.n_hidden) if self.layer_scaled else 1

    def _pass(self, clamped: torch.Tensor, forward: bool, beta: float, power: bool = False, binary: bool = False):
        """One clamped pass: ``(p, sample, twice the power per sample, or None)``.

        The power is unclipped and leaves out the direction's ``constant``, which training
        adds once to all of an update's passes (see :func:`rkm.physics.twice_pass_power`;
        ``binary``: ``clamped`` is 0/1).

        A finite ``beta`` is folded into the comparator input's per-node factor, saving
        the comparator a full-size multiplication.
        """
        gain = beta if 0.0 < beta and not comparators.is_deterministic(beta) else 1.0
        z, num, phys = self._drive(clamped, forward, numerator=power, gain=gain)
        p, s = comparators.sample(z, beta / gain, self.sampling, self.distribution, self.generator, self.threshold_sharing)
        if not power:
            return p, s, None
        drive = (z, 1.0 / (gain * self._scale(forward))) if self.energy_type == "RKM" else None
        return p, s, physics.twice_pass_power(clamped, num, phys, binary, drive, constant=False)

    def v_to_h(self, v, beta=None):
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
        v, single = self._as_batch(v, self.n_visible, "v")
        self._physics()
        p, s, _ = self._pass(v, True, self._beta(beta))
        return (p[0], s[0]) if single else (p, s)

    def h_to_v(self, h, beta=None):
        """Sample the visible layer given the hidden layer; see :meth:`v_to_h`."""
        h, single = self._as_batch(h, self.n_hidden, "h")
        self._physics()
        p, s, _ = self._pass(h, False, self._beta(beta))
        return (p[0], s[0]) if single else (p, s)

    def delta_eh(self, v):
        """Comparator input of each hidden unit given ``v``, shape (N, n_hidden).

        For the RBM this is the energy change ``v @ W.T + h_bias`` of switching the unit
        on; for the RKM it is the node voltage (times ``n_visible`` if layer-scaled).
        """
        v, single = self._as_batch(v, self.n_visible, "v")
        self._physics()
        x = self._drive(v, True)[0]
        return x[0] if single else x

    def delta_ev(self, h):
        """Comparator input of each visible unit given ``h``; see :meth:`delta_eh`."""
        h, single = self._as_batch(h, self.n_hidden, "h")
        self._physics()
        x = self._drive(h, False)[0]
        return x[0] if single else x

    def _bernoulli(self, x, beta):
        p = comparators.probability(x, comparators.check_beta(beta), "bernoulli", self.distribution)
        u = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        return p, (u < p).to(x.dtype)

    def Bernoulli_v_to_h(self, v, beta):
        """Hidden sample with a sigmoid (Bernoulli) comparator whatever ``sampling`` is.

        Returns ``(p_h, h)``.
        """
        return self._bernoulli(self.delta_eh(v), beta)

    def Bernoulli_h_to_v(self, h, beta):
        """Visible sample with a sigmoid (Bernoulli) comparator; returns ``(p_v, v)``."""
        return self._bernoulli(self.delta_ev(h), beta)

    def Deterministic_v_to_h(self, v, beta):
        """Noise-free hidden units ``[delta_eh(v) > 0]``; returns ``(h, h)``."""
        h = (self.delta_eh(v) > 0).to(self.mytype)
        return h, h

    def Deterministic_h_to_v(self, h, beta):
        """Noise-free visible units ``[delta_ev(h) > 0]``; returns ``(v, v)``."""
        v = (self.delta_ev(h) > 0).to(self.mytype)
        return v, v

    def _chain(self, v: torch.Tensor, k: int, beta: float) -> torch.Tensor:
        """k Gibbs steps v -> h -> v from ``v``; returns the last visible sample."""
        for _ in range(k):
            h = self._pass(v, True, beta)[1]
            v = self._pass(h, False, beta)[1]
        return v

    def forward(self, v, k, beta=None):
        """Run ``k`` Gibbs steps (v -> h -> v) from ``v``.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        k : int
            Number of steps; ``k=0`` returns ``v`` unchanged (the reference raised).
        beta : float, optional

        Returns
        -------
        Tensor, shape (N, n_visible)
            The visible sample after ``k`` steps.
        """
        k = _positive_int("k", k, minimum=0)
        v, single = self._as_batch(v, self.n_visible, "v")
        self._physics()
        out = self._chain(v, k, self._beta(beta))
        return out[0] if single else out

    def generate(self, n_samples, k, h_binarized=True, from_visible=True, beta=None):
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
        n_samples = _positive_int("n_samples", n_samples)
        k = _positive_int("k", k, minimum=0)
        beta = self._beta(beta)
        self._physics()
        g, opts = self.generator, {"dtype": self.mytype, "device": self.device}
        if from_visible:
            v = comparators.random_binary((n_samples, self.n_visible), g, **opts)
        else:
            if h_binarized:
                h = comparators.random_binary((n_samples, self.n_hidden), g, **opts)
            else:
                h = torch.rand((n_samples, self.n_hidden), generator=g, **opts)
            v = self._pass(h, False, beta)[1]
        return self._chain(v, k, beta).cpu().numpy()

    def reconstruct(self, data, k):
        """Reconstruct ``data`` after ``k`` Gibbs steps.

        Returns
        -------
        tuple of numpy.ndarray
            The data and its reconstruction, each (N, n_visible).
        """
        data, _ = self._as_batch(data, self.n_visible, "data")
        return data.cpu().numpy(), self.forward(data, k).cpu().numpy()

    # --------------------------------------------------------------- physics
    def power_forward(self, v):
        """Power dissipated by the forward pass (visible clamped), shape (N,).

        P = 1/2 sum over resistors of G dV^2 with the hidden nodes at their Kirchhoff
        voltages; always >= 0, for every offset.
        """
        v, _ = self._as_batch(v, self.n_visible, "v")
        self._physics()
        return physics.pass_power(v, *self._numerator(v, True))

    def power_backward(self, h):
        """Power dissipated by the backward pass (hidden clamped), shape (N,)."""
        h, _ = self._as_batch(h, self.n_hidden, "h")
        self._physics()
        return physics.pass_power(h, *self._numerator(h, False))

    def av_power_forward(self, v):
        """Mean of :meth:`power_forward` over the batch."""
        return self.power_forward(v).mean()

    def av_power_backward(self, h):
        """Mean of :meth:`power_backward` over the batch."""
        return self.power_backward(h).mean()

    def relaxation_times(self):
        """RC relaxation times 2 / G of the free nodes of each pass.

        Returns
        -------
        t_forward : Tensor, shape (n_hidden,)
            Hidden nodes, which float in the forward pass.
        t_backward : Tensor, shape (n_visible,)
            Visible nodes, which float in the backward pass. (The reference docstring
            swaps the two shapes.) An isolated node has an infinite time.
        """
        forward, backward = self._physics()
        return physics.relaxation_times(forward), physics.relaxation_times(backward)

    # ------------------------------------------------------------- learning
    def derivatives(self, v, h):
        """Energy derivatives on samples ``(v, h)``, AVERAGED over the batch.

        Returns
        -------
        dEdW : Tensor, shape (n_hidden, n_visible)
            ``-mean_n (h_n - oh)(v_n - ov)^T`` (centering offsets are 0 without centering).
        dEdv_bias : Tensor, shape (n_visible,)
            ``-mean_n v_n``.
        dEdh_bias : Tensor, shape (n_hidden,)
            ``-mean_n h_n``.

        The reference returned per-sample tensors of shape (N, n_hidden, n_visible) and
        averaged them in ``train``; this is one matrix product.
        """
        v, _ = self._as_batch(v, self.n_visible, "v")
        h, _ = self._as_batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        return self.derivatives_hopfield(v, h)

    def derivatives_hopfield(self, v, h):
        """Derivatives of the bilinear energy; see :meth:`derivatives`."""
        n = v.shape[0]
        dEdW = matmul.mm((h - self.oh).t(), v - self.ov, self.uses_fast_matmul).div_(-n)
        return dEdW, -v.mean(dim=0), -h.mean(dim=0)

    def clip_weights(self):
        """Clip ``W`` to [min_W, max_W] in place."""
        self._W.clamp_(self.min_W, self.max_W)

    def clip_bias(self):
        """Clip both biases to [min_W, max_W] in place."""
        self._v_bias.clamp_(self.min_W, self.max_W)
        self._h_bias.clamp_(self.min_W, self.max_W)

    def after_step_keepup(self):
        """Keep parameters in range after an update (clipping)."""
        self.clip_weights()
        self.clip_bias()

    def _plain_sgd(self) -> bool:
        """SGD without centering or regularisation: the weight step is ``lr`` times the statistics."""
        return self.optimizer == "SGD" and not self.centering and _regularization(self.regularization) is None

    def _apply_update(self, dW, dv, dh, optimizer: str | None = None, t: int | None = None) -> None:
        """Apply one ascent step from the contrastive statistics ``<.>_data - <.>_model``.

        Centering corrections, L1/L2 shrinkage (towards zero in both optimisers) and the
        optimiser step are applied here, then parameters are clipped. The gradient
        tensors are fresh and are consumed (modified in place). ``dW=None`` (plain SGD
        only, see :meth:`_plain_sgd`) means ``W`` has already been stepped.
        """
        if self.centering:
            dv = dv - self.oh @ dW
            dh = dh - dW @ self.ov
        reg = _regularization(self.regularization)
        if reg is not None:
            for d, p in zip((dW, dv, dh), (self._W, self._v_bias, self._h_bias)):
                if "l2" in reg:
                    d.add_(p, alpha=-2.0 * self.l2_factor)
                if "l1" in reg:
                    d.sub_(torch.sign(p), alpha=self.l1_factor)
        if (optimizer or self.optimizer) == "SGD":
            if dW is not None:
                self._W.add_(dW, alpha=self.lr)
            self._v_bias.add_(dv, alpha=self.lr)
            self._h_bias.add_(dh, alpha=self.lr)
        else:
            if not hasattr(self, "m_dW"):
                self._init_adam()
            t = self.epoch + 1 if t is None else int(t)
            c1, c2 = 1 - self.beta1**t, 1 - self.beta2**t
            for name, param, grad in (("W", self._W, dW), ("v", self._v_bias, dv), ("h", self._h_bias, dh)):
                m, s = getattr(self, f"m_d{name}"), getattr(self, f"v_d{name}")
                m.mul_(self.beta1).add_(grad, alpha=1 - self.beta1)
                s.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
                denom = (s / c2).sqrt_().add_(self.epsilon)
                param.addcdiv_(m, denom, value=self.lr / c1)
        self.after_step_keepup()

    def SGD_update(self, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model):
        """One SGD step from batch-averaged energy derivatives (see :meth:`derivatives`).

        The step is ``lr * (-dE_data + dE_model)`` plus centering and regularisation
        terms; parameters are clipped afterwards.
        """
        self._apply_update(dEdW_model - dEdW_data, dEdv_bias_model - dEdv_bias_data, dEdh_bias_model - dEdh_bias_data)

    def Adam_update(self, t, dEdW_data, dEdW_model, dEdv_bias_data, dEdv_bias_model, dEdh_bias_data, dEdh_bias_model):
        """One bias-corrected Adam step (beta1 0.9, beta2 0.999, eps 1e-8) at time step ``t``.

        L2 and L1 terms shrink the parameters (the reference added L2 with the wrong sign).
        """
        self._apply_update(
            dEdW_model - dEdW_data, dEdv_bias_model - dEdv_bias_data, dEdh_bias_model - dEdh_bias_data, "Adam", t
        )

    # ------------------------------------------------------------- training
    def train(
        self,
        train_data,
        test_data=[],  # noqa: B006 - the seed's signature; never mutated
        print_error=False,
        print_test_error=False,
        model_state_path="model_states/",
        print_every=100,
        *,
        progress: bool = False,
        save: bool = True,
        callback=None,
    ):
        """Train for ``max_epochs`` gradient updates (mini-batches), continuing from ``epoch``.

        Parameters
        ----------
        train_data : DataLoader, iterable of batches, Tensor or numpy array
            Arrays are split into shuffled mini-batches of ``batch_size`` (an order that
            depends only on ``seed`` and the pass, so resumed runs are bit-identical).
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
        from .training import train

        return train(
            self,
            train_data,
            test_data=test_data,
            print_error=print_error,
            print_test_error=print_test_error,
            model_state_path=model_state_path,
            print_every=print_every,
            progress=progress,
            save=save,
            callback=callback,
        )

    def pretrain(self, pretrained_model, model_state_path="model_states/"):
        """Import W, h_bias and v_bias from the latest save point of ``pretrained_model``.

        Returns True if a save point was found, False otherwise (logged, as the reference).
        """
        from .checkpoint import import_parameters

        return import_parameters(self, pretrained_model, model_state_path)

    # --------------------------------------------------------------- moving
    def to(self, device=None, dtype=None):
        """Move every tensor of the model to ``device`` and/or ``dtype``; returns self.

        A generator cannot move between devices: on a device change the model gets a new
        generator on the new device, seeded from the old one (still reproducible).
        """
        dtype = self.mytype if dtype is None else dtype
        if dtype not in FLOAT_TYPES:
            raise ConfigError(f"dtype must be a floating torch dtype, got {dtype!r}.")
        new_device = self.device if device is None else self._resolve_device(device, None)
        uses_fast = matmul.resolve(self._fast_matmul, new_device, dtype)  # fails before anything moves
        if new_device != self.device:
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator, device=self.device).item())
            self.generator = torch.Generator(device=new_device).manual_seed(seed)
        self.device, self.mytype = new_device, dtype
        for name, value in list(vars(self).items()):
            if isinstance(value, torch.Tensor) and name not in ("energy", "power_f", "power_b"):
                setattr(self, name, value.to(device=new_device, dtype=dtype if value.is_floating_point() else None))
        for name in ("energy", "power_f", "power_b"):
            setattr(self, name, getattr(self, name).to(new_device))
        self._cache_key = None
        self.uses_fast_matmul = uses_fast
        return self

    # -------------------------------------------------------------- plotting
    def plot_weights(self, t, image_shape=None, max_filters: int = 100):
        """Grid of the first ``max_filters`` hidden units' weights as images; returns the figure."""
        return plots.weight_grid(self._W, t, image_shape=image_shape, max_filters=max_filters)

    def plot_visible_bias(self, t, image_shape=None):
        """Visible bias as an image with a colour bar; returns the figure."""
        return plots.bias_image(self._v_bias, t, image_shape=image_shape)

    def plot_bias(self, t):
        """Histograms of the hidden and visible biases; returns the figure."""
        return plots.bias_histograms(self._h_bias, self._v_bias, t)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, n_visible={self.n_visible}, "
            f"n_hidden={self.n_hidden}, energy_type={self.energy_type!r}, train_algo={self.train_algo!r}, "
            f"sampling={self.sampling!r}, epoch={self.epoch}, device={str(self.device)!r})"
        )

    # ------------------------------------------------ Boltzmann energy (rkm.hopfield)
    # pyrkm's energy methods, as thin delegates to the pure functions of rkm.hopfield.
    def _hopfield_only(self, method: str) -> None:
        if self.energy_type != "hopfield":
            raise ConfigError(
                f"{method} is the Boltzmann law of energy_type='hopfield'; this model's energy_type is "
                f"{self.energy_type!r}, whose Gibbs chain has no energy function in general (see "
                "RBM.free_energy). Use v_to_h / h_to_v for its conditionals (they return P(unit = 1))."
            )

    def free_energy(self, v, beta=None):
        """Free energy ``F(v)`` of each row, shape (N,), so that ``P(v) ~ exp(-F(v))``.

        For ``energy_type='hopfield'`` this is pyrkm's value,
        ``-sum_j softplus(beta (W v + b)_j) - beta v_bias . v`` (``rkm.hopfield``).

        An RKM (``energy_type='RKM'``) has no free energy in general: its forward pass
        divides hidden unit j's weights by the node conductance ``G_j`` and its backward
        pass divides visible unit i's by ``G_i``, so the two conditionals are not those of
        one Boltzmann law and its distribution is only the Gibbs chain's stationary law.
        (pyrkm returned the Hopfield value of the RKM's parameters, which is not that law;
        ``_free_energy_hopfield`` still computes it.)

        Raises
        ------
        ConfigError
            For ``energy_type='RKM'``, or a non-finite ``beta``.
        """
        self._hopfield_only("free_energy")
        return self._free_energy_hopfield(v, beta)

    def _free_energy_hopfield(self, v, beta=None):
        """Free energy of the bilinear (Hopfield) energy with this model's parameters, shape (N,)."""
        v, single = self._as_batch(v, self.n_visible, "v")
        out = hopfield.free_energy(v, self._W, self._v_bias, self._h_bias, self._beta(beta))
        return out[0] if single else out

    def _energy_hopfield(self, v, h):
        """Bilinear energy ``-h . (W v) - v_bias . v - h_bias . h`` of each row pair, shape (N,)."""
        v, single = self._as_batch(v, self.n_visible, "v")
        h, _ = self._as_batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        out = hopfield.energy(v, h, self._W, self._v_bias, self._h_bias)
        return out[0] if single else out

    def _prob_h_given_v(self, v, beta=None):
        """``P(h = 1 | v) = sigmoid(beta (v W^T + h_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_h_given_v")
        v, single = self._as_batch(v, self.n_visible, "v")
        out = hopfield.prob_h_given_v(v, self._W, self._h_bias, self._beta(beta))
        return out[0] if single else out

    def _prob_v_given_h(self, h, beta=None):
        """``P(v = 1 | h) = sigmoid(beta (h W + v_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_v_given_h")
        h, single = self._as_batch(h, self.n_hidden, "h")
        out = hopfield.prob_v_given_h(h, self._W, self._v_bias, self._beta(beta))
        return out[0] if single else out


class RKM(RBM):
    """A Restricted Kirchhoff Machine: the RBM built as a resistor network.

    Same parameters as :class:`RBM` with ``energy_type='RKM'`` by default; see the
    paper https://arxiv.org/abs/2509.15842 and ``rkm.physics`` for the circuit.
    """

    def __init__(
        self,
        model_name,
        n_visible,
        n_hidden,
        k=1,
        lr=0.001,
        max_epochs=200000,
        energy_type="RKM",
        optimizer="SGD",
        regularization=False,
        l1_factor=0,
        l2_factor=0.001,
        g_v=0.5,
        g_h=0.5,
        batch_size=1,
        train_algo="vRDM",
        centering=False,
        average_data=None,
        model_beta=1,
        mytype=torch.float32,
        min_W=-10,
        max_W=10,
        offset=0.0,
        sampling="bernoulli",
        distribution="gaussian",
        layer_scaled=True,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        threshold_sharing: str = "sample",
        fast_matmul: bool | None = None,
    ):
        args = dict(locals())
        del args["self"], args["__class__"]
        super().__init__(**args)


def constructor_arguments(model: RBM) -> dict[str, Any]:
    """The 25 seed constructor arguments of ``model`` as plain values, in the seed's order."""
    import inspect

    names = [p for p in inspect.signature(RBM.__init__).parameters if p != "self"][:25]
    return {name: getattr(model, name) for name in names}
