"""Limits: the settings that keep the physics finite in a dtype, and bounds of what one call computes and allocates.

Three rules hold every number that enters rkm (a constructor argument, a configuration key, a flag,
a grid value, a save point's header), so that the API, the command line, sweeps and save points
refuse the same values with the same reasons:

* :func:`check_physics`: the worst case of every quantity a pass computes (node conductances,
  Kirchhoff numerators and their squares, the power of a sample, the scalar factors handed to
  torch) must be finite in the model's dtype, for every parameter the clipping range
  ``[min_W, max_W]`` (and the device model) allows. ``docs/reliability.md`` derives the bounds.
* :func:`require_work`: no call computes more than :data:`MAX_WORK` multiply-adds (a Gibbs
  chain's are counted by :func:`sampling_work`), so a mistyped count is refused, not run for days.
* :func:`require`: what a call is about to allocate, counted by :func:`training_bytes`,
  :func:`sampling_bytes`, :func:`ais_bytes`, :func:`states_bytes` or a caller's own count, must
  fit in the memory free on the device (RAM less the process's address-space limit and the
  container's memory limit, where those are smaller; or free CUDA memory); else a ConfigError
  that says how many bytes, before anything is allocated.

The save-point readers and ``rkm sweep`` use the same functions.
"""

from __future__ import annotations

import math
import os
import resource
from collections.abc import Iterable
from pathlib import Path

import psutil
import torch

from ..errors import ConfigError
from .comparators import DETERMINISTIC_BETA
from .network import FOLD_MIN_BETA

__all__ = [
    "PASS_TENSORS",
    "WEIGHT_COPIES",
    "SPREAD_SIGMAS",
    "SMALL_STATE",
    "physics_extremes",
    "check_physics",
    "distinct_values",
    "available_memory",
    "size_text",
    "require",
    "training_bytes",
    "sampling_bytes",
    "ais_bytes",
    "states_bytes",
    "MAX_WORK",
    "PASS_OVERHEAD",
    "sampling_work",
    "require_work",
]

PASS_TENSORS = 6
"""Tensors of a batch's size (rows x layer width) that a pass holds at once: the clamped layer,
the numerator, the comparator input, the noise, the probability and the sample."""

WEIGHT_COPIES = 4
"""Weight-sized tensors of a plain SGD update: ``W``, the ``|W|`` temporary of the pass constants,
the contrastive product and its difference (Adam adds two moments and a step, real devices a
realised copy, a spread draw and its factor)."""

SMALL_STATE = 1 << 16
"""Bytes of a model's small tensors, whatever its size: the generator's state (5 kB), scalars, counters."""

SPREAD_SIGMAS = 10.0
"""The largest standard normal draw that the device spread ``exp(variability * z)`` is bounded by
(torch draws nothing beyond 8.6 standard deviations in float64, 5.8 in float32)."""


# ------------------------------------------------------------------ the physics
def _sources(g_v: float, g_h: float, offset: float, levels: tuple[float, float], level_spread: float) -> float:
    """The largest magnitude of any source voltage: a clamped unit at a comparator's output voltage
    (``V_low``, ``V_high``, each moved by up to ten times ``comparator_level_spread``), its inverted
    copy (``c - V``) and the bias supplies (``g``, ``c - g``)."""
    low, high = levels[0] - SPREAD_SIGMAS * level_spread, levels[1] + SPREAD_SIGMAS * level_spread
    return max(1.0, abs(low), abs(high), abs(offset - low), abs(offset - high), g_v, g_h, abs(offset - g_v),
               abs(offset - g_h))


def _conductances(magnitude: float, g: float, conductance_range: tuple[float, float] | None,
                  variability: float) -> tuple[float, float]:
    """The largest realised conductance of a weight and of a bias resistor (``|b| / g``)."""
    weight, bias = magnitude, magnitude / g
    if conductance_range is not None:
        low, high = conductance_range
        weight, bias = min(max(weight, low), high), min(max(bias, low), high)
    spread = math.exp(min(SPREAD_SIGMAS * variability, 709.0))
    return weight * spread, bias * spread


