"""The cost of an update on twin networks, with the learning step: training's SI time and energy, and
``rkm energy``'s update rows, against a hand computation from every pass solved as an explicit netlist.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_energy import _explicit_pass

import rkm
from rkm.app._cli import main
from rkm.circuits import energy
from rkm.core import units as si
from rkm.errors import ConfigError
from rkm.io.datasets import bars_and_stripes

UNITS = si.Units(conductance_s=2.5e-5, voltage_v=0.7, node_capacitance_f=3e-11, settling_precision=1e-4,
                 comparator_energy_j=2e-15, comparison_energy_j=3e-14, comparison_time_s=2e-7, pulse_energy_j=5e-13,
                 pulse_time_s=1e-6)


def _record(model, monkeypatch):
    """Every pass of training: a snapshot of the machine it ran on, its clamped layer, its direction, its update."""
    passes, ends = [], []
    original = model.network.pass_

    def recording(clamped, forward, beta, power=False, binary=False):
        if power:
            snapshot = rkm.RKM("s", 9, 6, device="cpu", mytype=torch.float64, offset=model.offset)
            snapshot.W, snapshot.v_bias, snapshot.h_bias = model.W.clone(), model.v_bias.clone(), model.h_bias.clone()
            passes.append((len(ends), snapshot, clamped.clone(), "forward" if forward else "backward"))
        return original(clamped, forward, beta, power, binary)

    monkeypatch.setattr(model.network, "pass_", recording)
    return passes, ends


@pytest.mark.parametrize("optimizer", ["pulse", "SGD"])
@pytest.mark.parametrize("algo", ["PCD", "CD"])
def test_training_time_and_energy_on_twin_networks_by_hand(monkeypatch, optimizer, algo):
    model = rkm.RKM("m", 9, 6, k=2, lr=0.05, batch_size=4, n_chains=3, train_algo=algo, offset=0.4, max_epochs=5,
                    seed=3, mytype=torch.float64, device="cpu", model_beta=0.3, optimizer=optimizer, pulse_step=0.02,
                    pulse_dead_zone=0.1)
    passes, ends = _record(model, monkeypatch)
    model.train(torch.tensor(bars_and_stripes(3)).double(), save=False,
                callback=lambda m: ends.append(m.trainer.last_pulses))
    devices = 9 * 6 + 9 + 6
    twin = sequential = joules = 0.0
    for update, pulses in enumerate(ends):
        durations, spent = [0.0, 0.0], 0.0
        mine = [p for p in passes if p[0] == update]
        assert len(mine) == 1 + 2 * 2  # the data pass, then k = 2 steps of the chain
        for i, (_, snapshot, clamped, direction) in enumerate(mine):
            _, duration, energy_per_sample = _explicit_pass(snapshot, clamped.numpy(), direction, UNITS)
            durations[0 if i == 0 else 1] += duration * clamped.shape[0]  # one sample after another
            spent += energy_per_sample * clamped.shape[0]
        step = UNITS.comparison_time_s + (UNITS.pulse_time_s if pulses else 0.0)
        twin += max(durations) + step
        sequential += sum(durations) + step
        joules += spent + devices * UNITS.comparison_energy_j + (pulses or 0) * UNITS.pulse_energy_j
        if optimizer == "SGD":
            assert pulses is None
    readings = model.si(UNITS)
    assert readings.circuit_time_s == pytest.approx(twin, rel=1e-9)
    assert readings.sequential_time_s == pytest.approx(sequential, rel=1e-9)
    assert readings.energy_j == pytest.approx(joules, rel=1e-9)
    assert readings.pulses == sum(p or 0 for p in ends)
    # the free twin (3 chains x 4 passes) is the slower one here
    assert readings.circuit_time_s < readings.sequential_time_s


def test_update_rows_by_hand_twin_and_sequential():
    model = energy.synthetic_machine(6, seed=3)
    g = np.random.default_rng(1)
    v = torch.tensor((g.random((4, 6)) < 0.5).astype(float))
    h = torch.tensor((g.random((5, 6)) < 0.5).astype(float))
    _, t_f, e_f = _explicit_pass(model, v.numpy(), "forward", UNITS)
    _, t_b, e_b = _explicit_pass(model, h.numpy(), "backward", UNITS)
    devices = 36 + 12
    for k in (1, 3):
        twin = energy.circuit_costs(model, v, h, UNITS, k=k)["update"]
        sequential = energy.circuit_costs(model, v, h, UNITS, k=k, update_model="sequential")["update"]
        step_e = devices * UNITS.comparison_energy_j + devices * UNITS.pulse_energy_j  # every device pulsed once
        step_t = UNITS.comparison_time_s + UNITS.pulse_time_s
        assert twin.time_s == pytest.approx(max(t_f, k * (t_f + t_b)) + step_t, rel=1e-12)
        assert sequential.time_s == pytest.approx((k + 1) * t_f + k * t_b + step_t, rel=1e-12)
        for cost in (twin, sequential):
            assert cost.energy_j == pytest.approx((k + 1) * e_f + k * e_b + step_e, rel=1e-12)
            assert cost.power_w == pytest.approx(cost.energy_j / cost.time_s, rel=1e-12)
    none = energy.circuit_costs(model, v, h, UNITS, k=1, pulses=0)["update"]
    assert none.time_s == pytest.approx(t_f + t_b + UNITS.comparison_time_s, rel=1e-12)
    assert none.energy_j == pytest.approx(2 * e_f + e_b + devices * UNITS.comparison_energy_j, rel=1e-12)
    # without step costs (the default units) the twin update is the chain's passes alone
    plain = energy.circuit_costs(model, v, h, si.Units(**{**UNITS.__dict__, "comparison_energy_j": 0.0,
                                                          "comparison_time_s": 0.0, "pulse_energy_j": 0.0,
                                                          "pulse_time_s": 0.0}), k=1)["update"]
    assert plain.time_s == pytest.approx(t_f + t_b, rel=1e-12) and plain.energy_j == pytest.approx(2 * e_f + e_b)
    with pytest.raises(ConfigError, match="update_model must be one of twin, sequential"):
        energy.circuit_costs(model, v, h, UNITS, update_model="parallel")


def test_rkm_energy_update_rows_include_the_learning_step(tmp_path):
    out = tmp_path / "study"
    base = ["energy", "--sizes", "8,16", "--devices", "cpu", "--operations", "pass,update", "--no-progress",
            "--min-time", "0.01", "--batches", "1", "--settling-precision", "1e-4"]
    step = ["--comparison-energy", "3e-14", "--comparison-time", "2e-7", "--pulse-energy", "5e-13", "--pulse-time",
            "1e-6", "--pulse-fraction", "0.5"]
    assert main([*base, *step, "--out", str(out)]) == 0
    assert main([*base, "--update-model", "sequential", "--out", str(tmp_path / "seq")]) == 0
    rows = {(r["operation"], r["n"]): r for r in energy.read_csv(out / "energy.csv") if r["system"] == energy.CIRCUIT}
    plain = {(r["operation"], r["n"]): r for r in energy.read_csv(tmp_path / "seq" / "energy.csv")
             if r["system"] == energy.CIRCUIT}
    for n in (8, 16):
        update, passes, seq = rows[("update", str(n))], rows[("pass", str(n))], plain[("update", str(n))]
        devices = n * n + 2 * n
        assert int(update["comparisons"]) == devices and int(update["pulses"]) == round(0.5 * devices)
        assert update["update_model"] == "twin" and seq["update_model"] == "sequential"
        assert "twin networks" in update["modelled"] and "pass transients" in update["not_modelled"]
        assert passes["comparisons"] == "" and passes["modelled"].startswith("settling")
        step_e = devices * 3e-14 + round(0.5 * devices) * 5e-13
        # the sequential run has no step costs: its update energy is the passes' alone, the same in both
        assert float(update["energy_j"]) == pytest.approx(float(seq["energy_j"]) + step_e, rel=1e-12)
        assert float(update["comparison_energy_j"]) == 3e-14 and float(update["pulse_time_s"]) == 1e-6
        t_pass = float(passes["time_s"])
        assert float(update["time_s"]) > float(seq["time_s"]) - t_pass  # twin: one forward pass fewer, plus the step
        assert float(update["time_s"]) == pytest.approx(float(seq["time_s"]) - t_pass + 2e-7 + 1e-6, rel=1e-12)
    for r in energy.read_csv(out / "energy.csv"):
        if r["system"] != energy.CIRCUIT:
            assert r["modelled"] == "" and r["update_model"] == ""


def test_step_cost_units_are_checked():
    for name in ("comparison_energy_j", "comparison_time_s", "pulse_energy_j", "pulse_time_s"):
        with pytest.raises(ConfigError, match=f"{name} must be a number in \\[0, "):
            si.Units(**{name: -1.0})
        with pytest.raises(ConfigError, match=f"{name} must be a number in \\[0, "):
            si.Units(**{name: math.inf})
    assert si.DEFAULT_UNITS.pulse_energy_j == 0.0 and si.DEFAULT_UNITS.comparison_time_s == 0.0
