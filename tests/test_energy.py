"""The energy study: circuit rows against the explicit circuit, scaling, fits, the CLI end to end."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from rkm.app._cli import main
from rkm.circuits import energy
from rkm.circuits.netlist import build_netlist, node_conductance, solve_pass
from rkm.core import units as si
from rkm.errors import ConfigError, DataError

UNITS = si.Units(conductance_s=2.5e-5, voltage_v=0.7, node_capacitance_f=3e-11, settling_precision=1e-4,
                 comparator_energy_j=2e-15)


def _explicit_pass(model, clamped, direction, units):
    """Power (W), duration (s) and energy (J) of one pass from the netlist, in SI units."""
    args = dict(direction=direction, g_v=model.g_v, g_h=model.g_h, offset=model.offset)
    solved = solve_pass(model.W, model.v_bias, model.h_bias, clamped, **args)
    power = solved.power.mean() * units.conductance_s * units.voltage_v**2
    # each free node is an RC: tau_j = C / G_j in SI, straight from the netlist's conductances
    G = node_conductance(build_netlist(model.W, model.v_bias, model.h_bias, clamped, **args))
    tau = units.node_capacitance_f / (G * units.conductance_s)
    duration = math.log(1 / units.settling_precision) * tau.max()
    return power, duration, power * duration + len(G) * units.comparator_energy_j


@pytest.mark.parametrize("offset", [0.0, 0.5])
def test_circuit_rows_equal_the_explicit_circuit(offset):
    model = energy.synthetic_machine(6, seed=3)
    model.offset = offset
    g = np.random.default_rng(1)
    v = torch.tensor((g.random((4, 6)) < 0.5).astype(float))
    h = torch.tensor((g.random((5, 6)) < 0.5).astype(float))
    costs = energy.circuit_costs(model, v, h, UNITS, k=2, update_model="sequential")

    p_f, t_f, e_f = _explicit_pass(model, v.numpy(), "forward", UNITS)
    p_b, t_b, e_b = _explicit_pass(model, h.numpy(), "backward", UNITS)
    assert costs["pass"].time_s == pytest.approx(t_f, rel=1e-9)
    assert costs["pass"].energy_j == pytest.approx(e_f, rel=1e-9)
    # power x settling time, plus the comparators: the power column is energy / time
    assert costs["pass"].power_w == pytest.approx(p_f + 6 * UNITS.comparator_energy_j / t_f, rel=1e-9)
    assert costs["gibbs"].energy_j == pytest.approx(e_f + e_b, rel=1e-9)
    assert costs["gibbs"].time_s == pytest.approx(t_f + t_b, rel=1e-9)
    assert costs["update"].energy_j == pytest.approx(3 * e_f + 2 * e_b, rel=1e-9)
    assert costs["update"].time_s == pytest.approx(3 * t_f + 2 * t_b, rel=1e-9)


def test_trainer_sum_gives_the_same_energy_as_the_passes():
    model = energy.synthetic_machine(5, seed=0)
    v = torch.tensor((np.random.default_rng(2).random((3, 5)) < 0.5).astype(float))
    tau_f, _ = model.relaxation_times()
    per_sample = model.power_forward(v)
    passes = sum(si.pass_energy_j(p, tau_f, UNITS) for p in per_sample)
    accumulated = float(per_sample.sum()) * si.slowest_relaxation(tau_f)
    assert si.training_energy_j(accumulated, decisions=3 * 5, units=UNITS) == pytest.approx(passes, rel=1e-12)


@pytest.mark.parametrize("algo", ["PCD", "hRDM"])
def test_training_energy_in_joules_is_every_pass_of_the_explicit_circuit(monkeypatch, algo):
    """model.si().energy_j: each pass of every update, solved as a netlist with the parameters it ran
    with, lasting its settling time, plus one comparator decision per free node and sample."""
    import rkm
    from rkm.io.datasets import bars_and_stripes

    model = rkm.RKM("m", 9, 6, k=2, lr=0.05, batch_size=4, train_algo=algo, offset=0.4, max_epochs=5, seed=3,
                    mytype=torch.float64, device="cpu", model_beta=0.3)
    passes = []
    original = model.network.pass_

    def recording(clamped, forward, beta, power=False, binary=False):
        if power:
            snapshot = rkm.RKM("s", 9, 6, device="cpu", mytype=torch.float64, offset=0.4)
            snapshot.W, snapshot.v_bias, snapshot.h_bias = model.W.clone(), model.v_bias.clone(), model.h_bias.clone()
            passes.append((snapshot, clamped.clone(), "forward" if forward else "backward"))
        return original(clamped, forward, beta, power, binary)

    monkeypatch.setattr(model.network, "pass_", recording)
    model.train(torch.tensor(bars_and_stripes(3)).double(), save=False)
    expected = 0.0
    for snapshot, clamped, direction in passes:
        _, _, energy_per_sample = _explicit_pass(snapshot, clamped, direction, UNITS)
        expected += energy_per_sample * clamped.shape[0]
    assert model.si(UNITS).energy_j == pytest.approx(expected, rel=1e-9)
    readings = model.si(UNITS)
    assert readings.power_f_w == pytest.approx(float(model.power_f) * UNITS.conductance_s * UNITS.voltage_v**2)


def test_scaling_of_the_circuit_over_64_to_1024():
    settings = energy.Settings(sizes=(64, 128, 256, 512, 1024), devices=(), samples=16, operations=("pass",))
    fits = {f.quantity: f for f in energy.fit_rows(energy.run_study(settings, progress=False).rows, min_n=64)}
    assert fits["energy_per_sample_j"].exponent == pytest.approx(1.0, abs=0.1)
    assert fits["power_w"].exponent == pytest.approx(2.0, abs=0.1)
    assert fits["time_per_sample_s"].exponent == pytest.approx(-1.0, abs=0.1)
    assert fits["power_w"].n_min == 64 and fits["power_w"].points == 5


def test_power_law_fit_and_crossover_by_hand():
    n = np.array([10.0, 100.0, 1000.0])
    b, lo, hi, a = energy.fit_power_law(n, 3.0 * n**1.5)
    assert (b, a) == (pytest.approx(1.5), pytest.approx(3.0))
    assert lo == pytest.approx(1.5) and hi == pytest.approx(1.5)
    noisy = 3.0 * n**1.5 * np.array([1.1, 0.9, 1.05])
    b, lo, hi, _ = energy.fit_power_law(n, noisy)
    assert lo < 1.5 < hi and lo < b < hi
    assert math.isnan(energy.fit_power_law(n[:2], n[:2])[1])
    assert energy.fit_power_law(n, [35.0, 35.0, 35.0]) == (0.0, 0.0, 0.0, 35.0)  # a constant estimate (--cpu-watts)
    with pytest.raises(DataError):
        energy.fit_power_law([5, 5], [1, 2])

    def fit(system, a, b):
        return energy.Fit(system, "pass", 1, "energy_per_sample_j", "x", b, b, b, a, 10, 10_000, 4)

    (cross,) = energy.crossovers([fit(energy.CIRCUIT, 1e-9, 1.0), fit("rbm-cpu", 1e-12, 2.0)])
    assert cross.n_cross == pytest.approx(1000.0) and cross.in_range and cross.circuit_lower_above
    assert energy.crossovers([fit(energy.CIRCUIT, 1e-9, 1.0), fit("rbm-cpu", 1e-12, 1.0)]) == []

    def row(system, n, value):
        return {"system": system, "operation": "pass", "n": n, "batch": 1, "energy_per_sample_j": value}

    rows = [row(energy.CIRCUIT, 10, 1.0), row(energy.CIRCUIT, 100, 5.0), row(energy.CIRCUIT, 1000, 9.0),
            row("rbm-cpu", 10, 2.0), row("rbm-cpu", 100, 4.0), row("rbm-cpu", 1000, "")]
    (cross,) = energy.crossovers([fit(energy.CIRCUIT, 1e-9, 1.0), fit("rbm-cpu", 1e-12, 2.0)], rows)
    assert cross.measured == "measured: the order changes between N = 10..100 (2 sizes 10..100)"


def _study(tmp_path, **kw):
    settings = energy.Settings(sizes=(8,), batches=(1, 3), operations=("pass", "update"), min_time_s=0.005,
                               energy_window_s=0.005, idle_s=0.005, devices=("cpu",), **kw)
    return energy.run_study(settings, progress=False)


def test_without_a_meter_the_cpu_energy_is_not_measured_or_a_labelled_estimate(tmp_path):
    rows = [r for r in _study(tmp_path, powercap_root=tmp_path / "none").rows if r["system"] == "rbm-cpu"]
    assert len(rows) == 4 and all(r["energy_source"] == energy.NOT_MEASURED and "energy_j" not in r for r in rows)
    study = _study(tmp_path, powercap_root=tmp_path / "none", cpu_watts=40.0)
    for r in (r for r in study.rows if r["system"] == "rbm-cpu"):
        assert r["energy_source"] == energy.ESTIMATE
        assert r["energy_j"] == pytest.approx(40.0 * r["time_s"])
        assert r["energy_per_sample_j"] == pytest.approx(r["energy_j"] / r["batch"])
    assert "estimated as 40 W" in study.meters["rbm-cpu"]


def test_a_rapl_meter_labels_its_rows_and_reports_the_idle_baseline(tmp_path):
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "energy_uj").write_text("123\n")
    (zone / "max_energy_range_uj").write_text("262143328850\n")
    study = _study(tmp_path, powercap_root=tmp_path, cpu_watts=40.0)
    rows = [r for r in study.rows if r["system"] == "rbm-cpu"]
    # a counter that never moves: measured zero, never replaced by the estimate
    assert all(r["energy_source"] == "rapl" and r["energy_j"] == 0.0 and r["idle_power_w"] == 0.0 for r in rows)
    assert "package-0" in study.meters["rbm-cpu"]


def test_the_digital_update_trains_the_weights():
    g = torch.Generator().manual_seed(0)
    W = torch.zeros(4, 6)
    rbm = energy.DigitalRBM(W, torch.zeros(6), torch.zeros(4), 5, g, k=2, lr=0.1)
    rbm.v_data = torch.ones(5, 6)
    for _ in range(20):
        rbm.update()
    assert float(W.mean()) > 0 and float(rbm.a.mean()) > 0  # data all ones: every weight and bias grows


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="operations"):
        energy.Settings(operations=("matvec",))
    with pytest.raises(ConfigError, match="cpu-watts"):
        energy.Settings(cpu_watts=-1.0)
    with pytest.raises(ConfigError, match="cpu and/or cuda"):
        energy.Settings(devices=("tpu",)).resolved_devices()
    with pytest.raises(ConfigError, match="settling_precision"):
        si.Units(settling_precision=1.0)
    with pytest.raises(ConfigError, match="conductance_s"):
        si.Units(conductance_s=0.0)
    with pytest.raises(DataError, match="never settles"):
        si.settling_time_s(torch.full((3,), math.inf))


def test_rkm_energy_end_to_end(tmp_path, capsys):
    out = tmp_path / "study"
    code = main(["energy", "--sizes", "32,64", "--out", str(out), "--no-progress", "--min-time", "0.02",
                 "--energy-window", "0.05", "--idle", "0.05"])
    assert code == 0
    rows = energy.read_csv(out / "energy.csv")
    with open(out / "energy.csv", newline="") as fh:
        assert tuple(next(csv.reader(fh))) == energy.COLUMNS
    systems = {(r["system"], r["operation"], r["n"], r["batch"]) for r in rows}
    assert len(rows) == len(systems) == 3 * 2 * (1 + 2)  # 3 operations, 2 sizes, circuit + cpu x 2 batches
    assert all(r["energy_source"] for r in rows)
    for r in rows:
        assert float(r["time_s"]) > 0 and r["conductance_s"] == "0.0001"
        if r["system"] == energy.CIRCUIT:
            assert r["energy_source"] == "circuit model" and float(r["energy_j"]) > 0
        elif r["energy_source"] == energy.NOT_MEASURED:
            assert r["energy_j"] == "" and r["power_w"] == ""
    with Image.open(out / "energy.png") as image:
        image.verify()
        assert image.format == "PNG"
    printed = capsys.readouterr().out  # two sizes: no fit, so nothing that timing noise could make fail or vary
    assert "no power-law fit: a fit needs 3 sizes" in printed and "interval" not in printed and "N*" not in printed
    assert "rkm-circuit" in printed and "wrote" in printed


def test_rkm_energy_errors_are_one_line(tmp_path, capsys):
    assert main(["energy", "--sizes", "8", "--devices", "gpu", "--out", str(tmp_path), "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("rkm: error: --devices must be cpu and/or cuda")
    assert main(["energy", "--sizes", "8", "--settling-precision", "2", "--out", str(tmp_path)]) == 2
    assert "--settling-precision" in capsys.readouterr().err


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rows(tmp_path):
    settings = energy.Settings(sizes=(64,), batches=(1,), operations=("pass",), devices=("cuda",), min_time_s=0.01,
                               energy_window_s=0.2, idle_s=0.2)
    (row,) = [r for r in energy.run_study(settings, progress=False).rows if r["system"] == "rbm-cuda"]
    assert row["time_s"] > 0 and row["energy_source"] in ("nvml", energy.NOT_MEASURED)


def test_rkm_energy_of_a_trained_run(tmp_path):
    run = tmp_path / "bars"
    train = ["train", "--preset", "bars", "--max-epochs", "20", "--log-every", "10", "--generate-k", "5",
             "--n-generate", "4", "--n-eval", "8", "--no-progress", "--run-dir", str(run)]
    assert main(train) == 0
    out = tmp_path / "study"
    args = ["energy", "--model", str(run), "--out", str(out), "--no-progress", "--min-time", "0.01",
            "--batches", "2", "--operations", "pass,update", "--sizes", "999"]
    assert main(args) == 0
    rows = energy.read_csv(out / "energy.csv")
    assert {(r["system"], r["n_visible"], r["n_hidden"], r["k"]) for r in rows} == {
        (energy.CIRCUIT, "16", "32", "3"), ("rbm-cpu", "16", "32", "3")}  # the run's shape and k, not --sizes
    assert main(args[:4] + [str(tmp_path / "again")] + args[5:]) == 0
    again = energy.read_csv(tmp_path / "again" / "energy.csv")
    circuit = [(r["operation"], r["power_w"], r["energy_j"]) for r in rows if r["system"] == energy.CIRCUIT]
    assert circuit == [(r["operation"], r["power_w"], r["energy_j"]) for r in again if r["system"] == energy.CIRCUIT]