def physics_extremes(n_visible: int, n_hidden: int, *, g_v: float, g_h: float, offset: float, min_W: float,
                     max_W: float, model_beta: float = 1.0, conductance_range: tuple[float, float] | None = None,
                     variability: float = 0.0, write_noise: float = 0.0, comparator_offset: float = 0.0,
                     comparator_levels: tuple[float, float] = (0.0, 1.0),
                     comparator_level_spread: float = 0.0) -> dict[str, float]:
    """Upper bounds of the magnitudes a pass computes, for every parameter in ``[min_W, max_W]``.

    With ``M = max(|min_W|, |max_W|)`` the largest realised weight conductance ``w`` (``M``,
    or clipped into ``conductance_range``, times the largest spread factor) and bias
    conductance ``u = M / g`` (the same way), a free node of a pass with ``n`` clamped units
    has a total conductance ``G <= n w + u``; its Kirchhoff numerator is a conductance-weighted
    sum of source voltages, ``|num| <= S G`` with ``S`` the largest source voltage (a unit sits at
    its comparator's output voltage, ``comparator_levels`` give or take ten ``comparator_level_spread``); the power
    of one sample is a sum over ``m`` free nodes of terms up to ``S^2 G``. Returns, over both
    directions:

    ``conductance``
        ``G``: node conductances and the bias and weight conductances themselves.
    ``numerator_squared``
        ``(S G)^2``: the square the power formula forms.
    ``power``
        ``4 m S^2 G``: twice the power of a sample (two of its three sums at once).
    ``drive_product``
        ``beta n m S^2 G``: the power's node term as the comparator input forms it (the
        inverse temperature is folded into the input for ``1e-6 <= beta <= 1000``,
        :data:`rkm.core.network.FOLD_MIN_BETA`).
    ``supply_factor``
        ``S^2 / g``: the scalar factor of the bias supplies' power, handed to torch.
    ``programmed_change``
        ``(max_W - min_W) (1 + 10 write_noise)``: a step's change of a parameter, with its write noise.
    ``comparator_input``
        ``n (S + 10 comparator_offset)``: a node voltage less its comparator's offset, layer-scaled.
    ``relaxation_time``
        ``2 / g_min`` with a conductance range (every node has a resistor of at least
        ``g_min``); 0 without one (a node whose resistors all vanish is isolated, its
        relaxation time infinite by definition).

    Every bound is computed in Python floats, where an overflow is ``inf``.
    """
    extremes: dict[str, float] = {}
    magnitude = max(abs(min_W), abs(max_W))
    s = _sources(g_v, g_h, offset, comparator_levels, comparator_level_spread)
    beta = model_beta if FOLD_MIN_BETA <= model_beta <= DETERMINISTIC_BETA else 1.0
    for n_clamped, n_free, g in ((n_visible, n_hidden, g_h), (n_hidden, n_visible, g_v)):
        weight, bias = _conductances(magnitude, g, conductance_range, variability)
        node = n_clamped * weight + bias
        candidates = {
            "conductance": node,
            "numerator_squared": (s * node) * (s * node),
            "power": 4.0 * n_free * s * s * node,
            "drive_product": beta * n_clamped * n_free * s * s * node,
            "supply_factor": s * s / g,
        }
        for key, value in candidates.items():
            extremes[key] = max(extremes.get(key, 0.0), value)
    extremes["relaxation_time"] = 2.0 / conductance_range[0] if conductance_range is not None else 0.0
    extremes["programmed_change"] = (max_W - min_W) * (1.0 + SPREAD_SIGMAS * write_noise)
    extremes["comparator_input"] = max(n_visible, n_hidden) * (s + SPREAD_SIGMAS * comparator_offset)
    return extremes


_WIDE = "narrow [min_W, max_W] (or conductance_range), raise a small g_v or g_h (a bias b is a conductance |b|/g)"
_LARGE = "bring a large `offset`, g_v, g_h, comparator_levels or comparator_level_spread down"
_CAUSES = {
    "conductance": f"{_WIDE}, or lower variability",
    "numerator_squared": f"{_WIDE}, {_LARGE}, or use fewer units",
    "power": f"{_WIDE}, {_LARGE}, or use fewer units",
    "drive_product": f"{_WIDE}, lower model_beta, {_LARGE}, or use fewer units",
    "supply_factor": f"raise a small g_v or g_h, or {_LARGE}",
    "relaxation_time": "raise the g_min of conductance_range",
    "programmed_change": "lower write_noise or narrow [min_W, max_W]",
    "comparator_input": "lower comparator_offset",
}


