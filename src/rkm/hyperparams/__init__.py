"""The one table of settings: every constructor argument, configuration key and command-line flag.

Each :class:`Setting` row gives a name, the table of a run configuration it belongs to
(``model``, ``data`` or ``run``), its type, its default, its check and a help line. From this
table come

* the constructor of :class:`rkm.RBM` / :class:`rkm.RKM`: its signature (the seed's 25
  positional parameters in the seed's order, then the keyword-only ones), the check of every
  argument, and the object that holds it (``network``, ``trainer`` or the model itself);
* the defaults of a run configuration (:data:`rkm.app.config.DEFAULTS`) and the parsing of its values
  from TOML and from ``--set table.key=value``;
* the flags of ``rkm train`` and their help;
* the constructor arguments a save point records.

Adding a setting is one row here. The choices of ``sampling``, ``train_algo`` and
``optimizer`` are read from their registries when checked, so a comparator, negative phase or
optimiser registered at run time is accepted everywhere at once.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import torch

from ..core import _checks, comparators, devices, limits, network
from ..errors import ConfigError
from ..training import local, optim, phases, pulse
from ._setting import NOT_IN_CONFIG, Setting

__all__ = ["Setting", "TABLE", "SETTINGS", "MODEL", "SEED_ORDER", "NOT_IN_CONFIG", "MAX_NAME_BYTES", "MAX_COUNT",
    "section", "config_defaults", "constructor_signature", "parameters_doc", "fast_matmul_setting", "check_model",
    "check_memory", "TRAINING_SIZES"]

# ------------------------------------------------------------------ checks
MAX_COUNT = 2**63 - 1
"""Largest count of updates, steps or samples: rkm keeps counters as int64 (save points, ``metrics.csv``)."""


def _int(minimum: int = 1) -> Callable[[str, Any], int]:
    return lambda name, value: _checks.integer(name, value, minimum, MAX_COUNT)


def _num(**bounds: Any) -> Callable[[str, Any], float]:
    return lambda name, value: _checks.number(name, value, **bounds)


def _among(options: Callable[[], Iterable[str]]) -> Callable[[str, Any], str]:
    return lambda name, value: _checks.choice(name, value, options())


MAX_NAME_BYTES = 200
"""Longest model name: a save point's file name adds ``_t{update}.safetensors`` and must stay under 255 bytes."""


