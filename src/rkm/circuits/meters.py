"""Energy meters: the CPU package through Linux RAPL (powercap), an NVIDIA GPU through NVML.

A meter is a cumulative counter: :meth:`Meter.read_j` returns the joules used since the
meter was made. :func:`measure_window` integrates it over a timed window of repeated
calls, :func:`idle_power_w` measures the idle baseline the same way, and
:func:`net_energy_j` subtracts one from the other; the study keeps both, never only the
difference.

* :class:`RaplMeter` reads ``energy_uj`` of every package zone (``intel-rapl:N`` whose
  ``name`` starts with ``package``; cores, uncore, DRAM and psys zones are left out) under
  ``/sys/class/powercap``. The counters wrap at ``max_energy_range_uj``: each read adds
  the increase since the previous read, plus the range when the counter went down, so a
  meter must be read at least once per wrap period (minutes at package power; the window
  loop reads it every ``poll_s``). Since Linux 5.10 ``energy_uj`` is readable by root only.
* :class:`NvmlMeter` reads ``nvmlDeviceGetTotalEnergyConsumption`` (millijoules since the
  driver loaded, Volta and later) through NVIDIA's own bindings, ``nvidia-ml-py``
  (``pip install 'rkm[gpu]'``), imported only when a GPU meter is asked for.

Why not a monitoring library: zeus-ml's ZeusMonitor reads the same two counters but
brings an HTTP client and pydantic, starts a polling process per RAPL file and takes the
sysfs path from module constants; codecarbon estimates emissions and, without a counter,
falls back to half the CPU's TDP, which would mix estimates into measurements; pyRAPL is Intel-only and
unmaintained since 2019. The kernel's powercap files are a stable, documented interface
(Documentation/power/powercap/powercap.rst) that a few lines read exactly, and NVML is
used through the official bindings that zeus itself uses.
"""

from __future__ import annotations

import importlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import RKMError

__all__ = [
    "Meter",
    "RaplMeter",
    "NvmlMeter",
    "MeterUnavailable",
    "Window",
    "cpu_meter",
    "gpu_meter",
    "measure_window",
    "idle_power_w",
    "net_energy_j",
    "POWERCAP_ROOT",
]

POWERCAP_ROOT = Path("/sys/class/powercap")
_PACKAGE_ZONE = re.compile(r"^intel-rapl:\d+$")


class MeterUnavailable(RKMError, RuntimeError):
    """No meter of this kind can be read here; the message says why and what would fix it."""


class Meter:
    """A cumulative energy counter. Subclasses set ``source`` and ``description``."""

    source = ""
    description = ""

    def read_j(self) -> float:
        """Joules used since the meter was made."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the counter (nothing to release by default)."""


@dataclass
class _Zone:
    energy_file: Path
    name: str
    max_range_uj: int
    last_uj: int


def _read_int(path: Path) -> int:
    return int(path.read_text().strip())


class RaplMeter(Meter):
    """Energy of every CPU package, from the Linux powercap RAPL counters.

    Parameters
    ----------
    root : path
        The powercap folder (default ``/sys/class/powercap``; tests pass a fake tree).

    Raises
    ------
    MeterUnavailable
        No package zone under ``root``, or its counters cannot be read.
    """

    source = "rapl"

    def __init__(self, root: Path | str = POWERCAP_ROOT) -> None:
        root = Path(root)
        if not root.is_dir():
            raise MeterUnavailable(f"no RAPL: {root} does not exist (no powercap driver, a virtual machine, "
                                   "or a CPU without RAPL)")
        self.zones: list[_Zone] = []
        for folder in sorted(root.iterdir(), key=lambda p: p.name):
            if not _PACKAGE_ZONE.match(folder.name) or not (folder / "name").is_file():
                continue
            name = (folder / "name").read_text().strip()
            if not name.startswith("package"):
                continue
            try:
                self.zones.append(_Zone(folder / "energy_uj", name, _read_int(folder / "max_energy_range_uj"),
                                        _read_int(folder / "energy_uj")))
            except PermissionError:
                raise MeterUnavailable(f"no RAPL: {folder / 'energy_uj'} is readable by root only; run as root "
                                       "or grant read access to the powercap energy_uj files") from None
            except (OSError, ValueError) as err:
                raise MeterUnavailable(f"no RAPL: cannot read {folder}: {err}") from None
        if not self.zones:
            raise MeterUnavailable(f"no RAPL: no package zone (intel-rapl:N named package-*) under {root}")
        self.total_uj = 0
        self.description = f"RAPL {', '.join(z.name for z in self.zones)} ({root})"

    def read_j(self) -> float:
        for zone in self.zones:
            now = _read_int(zone.energy_file)
            delta = now - zone.last_uj
            if delta < 0:  # the counter wrapped at max_energy_range_uj
                delta += zone.max_range_uj
            self.total_uj += delta
            zone.last_uj = now
        return self.total_uj * 1e-6