def check_physics(dtype: torch.dtype, n_visible: int | None, n_hidden: int, *, g_v: float, g_h: float,
                  offset: float, min_W: float, max_W: float, model_beta: float = 1.0,
                  conductance_range: tuple[float, float] | None = None, variability: float = 0.0,
                  write_noise: float = 0.0, comparator_offset: float = 0.0,
                  comparator_levels: tuple[float, float] = (0.0, 1.0), comparator_level_spread: float = 0.0) -> None:
    """Raise a ConfigError if a pass of such a machine could overflow ``dtype`` (:func:`physics_extremes`).

    ``n_visible`` None: not known yet (the data is not read), the bounds of one visible unit.
    The message names the settings that set the bound that broke and the dtype's largest value.
    """
    machine = (f"{n_visible} x {n_hidden} machine" if n_visible is not None else
               f"machine of n_hidden={n_hidden} and even one visible unit")
    n_visible = 1 if n_visible is None else n_visible
    largest, tiny = torch.finfo(dtype).max, torch.finfo(dtype).tiny
    if conductance_range is not None and not tiny <= conductance_range[0] <= conductance_range[1] <= largest:
        raise ConfigError(f"conductance_range=({_number(conductance_range[0])}, {_number(conductance_range[1])}) "
                          f"does not lie within the normal numbers of {str(dtype).removeprefix('torch.')}, "
                          f"[{_number(tiny)}, {_number(largest)}]; choose g_min and g_max in that range.",
                          names=("conductance_range",))
    extremes = physics_extremes(n_visible, n_hidden, g_v=g_v, g_h=g_h, offset=offset, min_W=min_W, max_W=max_W,
                                model_beta=model_beta, conductance_range=conductance_range, variability=variability,
                                write_noise=write_noise, comparator_offset=comparator_offset,
                                comparator_levels=comparator_levels, comparator_level_spread=comparator_level_spread)
    for key, value in extremes.items():
        if not value <= largest:
            wider = dtype != torch.float64 and all(v <= torch.finfo(torch.float64).max for v in extremes.values())
            raise ConfigError(
                f"these settings can overflow {str(dtype).removeprefix('torch.')}: with every parameter in "
                f"[min_W, max_W] = [{_number(min_W)}, {_number(max_W)}] a pass of a {machine} can reach a "
                f"{key.replace('_', ' ')} of {_number(value)}, beyond the dtype's largest value "
                f"{_number(largest)}; {_CAUSES[key]}" + (", or use mytype=torch.float64" if wider else "")
                + " (docs/reliability.md derives the bound).",
                names=("min_W", "max_W", "g_v", "g_h", "offset", "model_beta", "conductance_range", "mytype",
                       "variability", "write_noise", "comparator_offset", "comparator_levels",
                       "comparator_level_spread"))


