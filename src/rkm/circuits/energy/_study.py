"""The energy study's driver: its settings, and one row per system, operation, size and batch."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ...core import comparators, limits
from ...core import units as si
from ...errors import ConfigError
from .. import meters
from ._cost import UPDATE_MODELS, circuit_costs, devices_of, synthetic_machine
from ._digital import DigitalRBM, time_call, torch_threads

__all__ = ["OPERATIONS", "CIRCUIT", "COLUMNS", "Settings", "Study", "run_study"]

OPERATIONS = ("pass", "gibbs", "update")
CIRCUIT = "rkm-circuit"
NOT_MEASURED = "not measured"
ESTIMATE = "estimate (--cpu-watts)"
DEFAULT_SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)
MAX_WINDOW_S = 3600.0
"""Longest timing, meter or idle window per configuration: an hour (``inf`` or a typo would never end)."""
MAX_CPU_WATTS = 100_000.0
"""The largest ``--cpu-watts`` (a processor draws a few hundred watts; a rack, a few tens of kilowatts)."""

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
    "update_model",
    "comparisons",
    "pulses",
    "modelled",
    "not_modelled",
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
    "comparison_energy_j",
    "comparison_time_s",
    "pulse_energy_j",
    "pulse_time_s",
)
"""Columns of ``energy.csv``. ``time_s``/``energy_j`` are per call on the whole batch,
``*_per_sample`` divide by ``batch``; ``update_model``, ``comparisons`` and ``pulses`` say how the
circuit's update was counted, ``modelled`` and ``not_modelled`` what its cost includes; the last
fourteen are the settings and units used."""

MODELLED = {
    "pass": "settling of the slowest node (ln(1/eps) tau_max); power of the settled network; comparator decisions",
    "gibbs": "two passes one after the other, each as a pass",
    "update": {
        "twin": "twin networks: the data pass on the clamped twin while the free twin runs the k chain steps "
                "(time of the slower twin); every pass's energy; one comparison per device; the pulses",
        "sequential": "one network: the data pass and the k chain steps one after the other; every pass's energy; "
                      "one comparison per device; the pulses",
    },
}
"""What the circuit rows' cost includes, per operation (``modelled`` column)."""
NOT_MODELLED = ("pass transients (charging the nodes); loading the data and reading the states; the sensing, "
                "comparison and pulse circuits beyond the energy and time per comparison and per pulse of the units")
"""What no circuit row counts (``not_modelled`` column)."""


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
    update_model: str = "twin"
    pulse_fraction: float = 1.0
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
            raise ConfigError(f"operations must be among {', '.join(OPERATIONS)}, got {', '.join(self.operations)}.",
                              names=("operations",))
        for name in ("samples", "k", "threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}.", names=(name,))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= 2**63 - 1:
            raise ConfigError(f"seed must be an integer in [0, 2^63 - 1], got {self.seed!r}.", names=("seed",))
        cores = os.cpu_count() or 1
        if self.threads > cores:
            raise ConfigError(f"threads={self.threads} is more than the {cores} cores here: the timing would measure "
                              f"threads waiting for cores; use at most threads={cores}.", names=("threads",))
        for name in ("min_time_s", "energy_window_s", "idle_s"):
            value = getattr(self, name)
            if not 0 < value <= MAX_WINDOW_S:
                raise ConfigError(f"{name} must lie in (0, {MAX_WINDOW_S:g}] seconds (a window per configuration), "
                                  f"got {value!r}.", names=(name,))
        if self.cpu_watts is not None and not 0 < self.cpu_watts <= MAX_CPU_WATTS:
            raise ConfigError(f"--cpu-watts must be a power in (0, {MAX_CPU_WATTS:g}] watts (a processor's "
                              f"average draw while it computes), got {self.cpu_watts!r}.", names=("cpu_watts",))
        if self.update_model not in UPDATE_MODELS:
            raise ConfigError(f"--update-model must be one of {', '.join(UPDATE_MODELS)}, got {self.update_model!r}.",
                              names=("update_model",))
        if not 0.0 <= self.pulse_fraction <= 1.0:
            raise ConfigError(f"--pulse-fraction must lie in [0, 1] (the fraction of devices pulsed per update), "
                              f"got {self.pulse_fraction!r}.", names=("pulse_fraction",))
        largest = max(self.sizes)
        limits.require(f"samples={self.samples} clamped states of the largest size n={largest}",
                       limits.sampling_bytes(self.samples, largest, largest, torch.float64), "cpu",
                       "use fewer samples or smaller sizes", names=("samples", "sizes"))
        limits.require(f"the digital RBM of n={largest} at batch={max(self.batches)}",
                       limits.training_bytes(largest, largest, batch_size=max(self.batches), dtype=self.dtype), "cpu",
                       "use smaller sizes or batches", names=("sizes", "batches"))
        rows = max(self.samples, *self.batches)
        limits.require_work(f"k={self.k} Gibbs steps of {rows} rows at the largest size n={largest}",
                            limits.sampling_work(rows, self.k, largest, largest), "use a smaller `k` or smaller sizes",
                            names=("k", "sizes"))

    def resolved_devices(self) -> tuple[str, ...]:
        """``devices``, or CPU plus CUDA when torch sees a GPU."""
        if self.devices is None:
            return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)
        for device in self.devices:
            if device not in ("cpu", "cuda"):
                raise ConfigError(f"devices must be cpu and/or cuda, got {device!r}.", names=("devices",))
            if device == "cuda" and not torch.cuda.is_available():
                raise ConfigError("devices includes cuda but torch sees no CUDA device here; leave cuda out.",
                                  names=("devices",))
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
    devices = devices_of(model)
    pulses = round(s.pulse_fraction * devices)
    costs = circuit_costs(model, v, h, s.units, k, s.update_model, pulses)
    out = []
    for op in s.operations:
        c = costs[op]
        modelled = MODELLED[op]
        update = {"update_model": s.update_model, "comparisons": devices, "pulses": pulses} if op == "update" else {}
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
                **update,
                "modelled": modelled[s.update_model] if isinstance(modelled, dict) else modelled,
                "not_modelled": NOT_MODELLED,
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
            with torch_threads(s.threads):
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
