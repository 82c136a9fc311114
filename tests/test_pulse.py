"""Pulse programming (``optimizer='pulse'``, ``rkm.training.pulse``): one fixed step per device and update.

The signals are captured from the optimiser's own step during real training updates; the moves,
the levels and the pulse counts are then checked against them with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_checkpoint import Crash

import rkm
from rkm.app._cli import main
from rkm.app.metrics_log import read_metrics
from rkm.errors import ConfigError
from rkm.io.datasets import bars_and_stripes
from rkm.training import pulse

BAS = torch.tensor(bars_and_stripes(4)).double()
LEVELS = dict(conductance_range=(0.02, 1.5), conductance_levels=8)


def model(**settings):
    common = dict(k=2, lr=0.05, batch_size=8, train_algo="PCD", seed=4, mytype=torch.float64, device="cpu",
                  optimizer="pulse", g_v=0.7, g_h=0.4, min_W=-20, max_W=20)
    return rkm.RKM("p", 16, 10, **{**common, **settings})


def crash_at(update):
    def crash(m):
        if m.epoch == update:
            raise Crash

    return crash


def recorded_updates(m, updates, monkeypatch):
    """Train ``updates`` updates; for each, the parameters before and after and the signals the pulses followed."""
    seen = []
    original = pulse.Pulse.step

    def step(self, grad, params, lr, t, **settings):
        seen.append(([p.clone() for p in params], [d.clone() for d in grad.directions()], settings))
        original(self, grad, params, lr, t, **settings)

    monkeypatch.setattr(pulse.Pulse, "step", step)
    out = []
    for _ in range(updates):
        m.max_epochs = m.epoch + 1
        m.train(BAS, save=False)
        before, signals, _ = seen[-1]
        out.append((before, [p.clone() for p in (m.W, m.v_bias, m.h_bias)], signals, m.trainer.last_pulses))
    return out


@pytest.mark.parametrize("rule", ["algorithmic", "local"])
@pytest.mark.parametrize("dead_zone", [0.0, 0.05])
def test_every_device_moves_one_step_in_the_sign_of_its_signal_outside_the_dead_zone(rule, dead_zone, monkeypatch):
    m = model(pulse_step=0.03, pulse_dead_zone=dead_zone, learning_rule=rule)
    records = recorded_updates(m, 6, monkeypatch)
    for before, after, signals, pulses in records:
        fired = 0
        for old, new, d, g in zip(before, after, signals, (1.0, m.g_v, m.g_h)):
            move, d = (new - old).numpy(), d.numpy()
            outside = np.abs(d) > dead_zone
            np.testing.assert_allclose(move[outside], 0.03 * g * np.sign(d[outside]), rtol=0, atol=1e-12)
            assert not move[~outside].any()
            fired += int(outside.sum())
        assert pulses == fired
        assert 0 < fired < sum(d.numel() for d in signals)
    assert m.trainer.pulses == sum(r[3] for r in records) and m.trainer.pulsed_updates == 6


def test_a_relative_pulse_is_a_fraction_of_the_conductance_window(monkeypatch):
    m = model(pulse_step=0.05, pulse_step_unit="relative", conductance_range=(0.1, 2.1))
    before, after, signals, _ = recorded_updates(m, 1, monkeypatch)[0]
    move = (after[0] - before[0]).numpy()
    fired = np.abs(signals[0].numpy()) > 0
    np.testing.assert_allclose(np.abs(move[fired]), 0.05 * 2.0, rtol=0, atol=1e-12)
    message = "pulse_step_unit='relative' makes a pulse a fraction of the conductance window g_max - g_min, and there"
    with pytest.raises(ConfigError, match=message):
        model(pulse_step_unit="relative")
    m = model(pulse_step_unit="relative", conductance_range=(0.1, 2.1))
    m.conductance_range = None  # changed after construction: refused at the next step
    with pytest.raises(ConfigError, match=message):
        m.train(BAS, save=False)


def _ladder_position(p, g, levels, spacing):
    """Position of each parameter on the signed ladder -l_{L-1} .. -l_0, +l_0 .. +l_{L-1}: the level nearest to
    its clipped conductance, in conductance (linear) or in log conductance (log), as docs/nonideal.md says."""
    magnitude = np.clip(np.abs(p) / g, levels[0], levels[-1])
    if spacing == "log":
        index = np.abs(np.log(magnitude)[..., None] - np.log(levels)).argmin(-1)
    else:
        index = np.abs(magnitude[..., None] - levels).argmin(-1)
    L = len(levels)
    return np.where(np.signbit(p), L - 1 - index, L + index)


@pytest.mark.parametrize("spacing", ["linear", "log"])
def test_with_levels_a_pulse_is_one_level_and_every_device_stays_on_a_level(spacing, monkeypatch):
    m = model(level_spacing=spacing, pulse_dead_zone=0.02, variability=0.2, **LEVELS)
    levels = m.devices.levels().numpy()
    low, high = LEVELS["conductance_range"]
    expected = np.linspace(low, high, 8) if spacing == "linear" else np.geomspace(low, high, 8)
    np.testing.assert_allclose(levels, expected, rtol=1e-12)
    moved = 0
    for before, after, signals, _ in recorded_updates(m, 8, monkeypatch):
        for old, new, d, g in zip(before, after, signals, (1.0, m.g_v, m.g_h)):
            old, new, d = old.numpy(), new.numpy(), d.numpy()
            position = _ladder_position(old, g, levels, spacing)
            step = _ladder_position(new, g, levels, spacing) - position
            outside = np.abs(d) > 0.02
            at_end = np.where(d > 0, position == 2 * len(levels) - 1, position == 0)
            assert ((step == np.sign(d)) | (outside & at_end))[outside].all()
            assert (new[~outside] == old[~outside]).all()
            # a pulsed device sits exactly on a level (its nominal conductance; the spread multiplies it)
            np.testing.assert_allclose(np.abs(new[outside]) / g, levels[np.abs(np.abs(new[outside])[:, None] / g
                                                                                 - levels).argmin(-1)], rtol=1e-12)
            moved += int((step != 0).sum())
    assert moved > 0
    # every realised conductance is a level times the device's own spread factor
    factors = m.devices.factors()
    for realised, factor, g in zip(m.realised_parameters(), factors, (1.0, m.g_v, m.g_h)):
        nominal = (realised.abs() / g / factor).numpy()
        np.testing.assert_allclose(nominal, levels[np.abs(nominal[..., None] - levels).argmin(-1)], rtol=1e-9)


def test_a_pulse_down_from_the_lowest_level_switches_the_terminal():
    m = model(**LEVELS)
    m.W = torch.full((10, 16), 0.02, dtype=torch.float64)
    grad = rkm.training.optim.Gradient.given(-torch.ones(10, 16, dtype=torch.float64),
                                             torch.zeros(16, dtype=torch.float64), torch.zeros(10, dtype=torch.float64))
    m.trainer.apply(grad)
    assert torch.equal(m.W, torch.full((10, 16), -0.02, dtype=torch.float64))
    assert m.trainer.optimizer_state.pulses == 160


def test_write_noise_makes_a_pulse_vary_and_the_realised_conductance_stays_on_a_level(monkeypatch):
    m = model(write_noise=0.3, pulse_step=0.05)
    for before, after, signals, _ in recorded_updates(m, 3, monkeypatch):
        move, d = (after[0] - before[0]).numpy(), signals[0].numpy()
        fired = np.abs(d) > 0
        sizes = move[fired] * np.sign(d[fired]) / 0.05
        assert sizes.std() > 0.1 and abs(sizes.mean() - 1) < 0.1
        assert not move[~fired].any()
    m = model(write_noise=0.3, **LEVELS)
    recorded_updates(m, 3, monkeypatch)
    levels = m.devices.levels().numpy()
    W = m.realised_parameters()[0].abs().numpy()
    np.testing.assert_allclose(W, levels[np.abs(W[..., None] - levels).argmin(-1)], rtol=1e-12)


def test_resume_is_bit_identical(tmp_path):
    settings = dict(learning_rule="local", pulse_dead_zone=0.03, write_noise=0.1, comparator_levels=(0.05, 0.95),
                    comparator_level_spread=0.02, max_epochs=60, **LEVELS)
    full = model(**settings)
    full.train(BAS, model_state_path=str(tmp_path / "full"))
    broken = model(**settings)
    with pytest.raises(Crash):
        broken.train(BAS, model_state_path=str(tmp_path / "part"), callback=crash_at(37))
    found, resumed = rkm.load_model("p", model_state_path=str(tmp_path / "part"))
    assert found and 20 < resumed.epoch <= 37
    resumed.train(BAS, model_state_path=str(tmp_path / "part"))
    assert resumed.epoch == full.epoch == 60
    for name in ("W", "v_bias", "h_bias", "energy", "power_f", "power_b", "persistent_chains"):
        assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    assert torch.equal(resumed.generator.get_state(), full.generator.get_state())
    for name in ("pulses", "pulsed_updates", "circuit_time", "sequential_time", "settled", "decisions"):
        assert getattr(resumed.trainer, name) == getattr(full.trainer, name), name
    assert full.trainer.pulses > 0
    for name in ("energy_j", "circuit_time_s", "sequential_time_s", "pulses"):
        assert getattr(resumed.si(), name) == getattr(full.si(), name), name


def test_pulse_settings_are_config_keys_and_flags(tmp_path, capsys):
    run = tmp_path / "run"
    code = main(["train", "--dataset", "bars-and-stripes", "--n-hidden", "8", "--max-epochs", "30", "--batch-size",
                 "8", "--optimizer", "pulse", "--pulse-step", "0.02", "--pulse-dead-zone", "0.05", "--learning-rule",
                 "local", "--log-every", "10", "--run-dir", str(run), "--no-progress"])
    assert code == 0
    rows = read_metrics(run / "metrics.csv")
    assert [r["update"] for r in rows] == [10, 20, 30]
    assert all(r["pulses"] >= 0 for r in rows) and any(r["pulses"] > 0 for r in rows)
    assert all(r["circuit_time_s"] > 0 for r in rows)
    config = (run / "config.toml").read_text()
    assert 'optimizer = "pulse"' in config and "pulse_dead_zone = 0.05" in config
    for flags, says in ((["--pulse-dead-zone", "-1"], "--pulse-dead-zone must be >= 0"),
                        (["--pulse-step-unit", "relative"], "--pulse-step-unit relative makes a pulse a fraction")):
        assert main(["train", "--dataset", "bars-and-stripes", "--optimizer", "pulse", *flags,
                     "--run-dir", str(tmp_path / "bad"), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("rkm: error: ") and says in err[0]
        assert not (tmp_path / "bad").exists()


def test_analog_optimisers_send_no_counted_pulses():
    m = model(optimizer="SGD", max_epochs=5)
    m.train(BAS, save=False)
    assert m.trainer.last_pulses is None and m.trainer.pulses == 0 and m.si().pulses == 0