def _model_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value or "/" in value or "\0" in value:
        raise ConfigError(f"{name} must be a non-empty string without '/' or NUL (it names files), got {value!r}.")
    if len(value.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise ConfigError(f"{name} is {len(value.encode('utf-8', 'surrogateescape'))} bytes long; save point file "
                          f"names need it at most {MAX_NAME_BYTES} bytes.")
    return value


def _seed(name: str, value: Any) -> int:
    return _checks.integer(name, value, minimum=0, maximum=2**63 - 1)


def _fast_matmul(name: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise ConfigError(f"fast_matmul must be None (automatic), True or False, got {value!r}.")
    return value


def fast_matmul_setting(value: Any) -> bool | None:
    """``model.fast_matmul`` of a configuration ('auto', 'true' or 'false') as the constructor's setting."""
    options = {"auto": None, "true": True, "on": True, "false": False, "off": False}
    if str(value).lower() not in options:
        raise ConfigError(f"model.fast_matmul must be auto, true or false, got {value!r}.", names=("fast_matmul",))
    return options[str(value).lower()]


def _generator(name: str, value: Any) -> torch.Generator:
    if not isinstance(value, torch.Generator):
        raise ConfigError(f"generator must be a torch.Generator, got {type(value).__name__}.")
    return value


def _energy_types() -> tuple[str, ...]:
    return network.ENERGY_TYPES


def _samplings() -> tuple[str, ...]:
    return tuple(comparators.COMPARATORS)


def _algos() -> tuple[str, ...]:
    return tuple(phases.PHASES)


def _optimizers() -> tuple[str, ...]:
    return tuple(optim.OPTIMIZERS)


def _regularization(name: str, value: Any) -> Any:
    optim.regularization_terms(value)
    return value


def _read_regularization(value: Any) -> Any:
    """TOML's booleans stay; the text 'false', 'none' or '' is False and 'true' is True."""
    if isinstance(value, str) and value.strip().lower() in ("false", "none", ""):
        return False
    if isinstance(value, str) and value.strip().lower() == "true":
        return True
    return value


def _conductance_range(name: str, value: Any) -> tuple[float, float]:
    return _checks.interval(name, value, positive=True)


def _output_levels(name: str, value: Any) -> tuple[float, float]:
    return _checks.interval(name, value)


def _generate_k(name: str, value: Any) -> int | str:
    """Gibbs steps of generation: an integer >= 0, or ``'k'`` (the model's ``k``)."""
    if isinstance(value, str) and value.strip().lower() == "k":
        return "k"
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ConfigError(f"{name} must be an integer >= 0 or k (the model's k), got {value!r}.") from None
    return _checks.integer(name, value, minimum=0, maximum=MAX_COUNT)


def _image_shape(name: str, value: Any) -> tuple[int, int]:
    """``(height, width)`` of the images the data rows are: written ``28x28`` (or ``28,28``, ``[28, 28]``)."""
    wanted = f"{name} must be two integers >= 1, the height and width of the images, written like 28x28"
    if isinstance(value, str):
        parts = value.strip().strip("()[]").lower().replace("x", ",").split(",")
        try:
            value = [int(part) for part in parts]
        except ValueError:
            raise ConfigError(f"{wanted}; got {value!r}.") from None
    if isinstance(value, (bytes, dict)) or not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{wanted}; got {value!r}.")
    return _checks.integer(f"{name} (height)", value[0]), _checks.integer(f"{name} (width)", value[1])


def _flag_choice(options: tuple[str, ...]) -> Callable[[], tuple[str, ...]]:
    return lambda: options


_M, _N, _T, _D = "model", "network", "trainer", "devices"

TABLE: tuple[Setting, ...] = (
    # the seed's 25 positional parameters, in its order
    Setting("model_name", _M, str, None, "name of the save points", _model_name, "model", True, NOT_IN_CONFIG),
    Setting("n_visible", _M, int, None, "visible units", _int(), _N, True, NOT_IN_CONFIG, mutable=False),
    Setting("n_hidden", _M, int, None, "hidden units", _int(), _N, True, 500, mutable=False),
    Setting("k", _M, int, 1, "Gibbs steps of the negative phase", _int(), _T, True),
    Setting("lr", _M, float, 0.001, "learning rate", _num(positive=True), _T, True),
    Setting("max_epochs", _M, int, 200000, "number of gradient updates (mini-batches), as pyrkm's max_epochs",
            _int(), _T, True, 2000),
    Setting("energy_type", _M, str, "hopfield", "energy: RKM is the resistor network, hopfield the plain RBM",
            _among(_energy_types), _N, True, "RKM", _energy_types),
    Setting("optimizer", _M, str, "SGD", "optimiser", _among(_optimizers), _T, True, choices=_optimizers),
    Setting("regularization", _M, str, False, "false, l1, l2, l1+l2 or true (= l1+l2)", _regularization, _T, True,
            type_doc="bool or str", reader=_read_regularization),
    Setting("l1_factor", _M, float, 0, "L1 strength", _num(nonnegative=True), _T, True, 0.0),
    Setting("l2_factor", _M, float, 0.001, "L2 strength", _num(nonnegative=True), _T, True),
    Setting("g_v", _M, float, 0.5, "visible bias supply voltage", _num(positive=True), _N, True),
    Setting("g_h", _M, float, 0.5, "hidden bias supply voltage", _num(positive=True), _N, True),
    Setting("batch_size", _M, int, 1, "mini-batch size (and number of model chains unless n_chains is set)",
            _int(), _T, True, 64),
    Setting("train_algo", _M, str, "vRDM", "negative phase", _among(_algos), _T, True, "PCD", _algos),
    Setting("centering", _M, bool, False, "centred gradients (uses the data mean)", _checks.boolean, _T, True),
    Setting("average_data", _M, bool, None, "start the visible bias at the data mean (a tensor in the constructor, "
            "true/false in a configuration)", None, "model", True, False, mutable=False, optional=True,
            type_doc="Tensor of shape (n_visible,) or None"),
    Setting("model_beta", _M, float, 1, "inverse temperature (> 1000: deterministic)",
            lambda name, value: _checks.beta(value, name), _N, True, 1.0),
    Setting("mytype", _M, str, torch.float32, "floating dtype of every tensor",
            lambda name, value: _checks.dtype(value, name), _N, True,
            "float32", lambda: tuple(_checks.DTYPES), mutable=False, type_doc="torch.dtype"),
    Setting("min_W", _M, float, -10, "lower clipping bound of weights and biases", _num(), _N, True, -10.0),
    Setting("max_W", _M, float, 10, "upper clipping bound", _num(), _N, True, 10.0),
    Setting("offset", _M, float, 0.0, "offset voltage c of the inverted sources", _num(), _N, True),
    Setting("sampling", _M, str, "bernoulli", "comparator", _among(_samplings), _N, True, choices=_samplings),
    Setting("distribution", _M, str, "gaussian", "threshold noise of the threshold comparators",
            _among(_flag_choice(comparators.DISTRIBUTIONS)), _N, True, choices=_flag_choice(comparators.DISTRIBUTIONS)),
    Setting("layer_scaled", _M, bool, True, "scale comparator inputs by the size of the clamped layer",
            _checks.boolean, _N, True),
    # keyword-only
    Setting("seed", _M, int, None, "seed of the model's generator (drawn and recorded when omitted)", _seed,
            "model", config=0, optional=True, type_doc="int or None"),
    Setting("generator", _M, str, None, "a torch.Generator to use instead of seeding one", _generator, "model",
            config=NOT_IN_CONFIG, optional=True, mutable=False, type_doc="torch.Generator or None"),
    Setting("device", _M, str, None, "the device: cpu or cuda",
            lambda name, value: _checks.device(value, available=False), _N, config="cpu",
            optional=True, mutable=False, type_doc="str or torch.device"),
    Setting("threshold_sharing", _M, str, "sample", "single-threshold sharing: one threshold per sample or batch",
            _among(_flag_choice(comparators.SHARINGS)), _N, choices=_flag_choice(comparators.SHARINGS)),
    Setting("fast_matmul", _M, str, None, "auto, true or false: bfloat16-based float32 products (rkm.core._products)",
            _fast_matmul, _N, config="auto", optional=True, type_doc="bool or None",
            from_config=fast_matmul_setting),
    Setting("n_chains", _M, int, None, "model chains of PCD, PT (per rung), RDM, vRDM and hRDM (default: batch_size)",
            _int(), _T, optional=True, type_doc="int or None"),
    Setting("n_temperatures", _M, int, 8, "rungs of the parallel-tempering ladder (train_algo PT; 1: PCD)", _int(),
            _T),
    Setting("pt_beta_ratio", _M, float, 0.5, "lowest inverse temperature of the PT ladder as a fraction of "
            "model_beta (the rungs are geometric between it and model_beta)", _num(positive=True, upper=1.0), _T),
    # keyword-only: learning on the circuit (rkm.training.local, rkm.training.pulse)
    Setting("learning_rule", _M, str, "algorithmic", "algorithmic (products of the binary samples) or local (each "
            "edge's rule from its voltage drops in the twin networks)", _among(_flag_choice(local.LEARNING_RULES)),
            _T, choices=_flag_choice(local.LEARNING_RULES)),
    Setting("pulse_step", _M, float, 0.01, "optimizer pulse: conductance change of one pulse (code units, or a "
            "fraction of g_max - g_min with pulse_step_unit relative); one level where conductance_levels is set",
            _num(positive=True), _T),
    Setting("pulse_step_unit", _M, str, "absolute", "optimizer pulse: how pulse_step is read",
            _among(_flag_choice(pulse.PULSE_STEP_UNITS)), _T, choices=_flag_choice(pulse.PULSE_STEP_UNITS)),
    Setting("pulse_dead_zone", _M, float, 0.0, "optimizer pulse: no pulse where abs(signal) <= this",
            _num(nonnegative=True), _T),
    # keyword-only: the device non-idealities (rkm.core.devices.Devices), all off by default
    Setting("conductance_range", _M, str, None, "(g_min, g_max), 0 < g_min < g_max: the range of every realised "
            "conductance (written g_min,g_max in a configuration)", _conductance_range, _D, optional=True,
            type_doc="(float, float) or None", reader=lambda value: _conductance_range("model.conductance_range",
                                                                                       value)),
    Setting("conductance_levels", _M, int, None, "number of conductance levels in conductance_range (>= 2)", _int(2),
            _D, optional=True, type_doc="int or None"),
    Setting("level_spacing", _M, str, "linear", "spacing of the conductance levels",
            _among(_flag_choice(devices.SPACINGS)), _D, choices=_flag_choice(devices.SPACINGS)),
    Setting("variability", _M, float, 0.0, "log-standard deviation of the fixed device-to-device spread "
            "(lognormal)", _num(nonnegative=True), _D),
    Setting("write_noise", _M, float, 0.0, "relative noise on every programmed change of a conductance",
            _num(nonnegative=True), _D),
    Setting("comparator_offset", _M, float, 0.0, "standard deviation of each comparator's fixed offset voltage",
            _num(nonnegative=True), _D),
    Setting("comparator_levels", _M, str, devices.IDEAL_LEVELS, "(V_low, V_high), V_low < V_high: the comparators' "
            "output voltages for 0 and 1 (written V_low,V_high in a configuration)", _output_levels, _D,
            type_doc="(float, float)", reader=lambda value: _output_levels("model.comparator_levels", value)),
    Setting("comparator_level_spread", _M, float, 0.0, "standard deviation of each comparator's own output "
            "voltages around comparator_levels", _num(nonnegative=True), _D),
    # [data]
    Setting("dataset", "data", str, "mnist-5k", "mnist-5k (default), digits, bars-and-stripes, mnist, or a "
            ".npy/.npz/.csv path"),
    Setting("path", "data", str, "", "folder of the full MNIST files, or an array file", flag="data-path"),
    Setting("threshold", "data", float, None, "binarisation threshold in [0, 1) (after scaling to [0, 1])",
            lambda name, value: _checks.threshold(value, name), optional=True),
    Setting("size", "data", int, 4, "side of the bars-and-stripes images", _int(2)),
    Setting("protocol", "data", str, "standard", "mnist split: standard, or reference (first 500 test, next 10000 "
            "train)"),
    Setting("image_shape", "data", str, None, "HEIGHTxWIDTH of the images the rows are, for the image figures and "
            "the power spectrum (unset: rows of a square number of values are square images; other rows get no "
            "image figures)", _image_shape, optional=True, type_doc="(int, int) or None",
            reader=lambda value: _image_shape("data.image_shape", value)),
    # [run]
    Setting("name", "run", str, "rkm", "model name (save point file names)", _model_name),
    Setting("log_every", "run", int, 250, "updates between rows of metrics.csv", _int()),
    Setting("save", "run", bool, True, "write save points", _checks.boolean, flag=""),
    Setting("n_generate", "run", int, 100, "samples generated from noise for the figures", _int()),
    Setting("generate_k", "run", str, 1000, "Gibbs steps when generating from noise: an integer, or k for the "
            "model's k (a model trained for generation at exactly k steps, e.g. vRDM)", _generate_k,
            reader=lambda value: _generate_k("run.generate_k", value)),
    Setting("n_eval", "run", int, 500, "test samples used for errors and sample metrics", _int()),
    Setting("quality_every", "run", int, 0, "updates between rows of metrics.csv that also record the quality of "
            "samples from noise (0: the last row only)", _int(0)),
    Setting("n_quality", "run", int, 500, "samples generated from noise for the quality columns of metrics.csv",
            _int()),
    Setting("progress", "run", bool, True, "show a progress bar", _checks.boolean, flag=""),
    Setting("lr_final", "run", float, None, "anneal the learning rate geometrically to this value at the end",
            _num(positive=True), optional=True),
    Setting("anneal_start", "run", float, 0.7, "fraction of max-epochs after which annealing starts",
            _num(lower=0.0, upper=1.0)),
    Setting("quick", "run", bool, False, "a smoke run's evaluation: the quality rows and the end-of-run evaluation "
            "generate at most 100 samples with at most 100 Gibbs steps (said in summary.json)", _checks.boolean,
            flag=""),
    Setting("init_from", "run", str, "", "start a new run from the parameters of a trained model: a run folder (its "
            "latest save point) or a save point file"),
    Setting("init_device_state", "run", bool, False, "with init_from: also take the source's device state (its "
            "fixed device-to-device spread and comparator offsets)", _checks.boolean),
)

SETTINGS: dict[tuple[str, str], Setting] = {(s.section, s.name): s for s in TABLE}
MODEL: dict[str, Setting] = {s.name: s for s in TABLE if s.section == "model"}
SEED_ORDER: tuple[str, ...] = tuple(s.name for s in TABLE if s.positional)
"""The seed constructor's 25 positional parameters, in order."""


def section(name: str) -> Iterator[Setting]:
    """The settings of one configuration table, in table order."""
    return (s for s in TABLE if s.section == name)


def config_defaults() -> dict[str, dict[str, Any]]:
    """Every configuration key and its default, by table."""
    out: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "run": {}}
    for s in TABLE:
        if s.in_config:
            out[s.section][s.name] = s.config_default
    return out


def constructor_signature(energy_type: str) -> inspect.Signature:
    """``(self, model_name, n_visible, n_hidden, k=1, ..., *, seed=None, ...)`` with this default energy."""
    params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    for s in section("model"):
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD if s.positional else inspect.Parameter.KEYWORD_ONLY
        default = energy_type if s.name == "energy_type" else s.default
        if s.name in ("model_name", "n_visible", "n_hidden"):
            params.append(inspect.Parameter(s.name, kind))
        else:
            params.append(inspect.Parameter(s.name, kind, default=default))
    return inspect.Signature(params)


def parameters_doc() -> str:
    """The numpydoc ``Parameters`` section of the constructor, from the table."""
    lines = ["Parameters", "----------"]
    for s in section("model"):
        choices = f" One of {', '.join(repr(c) for c in s.choices())}." if s.choices is not None else ""
        lines += [f"{s.name} : {s.type_doc or s.kind.__name__}" + ("" if s.positional else ", keyword-only"),
                  f"    {s.help[0].upper()}{s.help[1:]}.{choices} "
                  + ("Required." if s.default_text == "required" else f"Default: {s.default_text}.")]
    return "\n".join(lines)


# ------------------------------------------------------------------ rules between settings
TRAINING_SIZES = ("batch_size", "n_chains", "n_temperatures", "train_algo", "optimizer", "variability",
                  "conductance_range")
"""The model settings that change what training allocates (:func:`check_memory`)."""


def check_model(values: Mapping[str, Any]) -> None:
    """The rules between a model's settings (each already checked alone); raises a ConfigError.

    ``values`` holds the model settings by name, as the constructor takes them; ``n_visible``
    may be missing (a run configuration before its data is read: the rules then hold for one
    visible unit, the least any data needs). The rules: ``min_W < max_W``; conductance
    levels need a range and no more levels than the dtype has values in it; pulses of
    ``pulse_step_unit='relative'`` need a range, and no pulse may exceed its window; and no pass can overflow the dtype
    (:func:`rkm.core.limits.check_physics`). The constructor, every assignment
    ``model.NAME = value``, a run configuration and a save point apply them.
    """
    low, high = values["min_W"], values["max_W"]
    if low >= high:
        raise ConfigError(f"min_W ({_checks.shown(low)}) must be smaller than max_W ({_checks.shown(high)}).",
                          names=("min_W", "max_W"))
    interval, levels = values.get("conductance_range"), values.get("conductance_levels")
    devices.check_levels(interval, levels)
    pulse.check(values.get("optimizer", "SGD"), values.get("pulse_step_unit", "absolute"), interval,
                values.get("pulse_step", 0.01), (low, high))
    dtype = _checks.dtype(values.get("mytype", torch.float32))
    limits.check_physics(dtype, values.get("n_visible"), values["n_hidden"], g_v=values["g_v"],
                         g_h=values["g_h"], offset=values["offset"], min_W=low, max_W=high,
                         model_beta=values["model_beta"], conductance_range=interval,
                         variability=values.get("variability", 0.0), write_noise=values.get("write_noise", 0.0),
                         comparator_offset=values.get("comparator_offset", 0.0),
                         comparator_levels=values.get("comparator_levels", devices.IDEAL_LEVELS),
                         comparator_level_spread=values.get("comparator_level_spread", 0.0))
    if interval is not None and levels is not None:
        most = limits.distinct_values(interval[0], interval[1], dtype)
        if levels > most:
            raise ConfigError(f"conductance_levels={levels} asks for more levels than {_checks.dtype_name(dtype)} "
                              f"has values in conductance_range=({interval[0]:g}, {interval[1]:g}) ({most}); use at "
                              f"most conductance_levels={most}.", names=("conductance_levels", "conductance_range"))


def _training_bytes(values: Mapping[str, Any]) -> int:
    return limits.training_bytes(
        values.get("n_visible") or 1, values["n_hidden"], batch_size=values["batch_size"],
        n_chains=values.get("n_chains"), train_algo=values["train_algo"],
        n_temperatures=values.get("n_temperatures", 1), optimizer=values["optimizer"],
        dtype=_checks.dtype(values.get("mytype", torch.float32)),
        devices=values.get("conductance_range") is not None or bool(values.get("variability")),
        variability=values.get("variability", 0.0))


def check_memory(values: Mapping[str, Any], device: Any, held: Mapping[str, Any] | None = None) -> None:
    """Refuse, before allocating, a model whose training needs more memory than ``device`` has free.

    ``values`` are the model settings by name (``n_visible`` may be missing: one unit);
    ``held``, the settings of a model that exists already, whose share is allocated (an
    assignment ``model.batch_size = ...`` needs only the difference). The count is
    :func:`rkm.core.limits.training_bytes`: parameters, model chains and the passes of an update.
    """
    needed = _training_bytes(values) - (0 if held is None else _training_bytes(held))
    if needed <= 0:
        return
    chains, n_visible = values.get("n_chains"), values.get("n_visible")
    layers = (f"n_visible={n_visible} and n_hidden={values['n_hidden']}" if n_visible is not None else
              f"n_hidden={values['n_hidden']} and even one visible unit")
    what = (f"a model of {layers} trained with "
            f"batch_size={values['batch_size']}, n_chains={chains if chains is not None else values['batch_size']}"
            + (f" and n_temperatures={values['n_temperatures']}" if values["train_algo"] == "PT" else ""))
    limits.require(what, needed, _checks.device(device, available=False),
                   "use fewer units, a smaller batch_size or fewer n_chains",
                   names=("n_hidden", "batch_size", "n_chains", "n_temperatures"))
