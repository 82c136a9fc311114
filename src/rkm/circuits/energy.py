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
passes; the digital one adds the two contrastive products and the parameter step, the
circuit's learning-rule step itself is not modelled).

Power laws ``y = a N^b`` are fitted by least squares on log-log over the large sizes
(:func:`fit_power_law`, with a t-based confidence interval of ``b``); two fits cross at
``N* = (a2 / a1)^(1 / (b1 - b2))`` (:func:`crossovers`).
"""

from __future__ import annotations

import contextlib
import csv
import math
import platform
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..core import comparators
from ..core import units as si
from ..errors import ConfigError, DataError
from ..machine import RKM
from . import meters

__all__ = [
    "OPERATIONS",
    "CIRCUIT",
    "COLUMNS",
    "Cost",
    "Settings",
    "Study",
    "Fit",
    "Crossover",
    "synthetic_machine",
    "circuit_costs",
    "DigitalRBM",
    "time_call",
    "run_study",
    "fit_power_law",
    "fit_rows",
    "crossovers",
    "write_csv",
    "read_csv",
    "plot_study",
    "summary_text",
]

OPERATIONS = ("pass", "gibbs", "update")
CIRCUIT = "rkm-circuit"
QUANTITIES = ("time_per_sample_s", "power_w", "energy_per_sample_j")
NOT_MEASURED = "not measured"
ESTIMATE = "estimate (--cpu-watts)"
DEFAULT_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)

COLUMNS = (
    "system",
    "operation",
    "n",
    "n_visible",
    "n_hidden",
    "batch",
    "time_s",
    "time_q1_s",
    "time_q3_s",
    "timing_blocks",
    "power_w",
    "energy_j",
    "energy_source",
    "idle_power_w",
    "energy_gross_j",
    "time_per_sample_s",
    "energy_per_sample_j",
    "device",
    "threads",
    "dtype",
    "k",
    "samples",
    "weight_std",
    "bias_std",
    "conductance_s",
    "voltage_v",
    "node_capacitance_f",
    "settling_precision",
    "settling_multiple",
    "comparator_energy_j",
)
"""Columns of ``energy.csv``. ``time_s``/``energy_j`` are per call on the whole batch,
``*_per_sample`` divide by ``batch``; the last ten are the settings and units used."""


# ------------------------------------------------------------------ the circuit
@dataclass(frozen=True)
class Cost:
    """Duration, mean power and energy of one operation on one sample."""

    time_s: float
    power_w: float
    energy_j: float


def synthetic_machine(n: int, *, weight_std: float = 1.0, bias_std: float = 1.0, seed: int = 0) -> RKM:
    """An RKM with ``n_visible = n_hidden = n`` and size-independent conductance statistics.

    ``W``, ``v_bias`` and ``h_bias`` are drawn from ``Normal(0, weight_std)`` and
    ``Normal(0, bias_std)`` (float64, CPU, the model's own generator seeded with ``seed``),
    so every weight's conductance ``|W_ji|`` has the same distribution at every ``n``.
    """
    if not (math.isfinite(weight_std) and weight_std > 0 and math.isfinite(bias_std) and bias_std >= 0):
        raise ConfigError(f"weight_std must be > 0 and bias_std >= 0, got {weight_std!r} and {bias_std!r}.")
    model = RKM("energy", n, n, mytype=torch.float64, device="cpu", seed=seed, fast_matmul=False)
    g = model.generator
    model.W = torch.randn((n, n), generator=g, dtype=torch.float64) * weight_std
    model.v_bias = torch.randn(n, generator=g, dtype=torch.float64) * bias_std
    model.h_bias = torch.randn(n, generator=g, dtype=torch.float64) * bias_std
    return model


def circuit_costs(
    model: Any, v: torch.Tensor, h: torch.Tensor, units: si.Units = si.DEFAULT_UNITS, k: int = 1
) -> dict[str, Cost]:
    """Cost of a pass, a Gibbs step and a CD/PCD-k update of ``model``'s circuit, in SI units.

    Parameters
    ----------
    model : rkm.RBM or rkm.RKM
        Its parameters define the network (either energy type: the circuit is the same).
    v : Tensor, shape (S, n_visible)
        Clamped visible states of the forward passes; the power is the mean over them.
    h : Tensor, shape (S', n_hidden)
        Clamped hidden states of the backward passes.
    units : Units
    k : int
        Gibbs steps of the update (k + 1 forward passes, k backward).

    Returns
    -------
    dict
        ``{"pass": Cost, "gibbs": Cost, "update": Cost}``, each per sample.
    """
    tau_f, tau_b = model.relaxation_times()
    power_f = float(model.power_forward(v).mean(dtype=torch.float64))
    power_b = float(model.power_backward(h).mean(dtype=torch.float64))
    t_f, t_b = si.settling_time_s(tau_f, units), si.settling_time_s(tau_b, units)
    e_f, e_b = si.pass_energy_j(power_f, tau_f, units), si.pass_energy_j(power_b, tau_b, units)

    def cost(n_f: int, n_b: int) -> Cost:
        t, e = n_f * t_f + n_b * t_b, n_f * e_f + n_b * e_b
        return Cost(time_s=t, power_w=e / t, energy_j=e)

    return {"pass": cost(1, 0), "gibbs": cost(1, 1), "update": cost(k + 1, k)}


# ------------------------------------------------------------------ the digital RBM
class DigitalRBM:
    """The plain RBM's operations on a batch, as a digital computer runs them (torch).

    Parameters
    ----------
    W, v_bias, h_bias : Tensor
        Parameters, on the device and in the dtype to time (W is (n_hidden, n_visible)).
    batch : int
        Samples per call.
    generator : torch.Generator
        On the same device; draws the start states and every Bernoulli sample.
    k : int
        Gibbs steps of :meth:`update`.
    lr : float
        Learning rate of :meth:`update`.
    """

    def __init__(
        self,
        W: torch.Tensor,
        v_bias: torch.Tensor,
        h_bias: torch.Tensor,
        batch: int,
        generator: torch.Generator,
        k: int = 1,
        lr: float = 1e-3,
    ) -> None:
        self.W, self.a, self.b, self.g, self.k, self.lr = W, v_bias, h_bias, generator, k, lr
        shape = (batch, W.shape[1])
        self.v_data = comparators.random_binary(shape, generator, W.dtype, W.device)
        self.chains = comparators.random_binary(shape, generator, W.dtype, W.device)

    def _sample(self, bias: torch.Tensor, clamped: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(bias, clamped, weights)
        return comparators.binarise(comparators.Bernoulli(), x, 1.0, self.g)[1]

    def up(self, v: torch.Tensor) -> torch.Tensor:
        """Hidden sample given ``v``: ``h ~ Bernoulli(sigmoid(v W^T + b))``."""
        return self._sample(self.b, v, self.W.t())

    def down(self, h: torch.Tensor) -> torch.Tensor:
        """Visible sample given ``h``: ``v ~ Bernoulli(sigmoid(h W + a))``."""
        return self._sample(self.a, h, self.W)

    def forward_pass(self) -> torch.Tensor:
        """One forward pass on the batch."""
        return self.up(self.v_data)

    def gibbs_step(self) -> torch.Tensor:
        """One Gibbs step v -> h -> v on the batch."""
        return self.down(self.up(self.v_data))

    def update(self) -> None:
        """One PCD-k update: positive pass, k chain steps, contrastive products, SGD step."""
        n = self.v_data.shape[0]
        h_data = self.up(self.v_data)
        h = self.up(self.chains)
        v = self.down(h)
        for _ in range(self.k - 1):
            h = self.up(v)
            v = self.down(h)
        self.chains = v
        self.W.addmm_(h_data.t(), self.v_data, alpha=self.lr / n).addmm_(h.t(), v, alpha=-self.lr / n)
        self.a.add_(self.v_data.mean(0) - v.mean(0), alpha=self.lr)
        self.b.add_(h_data.mean(0) - h.mean(0), alpha=self.lr)

    def operation(self, name: str) -> Callable[[], object]:
        """The method that runs operation ``name`` (one of :data:`OPERATIONS`)."""
        return {"pass": self.forward_pass, "gibbs": self.gibbs_step, "update": self.update}[name]


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_call(fn: Callable[[], object], *, threads: int = 1, min_time_s: float = 0.2, warmup: int = 3) -> dict:
    """Median and quartiles of the duration of ``fn()`` with ``torch.utils.benchmark.Timer``.

    ``warmup`` calls run first; the timer then picks a block size and times blocks for at
    least ``min_time_s``, synchronising the accelerator around each block.

    Returns
    -------
    dict
        ``time_s`` (median per call), ``time_q1_s``, ``time_q3_s`` and ``timing_blocks``.
    """
    from torch.utils.benchmark import Timer

    with _torch_threads(threads):
        for _ in range(warmup):
            fn()
    measurement = Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads).blocked_autorange(min_run_time=min_time_s)
    q1, q3 = np.percentile(measurement.times, [25, 75])
    return {
        "time_s": measurement.median,
        "time_q1_s": float(q1),
        "time_q3_s": float(q3),
        "timing_blocks": len(measurement.times),
    }


# ------------------------------------------------------------------ the study
@dataclass(frozen=True)
class Settings:
    """Everything a study run depends on; see ``rkm energy --help`` for each field."""

    sizes: tuple[int, ...] = DEFAULT_SIZES
    batches: tuple[int, ...] = (1, 64)
    operations: tuple[str, ...] = OPERATIONS
    devices: tuple[str, ...] | None = None
    units: si.Units = si.DEFAULT_UNITS
    weight_std: float = 1.0
    bias_std: float = 1.0
    samples: int = 32
    k: int = 1
    threads: int = 1
    min_time_s: float = 0.2
    energy_window_s: float = 1.0
    idle_s: float = 2.0
    cpu_watts: float | None = None
    seed: int = 0
    dtype: torch.dtype = torch.float32
    powercap_root: Path = meters.POWERCAP_ROOT

    def __post_init__(self) -> None:
        if not self.sizes or any(not isinstance(n, int) or n < 1 for n in self.sizes):
            raise ConfigError(f"sizes must be integers >= 1, got {self.sizes!r}.")
        if not self.batches or any(not isinstance(b, int) or b < 1 for b in self.batches):
            raise ConfigError(f"batches must be integers >= 1, got {self.batches!r}.")
        unknown = set(self.operations) - set(OPERATIONS)
        if not self.operations or unknown:
            raise ConfigError(f"operations must be among {', '.join(OPERATIONS)}, got {', '.join(self.operations)}.")
        for name in ("samples", "k", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}.")
        for name in ("min_time_s", "energy_window_s", "idle_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}.")
        if self.cpu_watts is not None and not (math.isfinite(self.cpu_watts) and self.cpu_watts > 0):
            raise ConfigError(f"--cpu-watts must be a power > 0 in watts, got {self.cpu_watts!r}.")

    def resolved_devices(self) -> tuple[str, ...]:
        """``devices``, or CPU plus CUDA when torch sees a GPU."""
        if self.devices is None:
            return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        for device in self.devices:
            if device not in ("cpu", "cuda"):
                raise ConfigError(f"devices must be cpu and/or cuda, got {device!r}.")
            if device == "cuda" and not torch.cuda.is_available():
                raise ConfigError("devices includes cuda but torch sees no CUDA device; use --devices cpu.")
        return tuple(self.devices)


@dataclass
class Study:
    """Rows of a study run and how each system's energy was obtained."""

    settings: Settings
    rows: list[dict] = field(default_factory=list)
    meters: dict[str, str] = field(default_factory=dict)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _settings_columns(s: Settings, k: int) -> dict:
    return {"k": k, "samples": s.samples, "weight_std": s.weight_std, "bias_std": s.bias_std, **s.units.as_dict()}


def _circuit_rows(model: Any, v: torch.Tensor, s: Settings, k: int, n: int) -> list[dict]:
    h = model.v_to_h(v)[1]
    costs = circuit_costs(model, v, h, s.units, k)
    out = []
    for op in s.operations:
        c = costs[op]
        out.append(
            {
                "system": CIRCUIT,
                "operation": op,
                "n": n,
                "n_visible": model.n_visible,
                "n_hidden": model.n_hidden,
                "batch": 1,
                "time_s": c.time_s,
                "power_w": c.power_w,
                "energy_j": c.energy_j,
                "energy_source": "circuit model",
                "time_per_sample_s": c.time_s,
                "energy_per_sample_j": c.energy_j,
                "device": "resistor network (model)",
                "threads": "",
                "dtype": "float64",
            }
        )
    return out


class _System:
    """One digital device of the study: its meter (or none), idle baseline and energy label."""

    def __init__(self, device: str, s: Settings) -> None:
        self.device, self.settings = device, s
        self.name = f"rbm-{device}"
        if device == "cuda":
            index = torch.cuda.current_device()
            self.label = torch.cuda.get_device_name(index)
            self.meter, self.status = meters.gpu_meter(index)
            self.sync: Callable[[], None] | None = torch.cuda.synchronize
        else:
            self.label = _cpu_name()
            self.meter, self.status = meters.cpu_meter(s.powercap_root)
            self.sync = None
        self.idle_w = meters.idle_power_w(self.meter, s.idle_s) if self.meter is not None else None
        if self.meter is not None:
            self.status += f"; idle {self.idle_w:.3g} W over {s.idle_s:g} s"
        elif device == "cpu" and s.cpu_watts is not None:
            self.status += f"; energy estimated as {s.cpu_watts:g} W x time"

    def energy(self, fn: Callable[[], object], timing: dict, batch: int) -> dict:
        s = self.settings
        if self.meter is not None:
            with _torch_threads(s.threads):
                window = meters.measure_window(fn, self.meter, s.energy_window_s, sync=self.sync)
            assert self.idle_w is not None  # measured with the meter
            net = meters.net_energy_j(window, self.idle_w) / window.calls
            return {
                "power_w": net * window.calls / window.seconds,
                "energy_j": net,
                "energy_source": self.meter.source,
                "idle_power_w": self.idle_w,
                "energy_gross_j": window.energy_j / window.calls,
                "energy_per_sample_j": net / batch,
            }
        if self.device == "cpu" and s.cpu_watts is not None:
            energy = s.cpu_watts * timing["time_s"]
            return {
                "power_w": s.cpu_watts,
                "energy_j": energy,
                "energy_source": ESTIMATE,
                "energy_per_sample_j": energy / batch,
            }
        return {"energy_source": NOT_MEASURED}

    def close(self) -> None:
        if self.meter is not None:
            self.meter.close()


def _digital_rows(
    system: _System, params: Iterable[torch.Tensor], s: Settings, k: int, n: int, seed: int
) -> list[dict]:
    W, a, b = (p.to(device=system.device, dtype=s.dtype) for p in params)
    out = []
    for batch in s.batches:
        g = torch.Generator(device=system.device).manual_seed(seed)
        rbm = DigitalRBM(W.clone(), a.clone(), b.clone(), batch, g, k=k)
        for op in s.operations:
            fn = rbm.operation(op)
            timing = time_call(fn, threads=s.threads, min_time_s=s.min_time_s)
            out.append(
                {
                    "system": system.name,
                    "operation": op,
                    "n": n,
                    "n_visible": W.shape[1],
                    "n_hidden": W.shape[0],
                    "batch": batch,
                    **timing,
                    "time_per_sample_s": timing["time_s"] / batch,
                    **system.energy(fn, timing, batch),
                    "device": system.label,
                    "threads": s.threads if system.device == "cpu" else "",
                    "dtype": str(s.dtype).replace("torch.", ""),
                }
            )
    return out


def _size_seed(seed: int, n: int) -> int:
    return (int(seed) * 1_000_003 + int(n)) % (2**63)


def run_study(settings: Settings = Settings(), model: Any = None, visible: Any = None, progress: bool = True) -> Study:
    """Run the study: circuit rows and digital rows for every size (or for ``model``).

    Parameters
    ----------
    settings : Settings
    model : rkm.RBM or rkm.RKM, optional
        A trained model: one size, its own shape and parameters, ``model.k`` for updates.
    visible : array or Tensor, shape (S, n_visible), optional
        Clamped visible states of the model's forward passes (e.g. its training data);
        random 0/1 states when omitted.
    progress : bool
        A tqdm bar over the sizes.

    Returns
    -------
    Study
    """
    s = settings
    systems = [_System(device, s) for device in s.resolved_devices()]
    study = Study(
        settings=s,
        meters={
            CIRCUIT: "circuit model, SI units (rkm.core.units)",
            **{sys_.name: f"{sys_.label}: {sys_.status}" for sys_ in systems},
        },
    )
    sizes = [model.n_visible] if model is not None else sorted(set(s.sizes))
    try:
        from tqdm.auto import tqdm

        for n in tqdm(sizes, desc="rkm energy", unit="size", disable=not progress):
            seed = _size_seed(s.seed, n)
            if model is None:
                machine, k = synthetic_machine(n, weight_std=s.weight_std, bias_std=s.bias_std, seed=seed), s.k
            else:
                machine, k = model, model.k
                machine.generator = torch.Generator(device=machine.device).manual_seed(seed)
            if visible is None:
                g = torch.Generator().manual_seed(seed)
                v = comparators.random_binary((s.samples, machine.n_visible), g, machine.mytype, "cpu")
            else:
                v = torch.as_tensor(np.asarray(visible)[: s.samples])
            v = v.to(device=machine.device, dtype=machine.mytype)
            rows = _circuit_rows(machine, v, s, k, n)
            params = (machine.W, machine.v_bias, machine.h_bias)
            for system in systems:
                rows += _digital_rows(system, params, s, k, n, seed)
            for row in rows:
                row.update(_settings_columns(s, k))
            study.rows += rows
    finally:
        for system in systems:
            system.close()
    return study


# ------------------------------------------------------------------ fits and crossovers
@dataclass(frozen=True)
class Fit:
    """A power law ``y = prefactor * N^exponent`` fitted to one series of rows."""

    system: str
    operation: str
    batch: int
    quantity: str
    source: str
    exponent: float
    ci_low: float
    ci_high: float
    prefactor: float
    n_min: int
    n_max: int
    points: int

    def predict(self, n: Any) -> np.ndarray:
        """The fitted value at size(s) ``n``."""
        return self.prefactor * np.asarray(n, dtype=float) ** self.exponent


def fit_power_law(
    n: Sequence[float], y: Sequence[float], confidence: float = 0.95
) -> tuple[float, float, float, float]:
    """Least-squares fit of ``log y = log a + b log N``: ``(b, b_low, b_high, a)``.

    The interval is the two-sided Student-t interval of the slope at ``confidence``
    (NaN with two points, which leave no residual degree of freedom).
    """
    from scipy import stats

    sizes, values = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if sizes.size < 2 or np.unique(sizes).size < 2 or np.any(sizes <= 0) or np.any(values <= 0):
        raise DataError("a power-law fit needs at least two distinct sizes and positive values.")
    result = stats.linregress(np.log(sizes), np.log(values))
    if sizes.size > 2:
        half = float(stats.t.ppf(0.5 + confidence / 2, sizes.size - 2) * result.stderr)
    else:
        half = math.nan
    slope = float(result.slope)
    return slope, slope - half, slope + half, math.exp(result.intercept)


def _number(value: Any) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    return number if math.isfinite(number) and number > 0 else None


def _default_fit_min(rows: list[dict]) -> int:
    sizes = sorted({int(r["n"]) for r in rows})
    return sizes[(len(sizes) - 1) // 2] if len(sizes) >= 4 else sizes[0]


def fit_rows(rows: list[dict], min_n: int | None = None) -> list[Fit]:
    """Power-law fits of time per sample, power and energy per sample, per system, operation and batch.

    Only rows with ``n >= min_n`` count (default: the larger half of the sizes, from the
    median size up; all of them when there are fewer than four); energy and power are fitted only
    where they exist, and every fit carries its rows' ``energy_source``.
    """
    if not rows:
        return []
    min_n = _default_fit_min(rows) if min_n is None else min_n
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault((row["system"], row["operation"], int(row["batch"])), []).append(row)
    out = []
    for (system, op, batch), series in groups.items():
        for quantity in QUANTITIES:
            measured = [(int(r["n"]), _number(r.get(quantity))) for r in series if int(r["n"]) >= min_n]
            points = [(n, y) for n, y in measured if y is not None]
            if len({n for n, _ in points}) < 2:
                continue
            sources = sorted({r["energy_source"] for r in series})
            if quantity == "time_per_sample_s":
                source = "timed" if system != CIRCUIT else "circuit model"
            else:
                source = "/".join(sources)
            b, lo, hi, a = fit_power_law([n for n, _ in points], [y for _, y in points])
            out.append(
                Fit(
                    system,
                    op,
                    batch,
                    quantity,
                    source,
                    b,
                    lo,
                    hi,
                    a,
                    min(n for n, _ in points),
                    max(n for n, _ in points),
                    len(points),
                )
            )
    return out


@dataclass(frozen=True)
class Crossover:
    """Where the circuit's fitted power law meets a digital system's, for one quantity."""

    operation: str
    quantity: str
    system: str
    batch: int
    n_cross: float
    in_range: bool
    circuit_lower_above: bool
    measured: str = ""


def _measured_comparison(rows: list[dict], operation: str, quantity: str, system: str, batch: int) -> str:
    """Which of the circuit and ``system`` is lower at each size both measured, in words."""

    def values(name: str, b: int) -> dict[int, float]:
        chosen = (r for r in rows if r["system"] == name and r["operation"] == operation and int(r["batch"]) == b)
        found = {int(r["n"]): _number(r.get(quantity)) for r in chosen}
        return {n: y for n, y in found.items() if y is not None}

    circuit, other = values(CIRCUIT, 1), values(system, batch)
    common = sorted(n for n in circuit if n in other)
    if not common:
        return ""
    lower = [circuit[n] < other[n] for n in common]
    span = f"{len(common)} sizes {common[0]}..{common[-1]}"
    if all(lower) or not any(lower):
        return f"measured: circuit {'lower' if lower[0] else 'higher'} at all {span}"
    changes = [f"{a}..{b}" for a, b, x, y in zip(common, common[1:], lower, lower[1:]) if x != y]
    return f"measured: the order changes between N = {', '.join(changes)} ({span})"


def crossovers(fits: Iterable[Fit], rows: list[dict] | None = None) -> list[Crossover]:
    """Crossover sizes ``N*`` between the circuit (batch 1) and every digital fit of the same quantity.

    ``in_range`` says whether ``N*`` lies inside the sizes both fits cover (otherwise it
    is an extrapolation of the fits); ``circuit_lower_above`` whether the circuit is the
    lower one for ``N > N*``. With ``rows``, ``measured`` also says which one was lower at
    each size both were measured at, which the fits' range may leave out. Parallel fits
    (equal exponents) never cross and are left out.
    """
    fits = list(fits)
    circuit = {(f.operation, f.quantity): f for f in fits if f.system == CIRCUIT}
    out = []
    for f in fits:
        c = circuit.get((f.operation, f.quantity))
        if f.system == CIRCUIT or c is None or c.exponent == f.exponent:
            continue
        n_cross = math.exp((math.log(f.prefactor) - math.log(c.prefactor)) / (c.exponent - f.exponent))
        in_range = max(c.n_min, f.n_min) <= n_cross <= min(c.n_max, f.n_max)
        measured = _measured_comparison(rows, f.operation, f.quantity, f.system, f.batch) if rows else ""
        out.append(
            Crossover(f.operation, f.quantity, f.system, f.batch, n_cross, in_range, c.exponent < f.exponent, measured)
        )
    return out


# ------------------------------------------------------------------ output
def write_csv(study: Study, path: str | Path) -> Path:
    """Write the rows as ``path`` (columns :data:`COLUMNS`; empty cells where nothing was measured)."""
    path = Path(path)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, restval="", extrasaction="raise")
        writer.writeheader()
        for row in study.rows:
            writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return path


def read_csv(path: str | Path) -> list[dict]:
    """Rows of an ``energy.csv`` as dicts of strings (as written)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


_LABELS = {
    "time_per_sample_s": "time per sample (s)",
    "power_w": "power (W)",
    "energy_per_sample_j": "energy per sample (J)",
}


def plot_study(rows: list[dict], fits: list[Fit], path: str | Path) -> Path:
    """Log-log time, power and energy against N, one row of panels per operation, fits dashed over their range.

    Estimated energies (``--cpu-watts``) are drawn with open markers and labelled; a
    series without values in a panel is named in its corner with its ``energy_source``.
    """
    import matplotlib.pyplot as plt

    from .. import plots

    operations = [op for op in OPERATIONS if any(r["operation"] == op for r in rows)]
    series = sorted({(r["system"], int(r["batch"])) for r in rows}, key=lambda x: (x[0] != CIRCUIT, x))
    colours = {key: plt.cm.tab10(i % 10) for i, key in enumerate(series)}
    fig, axes = plt.subplots(len(operations), 3, figsize=(15, 4 * len(operations)), squeeze=False)
    fit_of = {(f.system, f.batch, f.operation, f.quantity): f for f in fits}
    for i, op in enumerate(operations):
        for j, quantity in enumerate(QUANTITIES):
            ax, missing = axes[i, j], []
            for key in series:
                chosen = [r for r in rows if (r["system"], int(r["batch"])) == key and r["operation"] == op]
                points = [(int(r["n"]), _number(r.get(quantity)), r["energy_source"]) for r in chosen]
                points = [p for p in points if p[1] is not None]
                if not points:
                    missing.append(
                        f"{key[0]}, batch {key[1]}: {', '.join(sorted({r['energy_source'] for r in chosen}))}"
                    )
                    continue
                estimate = quantity != "time_per_sample_s" and any(p[2] == ESTIMATE for p in points)
                label = f"{key[0]}, batch {key[1]}" + (" (estimate)" if estimate else "")
                ax.plot(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    "o",
                    color=colours[key],
                    label=label,
                    markerfacecolor="none" if estimate else colours[key],
                )
                fit = fit_of.get((key[0], key[1], op, quantity))
                if fit is not None:
                    grid = np.geomspace(fit.n_min, fit.n_max, 50)
                    ax.plot(
                        grid,
                        fit.predict(grid),
                        "--",
                        color=colours[key],
                        linewidth=1,
                        label=f"  fit N^{fit.exponent:.2f}",
                    )
            ax.set(
                xscale="log",
                yscale="log",
                xlabel="N (= n_visible = n_hidden)",
                ylabel=_LABELS[quantity],
                title=f"{op}: {_LABELS[quantity].split(' (')[0]}",
            )
            ax.grid(True, which="major", alpha=0.3)
            if missing:
                ax.text(
                    0.98,
                    0.02,
                    "\n".join(missing),
                    transform=ax.transAxes,
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color="0.35",
                )
            if ax.lines:
                ax.legend(fontsize=7)
    fig.tight_layout()
    plots.save(fig, path)
    return Path(path)


def summary_text(study: Study, fits: list[Fit], cross: list[Crossover]) -> str:
    """The terminal summary: how energy was obtained, fitted exponents with intervals, crossovers."""
    lines = ["energy sources:"]
    lines += [f"  {name:<12} {text}" for name, text in study.meters.items()]
    lines.append("")
    lines.append(
        f"{'system':<12} {'operation':<9} {'batch':>5}  {'quantity':<20} {'exponent':>8}  "
        f"{'95% interval':<17} {'fit range':<12} source"
    )
    for f in sorted(fits, key=lambda f: (f.operation, f.quantity, f.system != CIRCUIT, f.system, f.batch)):
        interval = "n/a (2 points)" if math.isnan(f.ci_low) else f"[{f.ci_low:.3f}, {f.ci_high:.3f}]"
        lines.append(
            f"{f.system:<12} {f.operation:<9} {f.batch:>5}  {f.quantity:<20} {f.exponent:>8.3f}  "
            f"{interval:<17} {f'{f.n_min}..{f.n_max}':<12} {f.source}"
        )
    lines.append("")
    if cross:
        lines.append("crossovers of the fitted laws (circuit vs digital):")
        for c in sorted(cross, key=lambda c: (c.operation, c.quantity, c.system, c.batch)):
            where = "inside the fitted sizes" if c.in_range else "extrapolated"
            side = "above" if c.circuit_lower_above else "below"
            lines.append(
                f"  {c.operation:<7} {c.quantity:<20} vs {c.system}, batch {c.batch:<4}: N* = {c.n_cross:.3g} "
                f"({where}); the circuit is lower {side} N*" + (f"; {c.measured}" if c.measured else "")
            )
    else:
        lines.append("crossovers: none (need fits of the circuit and a digital system of the same quantity)")
    return "\n".join(lines)
