"""Device non-idealities (``rkm.core.devices.Devices``): the circuit they realise, their statistics,
save points, and what they do to learning.

Every physical check holds the model to the explicit circuit of ``rkm.circuits.netlist.netlist_of`` (rkm's
sparse Kirchhoff solve) and to ngspice, never to the formulas of ``rkm.core.devices``; every
statistical check compares the realised values with what the documentation promises, computed
here with NumPy and SciPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from test_ngspice import clamped_states, model_pass, needs_ngspice, random_machine

import rkm
import rkm.app.config
import rkm.app.run
from rkm.circuits.netlist import (
    NODE_CAPACITANCE,
    edge_power,
    netlist_of,
    node_conductance,
    solve_netlist,
)
from rkm.circuits.spice import ngspice_relaxation_time, simulate_ngspice
from rkm.core.devices import Devices
from rkm.io.datasets import bars_and_stripes
from rkm.training import monitored_error
from rkm.training._accounting import PassRecorder

OFFSETS = [0.0, 0.5, 1.0]
DIRECTIONS = ["forward", "backward"]
ALL_ON = dict(conductance_range=(0.3, 1.6), conductance_levels=6, level_spacing="log", variability=0.3,
              write_noise=0.2, comparator_offset=0.2)
BAS = torch.tensor(bars_and_stripes(4)).double()


def all_on(model, **settings):
    """Switch every non-ideality of ``model`` on (in table order: the levels need the range)."""
    for name, value in {**ALL_ON, **settings}.items():
        setattr(model, name, value)
    return model


def trained_machine(offset, layer_scaled=True, seed=3):
    """The 5x4 machine of test_ngspice with every non-ideality on, after a few noisy writes."""
    model = all_on(random_machine(offset, layer_scaled, seed=seed))
    model.max_epochs, model.lr, model.batch_size = 4, 0.05, 4
    data = torch.randint(0, 2, (8, 5), generator=torch.Generator().manual_seed(seed)).double()
    model.train(data, save=False)
    return model


def with_offsets(model, direction, volts):
    """Node voltages from the model's comparator inputs: ``x / scale + V_os`` (the documented entry)."""
    offsets = model.devices.comparator_offsets(direction == "forward")
    return volts + offsets.numpy()


def conductances(model):
    """Realised conductances of every weight and bias device, and the programmed ones, as NumPy."""
    W, a, b = (t.numpy() for t in model.realised_parameters())
    pW, pa, pb = (t.numpy() for t in (model.W, model.v_bias, model.h_bias))
    realised = np.concatenate([np.abs(W).ravel(), np.abs(a) / model.g_v, np.abs(b) / model.g_h])
    programmed = np.concatenate([np.abs(pW).ravel(), np.abs(pa) / model.g_v, np.abs(pb) / model.g_h])
    return realised, programmed


def machine(n_visible=40, n_hidden=30, seed=0, **settings):
    model = rkm.RKM("dev", n_visible, n_hidden, mytype=torch.float64, device="cpu", seed=seed, g_v=0.7, g_h=0.4,
                    **settings)
    g = torch.Generator().manual_seed(seed + 100)
    model.W = torch.randn(n_hidden, n_visible, generator=g, dtype=torch.float64)
    model.v_bias = torch.randn(n_visible, generator=g, dtype=torch.float64)
    model.h_bias = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    return model


# --------------------------------------------------------------------------- #
# Off by default: nothing changes
# --------------------------------------------------------------------------- #
def test_every_non_ideality_at_its_off_value_trains_bit_identically():
    settings = dict(k=2, lr=0.05, batch_size=8, max_epochs=40, train_algo="PCD", seed=5, device="cpu")
    plain = rkm.RKM("a", 16, 10, **settings)
    off = rkm.RKM("a", 16, 10, conductance_range=None, conductance_levels=None, level_spacing="log",
                  variability=0.0, write_noise=0.0, comparator_offset=0.0, **settings)
    assert isinstance(off.devices, Devices)
    for model in (plain, off):
        model.train(BAS.float(), save=False)
    for name in ("W", "v_bias", "h_bias", "energy", "power_f", "power_b"):
        assert torch.equal(getattr(plain, name), getattr(off, name)), name
    assert torch.equal(plain.generator.get_state(), off.generator.get_state())
    # off, the realised parameters are the programmed tensors themselves, and nothing is saved
    assert all(r is p for r, p in zip(off.realised_parameters(), (off.W, off.v_bias, off.h_bias)))
    assert off.devices.state_dict() == {}
    assert off.devices.comparator_offsets(True) is None


