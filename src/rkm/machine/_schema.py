"""The schema of a model's save point: the header values and tensors a model of its configuration has.

:func:`check` runs on a verified save point (:func:`rkm.io.savepoints.read_savepoint`) before any
model is built from it: the class; every constructor argument of the ``config`` (no key
missing or extra, each of its table type, each passing the check of its
:mod:`rkm.hyperparams` row); every ``state`` value (the update counter an integer >= 0, the
seed in the generator's range...); every tensor the schema knows (each of the shape and
dtype this configuration gives it, the required ones present, all finite).
:func:`check_against` then holds every other tensor (the state of components registered at
run time, such as device models) to a freshly built model of the same configuration: the
same names, shapes and dtypes; and the generator state to its size. Every problem is a
:class:`~rkm.errors.CheckpointError` that says what is wrong; nothing is loaded before all
checks pass.

Files written before rkm had parallel tempering lack ``config.n_temperatures`` and
``config.pt_beta_ratio``, and files written before it learned on the circuit lack the
:data:`CIRCUIT_KEYS` and the circuit's time and pulse sums; the settings then take their
defaults and the sums start at the file's update. Format 1 files may lack
``config.n_chains`` and ``state.fast_matmul`` (rkm before the architecture redesign) and may
hold optional tensors of inactive components (persistent chains without PCD, Adam moments
without Adam), which are ignored when loaded.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from .. import hyperparams
from ..core import _checks
from ..errors import CheckpointError, ConfigError
from ..io import savepoints

CLASSES = ("RKM", "RBM")
"""The model classes a save point may name."""
DEVICE_KEYS = tuple(name for name, s in hyperparams.MODEL.items() if s.owner == "devices")
"""The device non-idealities' settings (``rkm.core.devices``)."""
TEMPERING_KEYS = ("n_temperatures", "pt_beta_ratio")
"""The parallel-tempering ladder's settings (``train_algo='PT'``), recorded since rkm had PT."""
CIRCUIT_KEYS = ("learning_rule", "pulse_step", "pulse_step_unit", "pulse_dead_zone", "comparator_levels",
                "comparator_level_spread")
"""The settings of learning on the circuit (local rule, pulses, comparator output levels), recorded since rkm had
them."""
CONFIG_KEYS = (*hyperparams.SEED_ORDER, "n_chains", *DEVICE_KEYS, *TEMPERING_KEYS,
               *(key for key in CIRCUIT_KEYS if key not in DEVICE_KEYS))
"""The constructor arguments a save point's ``config`` holds."""
STATE_KEYS = ("epoch", "seed", "threshold_sharing", "fast_matmul", "rng_device", "run")
"""The values a save point's ``state`` holds (``run`` since format 3: the run folder it belongs to, or None)."""
_OPTIONAL_IN_V1 = {"config": ("n_chains", *DEVICE_KEYS), "state": ("fast_matmul", "run")}
RUN_PATTERN = re.compile(r"^[0-9a-f]{32}$")
"""A run's identifier (``rkm.app._runfolder``): 32 hexadecimal digits."""
_ADAM = ("m_dW", "v_dW", "m_dv", "v_dv", "m_dh", "v_dh")
_CENTERING = ("ov", "oh")
_SETTLED = ("energy_settled", "comparator_decisions", "energy_settled_since")
"""The sums of the energy in joules (``rkm.core.units``), since format 2."""
_CIRCUIT_SUMS = ("circuit_time", "sequential_time", "programming_pulses", "pulsed_updates")
"""The duration of the updates on twin networks and on one network, and the programming pulses, since rkm had
them (optional: files without them start these sums at their update)."""
_SCALARS = ("energy", "power_f", "power_b")
_RNG_DEVICES = ("cpu", "cuda", "mps", "xpu")
_TYPES: dict[str, tuple[type, ...]] = {"regularization": (bool, str), "fast_matmul": (bool,),
                                     "conductance_range": (list, tuple), "comparator_levels": (list, tuple)}
"""Settings whose saved values are not of their table kind (which says how configuration text is read)."""


def _fail(source: Any, message: str) -> CheckpointError:
    return CheckpointError(f"{source} {message}")