class NvmlMeter(Meter):
    """Energy of one NVIDIA GPU from NVML's total-energy counter (millijoules).

    Parameters
    ----------
    index : int
        NVML device index (the CUDA index unless ``CUDA_VISIBLE_DEVICES`` renumbers devices).
    nvml : module, optional
        The ``pynvml`` module of ``nvidia-ml-py``; imported when omitted (tests pass a fake).

    Raises
    ------
    MeterUnavailable
        ``nvidia-ml-py`` is missing, NVML cannot start, or the GPU has no energy counter.
    """

    source = "nvml"

    def __init__(self, index: int = 0, nvml: Any = None) -> None:
        if nvml is None:
            try:
                nvml = importlib.import_module("pynvml")
            except ImportError:
                raise MeterUnavailable("no NVML: install nvidia-ml-py (pip install 'rkm[gpu]')") from None
        self.nvml = nvml
        try:
            nvml.nvmlInit()
        except nvml.NVMLError as err:
            raise MeterUnavailable(f"no NVML: nvmlInit failed ({err}); is the NVIDIA driver loaded?") from None
        try:
            self.handle = nvml.nvmlDeviceGetHandleByIndex(index)
            name = nvml.nvmlDeviceGetName(self.handle)
            self.start_mj = nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
        except nvml.NVMLError as err:
            nvml.nvmlShutdown()
            raise MeterUnavailable(f"no NVML energy counter on GPU {index} ({err}); it needs a Volta or later "
                                   "GPU") from None
        self.description = f"NVML total energy, GPU {index} {name.decode() if isinstance(name, bytes) else name}"

    def read_j(self) -> float:
        return (self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.start_mj) * 1e-3

    def close(self) -> None:
        self.nvml.nvmlShutdown()


def cpu_meter(root: Path | str = POWERCAP_ROOT) -> tuple[Meter | None, str]:
    """The RAPL meter if one can be read, else ``(None, why not)``."""
    try:
        meter = RaplMeter(root)
    except MeterUnavailable as err:
        return None, str(err)
    return meter, meter.description


def gpu_meter(index: int = 0, nvml: Any = None) -> tuple[Meter | None, str]:
    """The NVML meter of GPU ``index`` if one can be read, else ``(None, why not)``."""
    try:
        meter = NvmlMeter(index, nvml)
    except MeterUnavailable as err:
        return None, str(err)
    return meter, meter.description


@dataclass(frozen=True)
class Window:
    """A measured window: its duration, the meter's energy over it, and the calls it ran."""

    seconds: float
    energy_j: float
    calls: int


def measure_window(
    fn: Callable[[], object],
    meter: Meter,
    min_seconds: float,
    *,
    sync: Callable[[], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    poll_s: float = 0.05,
) -> Window:
    """Call ``fn`` repeatedly for at least ``min_seconds`` and integrate ``meter`` over the calls.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before the window closes, so queued
    device work is inside it. The meter is read every ``poll_s`` seconds too, so a
    wrapping counter never wraps twice between reads.
    """
    if sync is not None:
        sync()
    start_j, start = meter.read_j(), clock()
    last_poll, calls = start, 0
    while True:
        fn()
        calls += 1
        now = clock()
        if now - start >= min_seconds:
            break
        if now - last_poll >= poll_s:
            meter.read_j()
            last_poll = now
    if sync is not None:
        sync()
    end = clock()
    return Window(seconds=end - start, energy_j=meter.read_j() - start_j, calls=calls)


def idle_power_w(
    meter: Meter,
    seconds: float,
    *,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], object] = time.sleep,
    poll_s: float = 0.1,
) -> float:
    """Mean power in watts the meter sees over ``seconds`` of sleeping: the idle baseline."""
    start_j, start = meter.read_j(), clock()
    while clock() - start < seconds:
        sleep(min(poll_s, seconds))
        meter.read_j()
    end_j = meter.read_j()
    return (end_j - start_j) / (clock() - start)


def net_energy_j(window: Window, idle_w: float) -> float:
    """Energy of a window above the idle baseline: ``energy - idle_w x seconds``."""
    return window.energy_j - idle_w * window.seconds