def test_devices_draw_after_the_initial_parameters():
    ideal = rkm.RKM("a", 16, 10, seed=3, device="cpu")
    real = rkm.RKM("a", 16, 10, seed=3, device="cpu", variability=0.2, comparator_offset=0.1)
    for name in ("W", "v_bias", "h_bias"):
        assert torch.equal(getattr(ideal, name), getattr(real, name))
    assert not torch.equal(ideal.generator.get_state(), real.generator.get_state())


# --------------------------------------------------------------------------- #
# The circuit of the realised parameters
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layer_scaled", [True, False])
def test_with_every_non_ideality_on_the_model_equals_the_circuit_of_netlist_of(offset, direction, layer_scaled):
    model = trained_machine(offset, layer_scaled)
    clamped = clamped_states(model, direction)
    net = netlist_of(model, clamped, direction)
    # every resistor of the circuit is a device: zero weights included (a device never switches off)
    assert net.n_edges == model.n_visible * model.n_hidden + (model.n_hidden if direction == "forward"
                                                               else model.n_visible)
    volts, power, tau = model_pass(model, clamped, direction)
    circuit_volts = solve_netlist(net)
    np.testing.assert_allclose(with_offsets(model, direction, volts), circuit_volts, rtol=0, atol=1e-10)
    np.testing.assert_allclose(power, edge_power(net, circuit_volts), rtol=0, atol=1e-10)
    np.testing.assert_allclose(tau, NODE_CAPACITANCE / node_conductance(net), rtol=1e-10)


def test_the_power_a_training_update_accounts_is_that_of_the_realised_circuit():
    model = all_on(random_machine(0.5, seed=11))
    v, h = clamped_states(model, "forward", n=4, seed=12), clamped_states(model, "backward", n=4, seed=13)
    recorder = PassRecorder(model.network, model.model_beta)
    recorder.forward(v, binary=True)
    recorder.backward(h)
    measured = recorder.close()
    for clamped, direction, power in ((v, "forward", measured.power_f), (h, "backward", measured.power_b)):
        net = netlist_of(model, clamped, direction)
        assert float(power) == pytest.approx(edge_power(net, solve_netlist(net)).mean(), rel=1e-10)


@needs_ngspice
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_with_every_non_ideality_on_the_model_equals_ngspice(offset, direction):
    model = trained_machine(offset, seed=6)
    clamped = clamped_states(model, direction, n=2, seed=7)
    net = netlist_of(model, clamped, direction)
    volts, power, tau = model_pass(model, clamped, direction)
    volts = with_offsets(model, direction, volts)
    for sample in range(2):
        op = simulate_ngspice(net, sample)
        np.testing.assert_allclose(volts[sample], op.voltages, rtol=1e-9, atol=1e-12)
        assert power[sample] == pytest.approx(op.power, rel=1e-9)
    measured = [ngspice_relaxation_time(net, name, NODE_CAPACITANCE) for name in net.free_names]
    np.testing.assert_allclose(measured, tau, rtol=1e-3)


# --------------------------------------------------------------------------- #
# Statistics of each non-ideality
# --------------------------------------------------------------------------- #
def test_realised_conductances_lie_in_the_range_and_keep_their_terminal():
    model = machine(conductance_range=(0.2, 1.1))
    model.W[0, :5] = 0.0
    realised, programmed = conductances(model)
    weights = np.abs(model.realised_parameters()[0].numpy())
    assert weights.min() == 0.2 and weights.max() == 1.1  # exactly; a bias's |b|/g to rounding
    assert realised.min() >= 0.2 * (1 - 1e-15) and realised.max() <= 1.1 * (1 + 1e-15)
    inside = (programmed >= 0.2) & (programmed <= 1.1)
    assert inside.sum() > 100
    np.testing.assert_allclose(realised[inside], programmed[inside], rtol=1e-14)
    W = model.realised_parameters()[0]
    nonzero = model.W != 0
    assert torch.equal(torch.sign(W[nonzero]), torch.sign(model.W[nonzero]))
    # a programmed 0 is g_min on the direct terminal
    assert torch.equal(W[0, :5], torch.full((5,), 0.2, dtype=torch.float64))