def _keys(values: dict[str, Any], expected: tuple[str, ...], optional: tuple[str, ...], what: str,
          source: Any) -> None:
    missing = [k for k in expected if k not in values and k not in optional]
    extra = sorted(set(values) - set(expected))
    if missing or extra:
        raise _fail(source, f"has a {what} with missing keys {missing} and unexpected keys {extra}; it was not "
                            "written by rkm or is corrupted.")


def _of_kind(setting: hyperparams.Setting, value: Any) -> bool:
    if value is None:
        return setting.optional
    if setting.name in _TYPES:
        return isinstance(value, _TYPES[setting.name])
    if isinstance(value, bool):
        return setting.kind is bool
    if setting.kind is int:
        return isinstance(value, int)
    if setting.kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, setting.kind)


def _checked(part: str, name: str, value: Any, source: Any) -> Any:
    """``value`` of ``part.name`` of a save point, of its setting's type and passing its check."""
    setting = hyperparams.MODEL[name]
    if not _of_kind(setting, value):
        raise _fail(source, f"has {part}.{name} = {value!r}, not of its type "
                            f"({setting.type_doc or setting.kind.__name__}).")
    try:
        return setting.validate(value)
    except ConfigError as err:
        raise _fail(source, f"has an invalid {part}.{name}: {err}") from None


def check_config(config: dict[str, Any], version: int, source: Any) -> dict[str, Any]:
    """The constructor arguments of a save point's ``config``, each checked; returns them normalised."""
    optional = (*(_OPTIONAL_IN_V1["config"] if version == 1 else ()), *TEMPERING_KEYS, *CIRCUIT_KEYS)
    _keys(config, CONFIG_KEYS, optional, "config", source)
    values = {}
    for name, value in config.items():
        if name == "average_data":
            if value is not None:
                raise _fail(source, f"has config.average_data = {value!r}; the data mean is stored as a tensor.")
            continue
        values[name] = _checked("config", name, value, source)
    if values["min_W"] >= values["max_W"]:
        raise _fail(source, f"has config.min_W = {values['min_W']} not below config.max_W = {values['max_W']}.")
    values.setdefault("n_chains", None)
    for name in (*TEMPERING_KEYS, *CIRCUIT_KEYS):
        values.setdefault(name, hyperparams.MODEL[name].default)
    return values


