"""Energy meters on a fake powercap tree and a mocked NVML: counters, wrap-around, windows, idle."""

from __future__ import annotations

import sys

import pytest

from rkm.circuits import meters


def _zone(root, folder, name, energy_uj, max_uj):
    path = root / folder
    path.mkdir(parents=True)
    (path / "name").write_text(f"{name}\n")
    (path / "energy_uj").write_text(f"{energy_uj}\n")
    (path / "max_energy_range_uj").write_text(f"{max_uj}\n")
    return path / "energy_uj"


@pytest.fixture()
def powercap(tmp_path):
    """Two packages (the second near its wrap), a core subzone, a psys zone and the control folder."""
    files = {
        "pkg0": _zone(tmp_path, "intel-rapl:0", "package-0", 1_000, 262_143_328_850),
        "pkg1": _zone(tmp_path, "intel-rapl:1", "package-1", 5_000_000, 10_000_000),
    }
    _zone(tmp_path, "intel-rapl:0:0", "core", 7, 100)  # a subzone (counted in its package already)
    _zone(tmp_path, "intel-rapl:0/intel-rapl:0:0", "core", 7, 100)
    _zone(tmp_path, "intel-rapl:2", "psys", 9, 100)  # the platform, not a package
    (tmp_path / "intel-rapl").mkdir()  # the control-type folder has no counter
    return tmp_path, files


def _set(path, value):
    path.write_text(f"{value}\n")


def test_rapl_sums_packages_and_unwraps_counters(powercap):
    root, f = powercap
    meter = meters.RaplMeter(root)
    assert [z.name for z in meter.zones] == ["package-0", "package-1"]
    assert meter.read_j() == 0.0
    _set(f["pkg0"], 2_501_000)  # +2.5 J
    _set(f["pkg1"], 9_000_000)  # +4.0 J
    assert meter.read_j() == pytest.approx(6.5, abs=1e-12)
    _set(f["pkg0"], 3_001_000)  # +0.5 J
    _set(f["pkg1"], 1_000_000)  # wrapped: 10 - 9 + 1 = +2.0 J
    assert meter.read_j() == pytest.approx(9.0, abs=1e-12)
    _set(f["pkg1"], 1_000_000)
    assert meter.read_j() == pytest.approx(9.0, abs=1e-12)  # no change, no phantom wrap


class FakeTime:
    """A clock that only moves when the measured code or ``sleep`` moves it."""

    def __init__(self):
        self.now = 100.0

    def clock(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def test_rapl_window_and_idle_subtraction_by_hand(powercap):
    root, f = powercap
    meter, t = meters.RaplMeter(root), FakeTime()
    counters = {"pkg0": 1_000, "pkg1": 5_000_000}

    def burn(seconds, pkg0_uj, pkg1_uj):
        t.advance(seconds)
        counters["pkg0"] += pkg0_uj
        counters["pkg1"] = (counters["pkg1"] + pkg1_uj) % 10_000_000  # package 1 wraps during the window
        _set(f["pkg0"], counters["pkg0"])
        _set(f["pkg1"], counters["pkg1"])

    # idle: 1 W on each package for 1 s, in 0.1 s sleeps
    idle = meters.idle_power_w(meter, 1.0, clock=t.clock, sleep=lambda s: burn(s, 100_000, 100_000))
    assert idle == pytest.approx(2.0)
    # each call: 0.1 s, package 0 +0.5 J, package 1 +1.5 J; the window runs until 0.35 s have passed
    window = meters.measure_window(lambda: burn(0.1, 500_000, 1_500_000), meter, 0.35, clock=t.clock, poll_s=0.0)
    assert window.calls == 4
    assert window.seconds == pytest.approx(0.4)
    assert window.energy_j == pytest.approx(8.0)  # 4 x (0.5 + 1.5), across a wrap of package 1
    assert meters.net_energy_j(window, idle) == pytest.approx(8.0 - 2.0 * 0.4)


def test_rapl_unavailable_says_why(tmp_path):
    meter, why = meters.cpu_meter(tmp_path / "missing")
    assert meter is None and why.startswith("no RAPL") and "does not exist" in why
    _zone(tmp_path, "intel-rapl:0", "psys", 1, 10)
    with pytest.raises(meters.MeterUnavailable, match="no package zone"):
        meters.RaplMeter(tmp_path)


class FakeNVML:
    """The part of pynvml the meter uses, with a scripted millijoule counter."""

    class NVMLError(Exception):
        pass

    def __init__(self, energy_mj=1_000_000, supported=True):
        self.energy_mj, self.supported, self.shutdowns = energy_mj, supported, 0

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetHandleByIndex(self, index):
        if index != 0:
            raise self.NVMLError("Invalid Argument")
        return "handle0"

    def nvmlDeviceGetName(self, handle):
        return b"Fake GPU"

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.supported:
            raise self.NVMLError("Not Supported")
        return self.energy_mj


def test_nvml_window_and_idle_subtraction_by_hand():
    nvml, t = FakeNVML(), FakeTime()
    meter, description = meters.gpu_meter(0, nvml)
    assert "Fake GPU" in description and meter.read_j() == 0.0

    def burn(seconds, watts):
        t.advance(seconds)
        nvml.energy_mj += round(watts * seconds * 1000)

    idle = meters.idle_power_w(meter, 0.5, clock=t.clock, sleep=lambda s: burn(s, 60.0))
    assert idle == pytest.approx(60.0)
    window = meters.measure_window(lambda: burn(0.02, 250.0), meter, 0.09, clock=t.clock)
    assert window.calls == 5 and window.seconds == pytest.approx(0.1)
    assert window.energy_j == pytest.approx(25.0)
    assert meters.net_energy_j(window, idle) / window.calls == pytest.approx((25.0 - 6.0) / 5)
    meter.close()
    assert nvml.shutdowns == 1


def test_nvml_unavailable_says_why(monkeypatch):
    nvml = FakeNVML(supported=False)
    meter, why = meters.gpu_meter(0, nvml)
    assert meter is None and "Volta" in why and nvml.shutdowns == 1
    meter, why = meters.gpu_meter(3, FakeNVML())
    assert meter is None and "GPU 3" in why
    monkeypatch.setitem(sys.modules, "pynvml", None)  # not installed
    with pytest.raises(meters.MeterUnavailable, match="nvidia-ml-py"):
        meters.NvmlMeter(0)