@pytest.mark.parametrize("spacing", ["linear", "log"])
@pytest.mark.parametrize("levels", [2, 5, 16])
def test_realised_conductances_take_at_most_L_levels_the_nearest_ones(spacing, levels):
    low, high = 0.05, 2.0
    model = machine(conductance_range=(low, high), conductance_levels=levels, level_spacing=spacing)
    realised, programmed = conductances(model)
    grid = np.linspace(low, high, levels) if spacing == "linear" else np.geomspace(low, high, levels)
    assert len(np.unique(np.abs(model.realised_parameters()[0].numpy()))) <= levels
    assert len(np.unique(np.round(realised, 12))) <= levels
    np.testing.assert_allclose(np.unique(np.round(realised, 12)), grid[np.isin(np.round(grid, 12),
                                                                               np.round(realised, 12))])
    clipped = np.clip(programmed, low, high)
    space = (lambda x: x) if spacing == "linear" else np.log
    nearest = grid[np.argmin(np.abs(space(clipped)[:, None] - space(grid)[None, :]), axis=1)]
    np.testing.assert_allclose(realised, nearest, rtol=1e-12)


def test_the_spread_is_lognormal_with_log_standard_deviation_s():
    s = 0.2
    model = machine(n_visible=80, n_hidden=60, variability=s)
    realised, programmed = conductances(model)
    log_ratio = np.log(realised / programmed)
    n = log_ratio.size
    # median 1: the mean log is 0 within 4 standard errors
    assert abs(log_ratio.mean()) < 4 * s / math.sqrt(n)
    # the sample variance within the 99.99% chi-square interval of s^2
    chi = (n - 1) * log_ratio.var(ddof=1) / s**2
    assert stats.chi2.ppf(5e-5, n - 1) < chi < stats.chi2.ppf(1 - 5e-5, n - 1)
    assert stats.normaltest(log_ratio).pvalue > 1e-4
    # each device keeps its factor: twice the programmed conductance, twice the realised one
    before = model.realised_parameters()[0].clone()
    model.W = 2 * model.W
    torch.testing.assert_close(model.realised_parameters()[0], 2 * before, rtol=1e-14, atol=0)


def test_the_spread_scales_the_range_and_levels_of_each_device():
    model = machine(conductance_range=(0.1, 1.0), conductance_levels=4, variability=0.3)
    factors = np.concatenate([f.numpy().ravel() for f in model.devices.factors()])
    realised, _ = conductances(model)
    nominal = realised / factors
    assert len(np.unique(np.round(nominal, 12))) <= 4
    assert nominal.min() >= 0.1 - 1e-12 and nominal.max() <= 1.0 + 1e-12


def test_write_noise_is_relative_to_each_programmed_change():
    s = 0.3
    settings = dict(n_visible=40, n_hidden=30, seed=2, lr=0.05, batch_size=16, train_algo="CD", min_W=-50, max_W=50)
    clean, noisy = machine(**settings), machine(write_noise=s, **settings)
    data = torch.randint(0, 2, (16, 40), generator=torch.Generator().manual_seed(4)).double()
    before = [p.clone() for p in clean.network.parameters()]
    clean.trainer.update(data)
    noisy.trainer.update(data)
    clean_step = torch.cat([(p - b).ravel() for p, b in zip(clean.network.parameters(), before)]).numpy()
    noisy_step = torch.cat([(p - b).ravel() for p, b in zip(noisy.network.parameters(), before)]).numpy()
    moved = clean_step != 0
    assert moved.sum() > 800
    np.testing.assert_array_equal(noisy_step[~moved], 0.0)
    relative = noisy_step[moved] / clean_step[moved] - 1.0
    n = relative.size
    assert abs(relative.mean()) < 4 * s / math.sqrt(n)
    chi = (n - 1) * relative.var(ddof=1) / s**2
    assert stats.chi2.ppf(5e-5, n - 1) < chi < stats.chi2.ppf(1 - 5e-5, n - 1)