def check_state(state: dict[str, Any], version: int, source: Any) -> dict[str, Any]:
    """A save point's ``state`` (update counter, seed, sharing, fast products, generator device, run), checked."""
    optional = _OPTIONAL_IN_V1["state"] if version == 1 else ("run",) if version == 2 else ()
    _keys(state, STATE_KEYS, optional, "state", source)
    epoch = state["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch <= hyperparams.MAX_COUNT:
        raise _fail(source, f"has state.epoch = {_checks.shown(epoch)}; the update counter must be an integer from "
                            f"0 to {hyperparams.MAX_COUNT}.")
    if state["rng_device"] not in _RNG_DEVICES:
        raise _fail(source, f"has state.rng_device = {state['rng_device']!r}; expected one of {_RNG_DEVICES}.")
    run = state.get("run")
    if run is not None and not (isinstance(run, str) and RUN_PATTERN.match(run)):
        raise _fail(source, f"has state.run = {run!r}; a run is named by 32 hexadecimal digits, or null.")
    values = {"epoch": epoch, "rng_device": state["rng_device"], "run": run}
    for name in ("seed", "threshold_sharing", "fast_matmul"):
        values[name] = _checked("state", name, state.get(name), source)
    if values["seed"] is None:
        raise _fail(source, "has state.seed = None; a save point records the seed its generator started from.")
    return values


def expected_tensors(config: dict[str, Any], version: int,
                     present: set[str]) -> dict[str, tuple[tuple[int, ...] | None, torch.dtype]]:
    """Name -> (shape, dtype) of every tensor a save point of ``config`` may hold (shape None: 1-D, any size)."""
    nv, nh = config["n_visible"], config["n_hidden"]
    dtype = config["mytype"]
    chains = config["n_chains"] or config["batch_size"]
    spec: dict[str, tuple[tuple[int, ...] | None, torch.dtype]] = {
        "W": ((nh, nv), dtype), "v_bias": ((nv,), dtype), "h_bias": ((nh,), dtype), "rng_state": (None, torch.uint8),
        **{name: ((), torch.float64) for name in _SCALARS},
    }
    spec.update({"energy_settled": ((), torch.float64), "comparator_decisions": ((), torch.int64),
                 "energy_settled_since": ((), torch.int64), "circuit_time": ((), torch.float64),
                 "sequential_time": ((), torch.float64), "programming_pulses": ((), torch.int64),
                 "pulsed_updates": ((), torch.int64)})
    if config["centering"] or "average_data" in present:
        spec["average_data"] = ((nv,), dtype)
    lenient = version == 1
    if lenient or config["train_algo"] == "PCD":
        spec["persistent_chains"] = ((chains, nv), dtype)
    if config["train_algo"] == "PT":
        rungs = config["n_temperatures"]
        spec.update({"pt_chains": ((rungs, chains, nv), dtype), "pt_swaps_accepted": ((rungs - 1,), torch.int64),
                     "pt_swaps_attempted": ((rungs - 1,), torch.int64)})
    if lenient or config["optimizer"] == "Adam":
        spec.update({name: ((nh, nv) if name.endswith("W") else (nv,) if name.endswith("v") else (nh,), dtype)
                     for name in _ADAM})
    if "average_data" in spec:
        spec.update({"ov": ((nv,), dtype), "oh": ((nh,), dtype)})
    return spec


def check_tensors(tensors: dict[str, torch.Tensor], config: dict[str, Any], version: int, source: Any,
                  epoch: int = 0) -> None:
    """The required tensors present, every tensor of the schema of its shape and dtype, every tensor finite
    and within the ranges of :func:`out_of_range` (``epoch``: the update of the save point).

    Tensors outside the schema are left to :func:`check_against`.
    """
    spec = expected_tensors(config, version, set(tensors))
    required = ["W", "v_bias", "h_bias", "rng_state", *_SCALARS] + (["average_data"] if config["centering"] else [])
    required += list(_SETTLED) if version >= 2 else []
    missing = [name for name in required if name not in tensors]
    if missing:
        raise _fail(source, f"lacks the tensors {missing} that a model of its config has.")
    for group in (_ADAM, _CENTERING, _SETTLED, _CIRCUIT_SUMS):
        have = [name for name in group if name in tensors]
        if have and len(have) != len(group):
            raise _fail(source, f"holds only {have} of the tensors {list(group)}, which belong together.")
    for name, tensor in tensors.items():
        if name not in spec:
            continue
        shape, dtype = spec[name]
        if tensor.dtype != dtype:
            raise _fail(source, f"holds {name} of dtype {tensor.dtype}; its config needs {dtype}.")
        if (shape is None and tensor.dim() != 1) or (shape is not None and tuple(tensor.shape) != shape):
            wanted = "1-D" if shape is None else str(shape)
            raise _fail(source, f"holds {name} of shape {tuple(tensor.shape)}; its config needs {wanted}.")
    bad = non_finite(tensors)
    if bad:
        raise _fail(source, f"holds NaN or inf in {bad}; a save point keeps only finite states.")
    problems = out_of_range(tensors, config, epoch)
    if problems:
        raise _fail(source, f"holds values its model cannot have: {'; '.join(problems)}.")


def _range(tensor: torch.Tensor) -> str:
    return f"[{float(tensor.min()):g}, {float(tensor.max()):g}]"


def out_of_range(tensors: dict[str, torch.Tensor], config: dict[str, Any], epoch: int) -> list[str]:
    """What in a model's finite state lies outside the ranges its learning keeps it in, one phrase each.

    The update from 0 to :data:`rkm.hyperparams.MAX_COUNT`; parameters within ``[min_W, max_W]`` (every step clips
    them there, in their dtype); energies, powers, the circuit's times and pulses and other counters >= 0, the
    settled energy's start and the count of pulsed updates at most the update; chains of 0s and 1s;
    accepted swaps between 0 and those attempted; Adam's second moments >= 0.
    """
    problems = [] if 0 <= epoch <= hyperparams.MAX_COUNT else [f"update {epoch}, not from 0 to {hyperparams.MAX_COUNT}"]
    for name in ("W", "v_bias", "h_bias"):
        tensor = tensors[name]
        low, high = (torch.tensor(config[bound], dtype=tensor.dtype) for bound in ("min_W", "max_W"))
        if tensor.numel() and (bool(tensor.min() < low) or bool(tensor.max() > high)):
            problems.append(f"{name} in {_range(tensor)}, outside [min_W, max_W] = [{config['min_W']:g}, "
                            f"{config['max_W']:g}]")
    for name in ("energy", "power_f", "power_b", "energy_settled", "comparator_decisions", "v_dW", "v_dv", "v_dh",
                 "circuit_time", "sequential_time", "programming_pulses"):
        if name in tensors and tensors[name].numel() and bool(tensors[name].min() < 0):
            problems.append(f"{name} = {float(tensors[name].min()):g} < 0")
    for name in ("energy_settled_since", "pulsed_updates"):
        counted = tensors.get(name)
        if counted is not None and not 0 <= int(counted) <= epoch:
            problems.append(f"{name} = {int(counted)}, not an update from 0 to {epoch}")
    for name in ("persistent_chains", "pt_chains"):
        chain = tensors.get(name)
        if chain is not None and not bool(((chain == 0) | (chain == 1)).all()):
            problems.append(f"{name} with values other than 0 and 1 (in {_range(chain)})")
    accepted, attempted = tensors.get("pt_swaps_accepted"), tensors.get("pt_swaps_attempted")
    if accepted is not None and attempted is not None and accepted.shape == attempted.shape and not bool(
            ((accepted >= 0) & (accepted <= attempted)).all()):
        problems.append("pt_swaps_accepted outside [0, pt_swaps_attempted]")
    return problems


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating tensors of ``tensors`` that hold NaN or inf."""
    return [name for name, t in tensors.items() if t.is_floating_point() and not _checks.all_finite(t)]


def format_version(header: dict[str, Any]) -> int:
    """The format version a header was read from; a header made in memory (``model.savepoint()``) is current."""
    return int(header.get("format_version", savepoints.FORMAT_VERSION))


def check(tensors: dict[str, torch.Tensor], header: dict[str, Any],
          source: Any = "the save point") -> tuple[dict[str, Any], dict[str, Any]]:
    """Check a save point's class, config, state and the tensors of the schema; returns ``(config, state)``."""
    if header["class"] not in CLASSES:
        raise _fail(source, f"names the class {header['class']!r}; rkm saves {' and '.join(CLASSES)}.")
    version = format_version(header)
    config = check_config(header["config"], version, source)
    state = check_state(header["state"], version, source)
    check_tensors(tensors, config, version, source, state["epoch"])
    return config, state


def check_against(fresh: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], config: dict[str, Any],
                  state: dict[str, Any], device: torch.device, version: int, source: Any) -> None:
    """Hold the tensors the schema leaves open to ``fresh``, the state of a new model of the same config.

    Outside the schema, the save point must hold exactly the tensors ``fresh`` holds, of the same
    shapes and dtypes; the generator state must have the size of ``fresh``'s when it is for the
    same device.
    """
    spec = expected_tensors(config, version, set(tensors))
    unknown = sorted(set(tensors) - set(spec) - set(fresh))
    if unknown:
        raise _fail(source, f"holds tensors {unknown} that a model of its config does not have.")
    missing = sorted(set(fresh) - set(spec) - set(tensors))
    if missing:
        raise _fail(source, f"lacks the tensors {missing} that a model of its config has.")
    for name in sorted(set(tensors) - set(spec)):
        if tensors[name].dtype != fresh[name].dtype or tensors[name].shape != fresh[name].shape:
            raise _fail(source, f"holds {name} of {tensors[name].dtype} {tuple(tensors[name].shape)}; a model of "
                                f"its config has {fresh[name].dtype} {tuple(fresh[name].shape)}.")
    if state["rng_device"] == device.type and tensors["rng_state"].numel() != fresh["rng_state"].numel():
        raise _fail(source, f"holds a generator state of {tensors['rng_state'].numel()} bytes; a {device.type} "
                            f"generator's has {fresh['rng_state'].numel()}.")