def distinct_values(low: float, high: float, dtype: torch.dtype) -> int:
    """How many values of ``dtype`` lie in ``[low, high]`` (0 < low <= high): the most distinct conductance levels."""
    bits = {2: torch.int16, 4: torch.int32, 8: torch.int64}[torch.finfo(dtype).bits // 8]
    ends = torch.tensor([low, high], dtype=torch.float64).to(dtype)
    if not bool(torch.isfinite(ends).all()) or float(ends[0]) <= 0.0:
        return 0
    # positive floats are ordered as their bit patterns read as integers
    first, last = (int(x) for x in ends.view(bits).tolist())
    return last - first + 1


def _number(value: float) -> str:
    return f"{value:.4g}"


# ------------------------------------------------------------------ memory
def _cgroup_free() -> int | None:
    """Bytes the process's cgroup (v2) may still use, where it has a limit."""
    try:
        cgroup = Path("/proc/self/cgroup").read_text().strip().splitlines()
        relative = next(line.split(":", 2)[2] for line in cgroup if line.startswith("0::"))
        folder = Path("/sys/fs/cgroup") / relative.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text().strip())
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def _address_space_free() -> int | None:
    """Bytes of address space the process may still map (``ulimit -v``, ``prlimit --as``), where limited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return soft - psutil.Process(os.getpid()).memory_info().vms


def available_memory(device: torch.device) -> int | None:
    """Bytes free for new tensors on ``device``; None if unknown.

    On the CPU the smallest of the available RAM (psutil), the address space left under the
    process's limit and the memory left under its container's (cgroup v2) limit; on CUDA the
    free device memory (None where no CUDA device is seen: a configuration for another machine).
    """
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0]) if torch.cuda.is_available() else None
    if device.type != "cpu":
        return None
    limits = [int(psutil.virtual_memory().available), _address_space_free(), _cgroup_free()]
    return max(0, min(limit for limit in limits if limit is not None))


def size_text(n_bytes: float) -> str:
    """``n_bytes`` in decimal units: ``'8.0 TB'``."""
    units, i = ("bytes", "kB", "MB", "GB", "TB", "PB", "EB"), 0
    while n_bytes >= 1000 and i < len(units) - 1:
        n_bytes, i = n_bytes / 1000, i + 1
    return f"{n_bytes:.0f} bytes" if i == 0 else f"{n_bytes:.1f} {units[i]}"


def require(what: str, n_bytes: int, device: torch.device | str, hint: str, names: Iterable[str] = ()) -> None:
    """Raise a ConfigError, before allocating, when ``what`` needs more than the memory free on ``device``.

    ``names`` are the settings or arguments ``what`` and ``hint`` name (an interface that spells
    them otherwise translates them, see :class:`rkm.errors.RKMError`).
    """
    device = torch.device(device)
    free = available_memory(device)
    if free is not None and n_bytes > free:
        raise ConfigError(f"{what} needs about {size_text(n_bytes)} ({n_bytes} bytes) of memory on {device}, more "
                          f"than the {size_text(free)} available; {hint}.", names=tuple(names))


# ------------------------------------------------------------------ work
MAX_WORK = 10**16
"""The most multiply-adds one call may ask for: hours even at 10^12 a second (a large many-core
CPU), minutes on a large GPU. A count past it is a typo or a unit mistake (``-k 1e8``), not a job."""


PASS_OVERHEAD = 10**7
"""What a pass costs at least, in multiply-adds: launching its kernels takes some 10 us, 10^7
multiply-adds at 10^12 a second; so a billion steps of a tiny machine count as the hours they take."""


def sampling_work(rows: int, steps: int, n_visible: int, n_hidden: int) -> int:
    """Multiply-adds of ``steps`` Gibbs steps of ``rows`` chains: two passes of ``n_visible x n_hidden`` each,
    each counted as at least :data:`PASS_OVERHEAD`."""
    return 2 * steps * max(rows * n_visible * n_hidden, PASS_OVERHEAD)


def require_work(what: str, multiply_adds: int, hint: str, names: Iterable[str] = ()) -> None:
    """Raise a ConfigError, before any work, when ``what`` asks for more than :data:`MAX_WORK` multiply-adds.

    ``names`` are the settings or arguments ``what`` and ``hint`` name, as for :func:`require`.
    """
    if multiply_adds > MAX_WORK:
        hours = multiply_adds / 1e12 / 3600
        raise ConfigError(f"{what} asks for about {multiply_adds:.2g} multiply-adds, {hours:.3g} hours even at "
                          f"10^12 a second; rkm refuses more than {MAX_WORK:.0e} in one call (a count this large is "
                          f"usually a typo); {hint}.", names=tuple(names))


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype).element_size()


def training_bytes(n_visible: int, n_hidden: int, *, batch_size: int, n_chains: int | None = None,
                   train_algo: str = "PCD", n_temperatures: int = 1, optimizer: str = "SGD",
                   dtype: torch.dtype = torch.float32, devices: bool = False, variability: float = 0.0) -> int:
    """Bytes a model and its training hold at once: parameters, chains, one update's passes.

    Counts :data:`SMALL_STATE`, the weight-sized tensors (:data:`WEIGHT_COPIES`, plus Adam's moments and step and a
    real device model's realised copy and spread), and the rows of every pass of an update:
    the data batch and the model chains (``n_chains``, default ``batch_size``; times
    ``n_temperatures`` rungs for PT), each :data:`PASS_TENSORS` tensors wide over both layers.
    It is an upper bound of the peak that torch's profiler measures (``tests/test_properties_settings.py``
    holds it to every negative phase, Adam and real devices), within a factor of three.
    """
    item = _itemsize(dtype)
    weights = WEIGHT_COPIES + (3 if optimizer == "Adam" else 0) + (1 if devices else 0) + (2 if variability else 0)
    chains = batch_size if n_chains is None else n_chains
    rungs = n_temperatures if train_algo == "PT" else 1
    rows = batch_size + chains * rungs
    return SMALL_STATE + item * (weights * n_visible * n_hidden + PASS_TENSORS * rows * (n_visible + n_hidden))


def sampling_bytes(n_samples: int, n_visible: int, n_hidden: int, dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a Gibbs chain of ``n_samples`` rows (``generate``, ``reconstruct``): its passes' tensors."""
    return _itemsize(dtype) * PASS_TENSORS * n_samples * (n_visible + n_hidden)


def ais_bytes(n_chains: int, n_betas: int, n_visible: int, n_hidden: int) -> int:
    """Bytes of an AIS run (float64): the schedule, and the runs' states, fields and draws over both layers."""
    return 8 * (n_betas + PASS_TENSORS * n_chains * (n_visible + n_hidden) + n_chains)


def states_bytes(n_units: int, rows: int | None = None) -> int:
    """Bytes of ``rows`` (default all ``2**n_units``) states of ``n_units`` units as float64, with their indices."""
    rows = 2**n_units if rows is None else rows
    return rows * (8 * n_units + 8 * 2)