def test_comparator_offsets_are_fixed_normal_and_enter_every_comparator_mode():
    s = 0.15
    model = machine(n_visible=300, n_hidden=200, comparator_offset=s)
    offsets = torch.cat([model.devices.comparator_offsets(False), model.devices.comparator_offsets(True)]).numpy()
    n = offsets.size
    chi = (n - 1) * offsets.var(ddof=1) / s**2
    assert stats.chi2.ppf(5e-5, n - 1) < chi < stats.chi2.ppf(1 - 5e-5, n - 1)
    assert abs(offsets.mean()) < 4 * s / math.sqrt(n)

    small = rkm.RKM("cmp", 5, 4, mytype=torch.float64, device="cpu", seed=1, comparator_offset=0.3, offset=0.5)
    clamped = clamped_states(small, "forward", n=6)
    net = netlist_of(small, clamped, "forward")
    volts = solve_netlist(net)
    V_os = small.devices.comparator_offsets(True).numpy()
    x = small.n_visible * (volts - V_os)
    small.model_beta = math.inf
    for _ in range(3):  # deterministic units fire when V > V_os, pass after pass
        _, h = small.v_to_h(clamped)
        np.testing.assert_array_equal(h.numpy(), (volts > V_os).astype(float))
    assert torch.equal(small.devices.comparator_offsets(True), torch.as_tensor(V_os))
    for sampling, probability in [("bernoulli", lambda z: 1 / (1 + np.exp(-z))),
                                  ("multi-threshold", stats.norm.cdf), ("single-threshold", stats.norm.cdf)]:
        small.sampling, small.model_beta = sampling, 0.7
        p, _ = small.v_to_h(clamped)
        np.testing.assert_allclose(p.numpy(), probability(0.7 * x), rtol=1e-10, atol=1e-12)
    # the offsets stay what they were through training
    small.max_epochs, small.batch_size = 5, 3
    small.train(clamped, save=False)
    np.testing.assert_array_equal(small.devices.comparator_offsets(True).numpy(), V_os)


def test_hopfield_comparators_take_the_offset_from_the_field():
    model = rkm.RBM("cmp", 5, 4, mytype=torch.float64, device="cpu", seed=1)
    v = clamped_states(model, "forward")
    field = model.delta_eh(v)
    model.comparator_offset = 0.4
    torch.testing.assert_close(model.delta_eh(v), field - model.devices.comparator_offsets(True))


# --------------------------------------------------------------------------- #
# Save points
# --------------------------------------------------------------------------- #
def test_the_realisation_is_the_same_after_save_and_load(tmp_path):
    model = all_on(machine(n_visible=16, n_hidden=10))
    model.max_epochs, model.batch_size = 30, 8
    model.train(BAS, model_state_path=str(tmp_path))
    found, loaded = rkm.load_model("dev", model_state_path=str(tmp_path))
    assert found and loaded.epoch == 30
    for name, value in ALL_ON.items():
        assert getattr(loaded, name) == value, name
    for got, want in zip(loaded.realised_parameters(), model.realised_parameters()):
        assert torch.equal(got, want)
    for side in (True, False):
        assert torch.equal(loaded.devices.comparator_offsets(side), model.devices.comparator_offsets(side))


def test_a_resumed_run_with_every_non_ideality_is_bit_identical(tmp_path):
    class Crash(Exception):
        pass

    def make():
        return rkm.RKM("ck", 16, 10, max_epochs=120, batch_size=8, lr=0.02, seed=7, device="cpu", train_algo="PCD",
                       **ALL_ON)

    full = make()
    full.train(BAS.float(), model_state_path=str(tmp_path / "full"))

    def stop(m):
        if m.epoch == 70:
            raise Crash

    with pytest.raises(Crash):
        make().train(BAS.float(), model_state_path=str(tmp_path / "part"), callback=stop)
    found, resumed = rkm.load_model("ck", model_state_path=str(tmp_path / "part"))
    assert found and 50 < resumed.epoch <= 70
    resumed.train(BAS.float(), model_state_path=str(tmp_path / "part"))
    assert resumed.epoch == full.epoch == 120
    for name in ("W", "v_bias", "h_bias", "energy", "power_f", "power_b", "persistent_chains"):
        assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    for got, want in zip(resumed.realised_parameters(), full.realised_parameters()):
        assert torch.equal(got, want)
    assert torch.equal(resumed.generator.get_state(), full.generator.get_state())


# --------------------------------------------------------------------------- #
# Settings
# --------------------------------------------------------------------------- #
def test_settings_are_checked_and_can_change_after_construction():
    with pytest.raises(rkm.ConfigError, match="needs conductance_range"):
        rkm.RKM("m", 4, 3, device="cpu", conductance_levels=8)
    with pytest.raises(rkm.ConfigError, match="0 < low < high"):
        rkm.RKM("m", 4, 3, device="cpu", conductance_range=(1.0, 0.5))
    with pytest.raises(rkm.ConfigError, match="> 0"):
        rkm.RKM("m", 4, 3, device="cpu", conductance_range=(0.0, 0.5))
    with pytest.raises(rkm.ConfigError, match="variability"):
        rkm.RKM("m", 4, 3, device="cpu", variability=-0.1)
    with pytest.raises(rkm.ConfigError, match="level_spacing"):
        rkm.RKM("m", 4, 3, device="cpu", level_spacing="cubic")
    with pytest.raises(rkm.ConfigError, match=">= 2"):
        rkm.RKM("m", 4, 3, device="cpu", conductance_range=(0.1, 1), conductance_levels=1)
    model = machine(n_visible=6, n_hidden=4)
    ideal = model.realised_parameters()[0].clone()
    model.conductance_range = [0.5, 1.0]
    assert model.conductance_range == (0.5, 1.0)
    ranged = model.realised_parameters()[0].clone()
    assert not torch.equal(ranged, ideal)
    model.conductance_levels = 2
    assert set(model.realised_parameters()[0].abs().unique().tolist()) <= {0.5, 1.0}
    with pytest.raises(rkm.ConfigError, match="needs conductance_range"):
        model.conductance_range = None
    model.conductance_levels = None
    assert torch.equal(model.realised_parameters()[0], ranged)
    model.variability = 0.1  # drawn now, from the model's generator
    assert model.devices.spread is not None and not torch.equal(model.realised_parameters()[0], ranged)


def test_to_moves_the_device_state():
    model = rkm.RKM("m", 6, 4, device="cpu", seed=0, **ALL_ON)
    before = [t.clone() for t in model.realised_parameters()]
    model.to(dtype=torch.float64)
    assert all(t.dtype == torch.float64 for t in model.devices.state_dict().values())
    for got, want in zip(model.realised_parameters(), before):
        torch.testing.assert_close(got, want.double(), rtol=1e-6, atol=1e-7)


def test_the_settings_are_config_keys_and_flags(tmp_path):
    config = rkm.app.config.resolve_config("bars", overrides={"model": {"conductance_range": "0.01,2", "conductance_levels":
                                                                 "8", "level_spacing": "log", "variability": 0.1}})
    assert config["model"]["conductance_range"] == (0.01, 2.0)
    rkm.app.config.write_config(config, tmp_path / "config.toml")
    assert "conductance_range = [0.01, 2.0]" in (tmp_path / "config.toml").read_text()
    assert rkm.app.config.resolve_config(config_file=tmp_path / "config.toml") == config
    model = rkm.app.run.build_model(config, rkm.app.run.load_data(config))
    assert model.conductance_levels == 8 and model.level_spacing == "log" and model.variability == 0.1
    with pytest.raises(rkm.ConfigError, match="needs conductance_range"):
        rkm.app.config.resolve_config(overrides={"model": {"conductance_levels": 8}})
    # low:high, for the command lines where commas separate values (rkm sweep --grid)
    colon = rkm.app.config.resolve_config(overrides={"model": {"conductance_range": "0.01:2"}})
    assert colon["model"]["conductance_range"] == (0.01, 2.0)
    with pytest.raises(rkm.ConfigError, match="written like 0.01,1"):
        rkm.app.config.resolve_config(overrides={"model": {"conductance_range": "0.01;2"}})


def test_the_cli_refuses_levels_without_a_range_before_making_a_run_folder(tmp_path, capsys):
    from rkm.app._cli import main

    run = tmp_path / "run"
    assert main(["train", "--preset", "bars", "--run-dir", str(run), "--conductance-levels", "8"]) == 2
    assert "rkm: error: --conductance-levels 8 needs --conductance-range" in capsys.readouterr().err
    assert not run.exists()


# --------------------------------------------------------------------------- #
# Learning with real devices
# --------------------------------------------------------------------------- #
def _bars_error(seed, levels):
    model = rkm.RKM("bas", 16, 32, k=3, lr=0.05, batch_size=16, train_algo="PCD", max_epochs=400, seed=seed,
                    device="cpu", mytype=torch.float64, conductance_range=(0.02, 2.0), conductance_levels=levels,
                    variability=0.1)
    start = monitored_error(model, BAS)
    model.train(BAS, save=False)
    return start, monitored_error(model, BAS)


def test_bars_and_stripes_learns_with_8_levels_and_10_percent_spread_and_worse_with_2_levels():
    eight = [_bars_error(seed, 8) for seed in range(3)]
    two = [_bars_error(seed, 2) for seed in range(3)]
    for start, end in eight:
        assert end < 0.4 * start
    assert min(end for _, end in two) > max(end for _, end in eight)
    assert np.mean([end for _, end in two]) > 2 * np.mean([end for _, end in eight])
