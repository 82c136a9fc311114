"""The local learning rule (``rkm.training.local``) and the comparators' output levels.

Every edge's voltage drop and terminal voltages come from the explicit circuit
(``rkm.circuits.netlist.netlist_of``: which terminal each edge is switched to, the inverted copies
at ``c - x``, the supplies), with the layers held at their comparators' output voltages, never
from the formulas the trainer implements. The statistics they are compared with are the
algorithmic ones, ``h^T v / N`` and the unit means, computed here with NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_ngspice import random_machine

import rkm
from rkm.circuits.netlist import edge_power, netlist_of, solve_netlist
from rkm.errors import ConfigError
from rkm.training import local

OFFSETS = [0.0, 0.5, 1.0]
SIGNS = ["mixed", "positive", "negative"]


def machine(offset, signs="mixed", seed=3, **settings):
    """The 5x4 float64 machine of test_ngspice, every weight nonzero, with the weights' signs chosen."""
    model = random_machine(offset, seed=seed)
    g = torch.Generator().manual_seed(seed + 7)
    W = torch.randn(4, 5, generator=g, dtype=torch.float64)
    if signs != "mixed":
        W = W.abs() if signs == "positive" else -W.abs()
    model.W = W
    for name, value in settings.items():
        setattr(model, name, value)
    return model


def states(n, width, seed):
    return torch.randint(0, 2, (n, width), generator=torch.Generator().manual_seed(seed)).double()


def level_voltages(model, s, visible):
    """Node voltages of 0/1 states from the documented levels: ``V_low + s z0`` and ``V_high + s z1``."""
    low, high = model.comparator_levels
    n = s.shape[1]
    lows, highs = np.full(n, low), np.full(n, high)
    if model.comparator_level_spread > 0:
        z = model.devices.level_draws[0 if visible else 1].numpy()
        lows, highs = lows + model.comparator_level_spread * z[0], highs + model.comparator_level_spread * z[1]
    return lows + (highs - lows) * s.numpy()


def circuit_readings(model, v, h):
    """Per sample, every edge's drop and terminals, from the netlist of the realised circuit holding (v, h).

    Returns ``(Q, node_h, node_v)``: the edge rule of every weight edge as a (N, n_hidden, n_visible)
    array, and the node terminals of the hidden and the visible bias edges, (N, n_hidden) and
    (N, n_visible).
    """
    x, y = level_voltages(model, v, True), level_voltages(model, h, False)
    n_v, n_h, c = model.n_visible, model.n_hidden, model.offset
    Q = np.full((v.shape[0], n_h, n_v), np.nan)
    net = netlist_of(model, x, "forward")  # sources: x_k, c - x_k, +g_h, c - g_h; free: the hidden nodes
    V = np.concatenate([y, net.source_voltages], axis=1)  # the hidden nodes held at their comparators' outputs
    node_h = np.full(y.shape, np.nan)
    for a, b in zip(net.edges_a, net.edges_b):
        drop, node, source = V[:, a] - V[:, b], V[:, a], V[:, b]
        k = b - net.n_free
        if k < 2 * n_v:
            inverted = torch.tensor(k >= n_v)
            Q[:, a, k % n_v] = local.weight_statistic(torch.tensor(drop**2), torch.tensor(node), torch.tensor(source),
                                                      inverted, c).numpy()
        else:
            node_h[:, a] = local.bias_statistic(torch.tensor(node)).numpy()
    back = netlist_of(model, y, "backward")
    V = np.concatenate([x, back.source_voltages], axis=1)
    node_v = np.full(x.shape, np.nan)
    for a, b in zip(back.edges_a, back.edges_b):
        if b - back.n_free >= 2 * n_h:
            node_v[:, a] = local.bias_statistic(torch.tensor(V[:, a])).numpy()
    assert not np.isnan(Q).any() and not np.isnan(node_h).any() and not np.isnan(node_v).any()
    return Q, node_h, node_v


# --------------------------------------------------------------------------- #
# The edge rule on the explicit circuit, ideal binary nodes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("signs", SIGNS)
def test_the_edge_rule_on_the_circuit_equals_the_contrastive_statistics(offset, signs):
    model = machine(offset, signs)
    v_d, h_d, v_m, h_m = states(6, 5, 1), states(6, 4, 2), states(7, 5, 3), states(7, 4, 4)
    Q_d, h_dn, v_dn = circuit_readings(model, v_d, h_d)
    Q_m, h_mn, v_mn = circuit_readings(model, v_m, h_m)
    vd, hd, vm, hm = (t.numpy() for t in (v_d, h_d, v_m, h_m))
    # every edge's own statistic is v_i h_j in every sample
    np.testing.assert_allclose(Q_d, hd[:, :, None] * vd[:, None, :], rtol=0, atol=1e-12)
    dW = Q_d.mean(0) - Q_m.mean(0)
    np.testing.assert_allclose(dW, hd.T @ vd / 6 - hm.T @ vm / 7, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_dn.mean(0) - h_mn.mean(0), hd.mean(0) - hm.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(v_dn.mean(0) - v_mn.mean(0), vd.mean(0) - vm.mean(0), rtol=0, atol=1e-12)


def test_at_half_the_offset_an_inverted_edge_needs_only_its_drop():
    # c = 1/2: q = (dV^2 - 1/4) / 2 whatever the terminals (docs/learning-rule.md)
    drop = torch.tensor([0.0, 0.25, 0.5, 1.0, 2.25])
    for node, source in ((0.0, 0.5), (1.0, -0.5), (0.3, 0.9)):
        q = local.weight_statistic(drop, torch.full_like(drop, node), torch.full_like(drop, source),
                                   torch.ones_like(drop, dtype=torch.bool), 0.5)
        torch.testing.assert_close(q, (drop - 0.25) / 2, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- #
# Training with learning_rule='local'
# --------------------------------------------------------------------------- #
def _pair(offset, signs, centering, **settings):
    data = states(12, 5, 9)
    common = dict(lr=2.0, batch_size=6, train_algo="PCD", k=2, max_epochs=1, min_W=-50, max_W=50,
                  centering=centering, average_data=data.mean(0) if centering else None, **settings)
    models = []
    for rule in ("algorithmic", "local"):
        model = rkm.RKM("x", 5, 4, offset=offset, g_v=0.7, g_h=0.4, mytype=torch.float64, device="cpu", seed=3,
                        learning_rule=rule, **common)
        circuit = machine(offset, signs)
        model.W, model.v_bias, model.h_bias = circuit.W, circuit.v_bias, circuit.h_bias
        models.append(model)
    return models, data


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("signs", SIGNS)
@pytest.mark.parametrize("centering", [False, True])
def test_training_with_the_local_rule_equals_the_algorithmic_rule(offset, signs, centering):
    (algorithmic, local_), data = _pair(offset, signs, centering)
    before = algorithmic.W.clone()
    for model in (algorithmic, local_):
        model.max_epochs = 3
        model.train(data, save=False)
    for name in ("W", "v_bias", "h_bias"):
        torch.testing.assert_close(getattr(local_, name), getattr(algorithmic, name), rtol=0, atol=1e-12)
    assert torch.equal(local_.generator.get_state(), algorithmic.generator.get_state())
    if signs == "mixed":  # the large steps switched weights to the other terminal during the updates
        assert int((torch.sign(before) != torch.sign(algorithmic.W)).sum()) > 0


def test_the_local_step_equals_the_edge_rule_on_the_circuit_with_real_comparators(monkeypatch):
    """Output levels (0.1, 0.85) with spread 0.03: the trainer's step is the edge rule on the circuit's voltages."""
    model = machine(0.5, comparator_levels=(0.1, 0.85), comparator_level_spread=0.03)
    model.lr, model.batch_size, model.k, model.max_epochs, model.learning_rule = 0.3, 6, 2, 1, "local"
    model.train_algo, model.min_W, model.max_W = "PCD", -50.0, 50.0
    seen = []
    original = local.local_gradient

    def recording(network, v_d, h_d, v_m, h_m, offsets):
        seen.append((v_d.clone(), h_d.clone(), v_m.clone(), h_m.clone()))
        return original(network, v_d, h_d, v_m, h_m, offsets)

    monkeypatch.setattr(local, "local_gradient", recording)
    before = [t.clone() for t in (model.W, model.v_bias, model.h_bias)]
    snapshot = machine(0.5, comparator_levels=(0.1, 0.85), comparator_level_spread=0.03)
    snapshot.W = model.W.clone()
    snapshot.devices.level_draws = model.devices.level_draws
    model.train(states(12, 5, 9), save=False)
    (v_d, h_d, v_m, h_m), = seen
    Q_d, h_dn, v_dn = circuit_readings(snapshot, v_d, h_d)
    Q_m, h_mn, v_mn = circuit_readings(snapshot, v_m, h_m)
    np.testing.assert_allclose((model.W - before[0]).numpy(), 0.3 * (Q_d.mean(0) - Q_m.mean(0)), rtol=0, atol=1e-12)
    np.testing.assert_allclose((model.h_bias - before[2]).numpy(), 0.3 * (h_dn.mean(0) - h_mn.mean(0)), rtol=0,
                               atol=1e-12)
    np.testing.assert_allclose((model.v_bias - before[1]).numpy(), 0.3 * (v_dn.mean(0) - v_mn.mean(0)), rtol=0,
                               atol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 1.0])
def test_with_real_output_levels_the_local_rule_differs_as_derived(offset, monkeypatch):
    """dW_local = d_i d_j D<v h> + L0_i d_j D<h_j> + L0_j d_i D<v_i> + sign (k_j D<h_j> + k_i D<v_i>) / 2,
    with d = V_high - V_low and k = V_high (1 - V_high) - V_low (1 - V_low) per comparator."""
    model = machine(offset, comparator_levels=(0.1, 0.85), comparator_level_spread=0.03)
    model.lr, model.batch_size, model.k, model.max_epochs, model.learning_rule = 1.0, 6, 1, 1, "local"
    model.train_algo, model.min_W, model.max_W = "CD", -50.0, 50.0
    seen = []
    original = local.local_gradient
    monkeypatch.setattr(local, "local_gradient", lambda net, *s: seen.append(s[:4]) or original(net, *s))
    before = [t.clone() for t in (model.W, model.v_bias, model.h_bias)]
    sign = np.where(np.signbit(model.W.numpy()), -1.0, 1.0)
    model.train(states(12, 5, 9), save=False)
    v_d, h_d, v_m, h_m = (t.numpy() for t in seen[0])
    z_v, z_h = (t.numpy() for t in model.devices.level_draws)
    low_v, high_v = 0.1 + 0.03 * z_v[0], 0.85 + 0.03 * z_v[1]
    low_h, high_h = 0.1 + 0.03 * z_h[0], 0.85 + 0.03 * z_h[1]
    d_v, d_h = high_v - low_v, high_h - low_h
    k_v, k_h = high_v * (1 - high_v) - low_v * (1 - low_v), high_h * (1 - high_h) - low_h * (1 - low_h)
    D_vh = h_d.T @ v_d / len(v_d) - h_m.T @ v_m / len(v_m)
    D_v, D_h = v_d.mean(0) - v_m.mean(0), h_d.mean(0) - h_m.mean(0)
    expected = (np.outer(d_h, d_v) * D_vh + np.outer(d_h * D_h, low_v) + np.outer(low_h, d_v * D_v)
                + sign * (k_h[:, None] * D_h[:, None] + k_v[None, :] * D_v[None, :]) / 2)
    np.testing.assert_allclose((model.W - before[0]).numpy(), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose((model.v_bias - before[1]).numpy(), d_v * D_v, rtol=0, atol=1e-12)
    np.testing.assert_allclose((model.h_bias - before[2]).numpy(), d_h * D_h, rtol=0, atol=1e-12)
    # the difference from the algorithmic rule is not zero: the levels are not hidden
    assert np.abs(expected - D_vh).max() > 1e-3


def test_without_spread_the_difference_is_a_shrink_and_a_leak_of_opposite_sign_on_the_two_terminals():
    """Levels (0, 0.9): dW_local = 0.81 D<v h> + 0.045 sign (D<h_j> + D<v_i>); checked on a chosen pair of twins."""
    model = machine(0.5, comparator_levels=(0.0, 0.9))
    v_d, h_d = torch.ones(1, 5, dtype=torch.float64), torch.ones(1, 4, dtype=torch.float64)
    v_m, h_m = torch.zeros(1, 5, dtype=torch.float64), torch.zeros(1, 4, dtype=torch.float64)
    grad = local.local_gradient(model.network, v_d, h_d, v_m, h_m, None)
    sign = torch.where(torch.signbit(model.W), -1.0, 1.0).double()
    torch.testing.assert_close(grad.dW, 0.81 + 0.045 * 2 * sign, rtol=0, atol=1e-12)
    assert bool((grad.dW[sign > 0] > 0.81).all()) and bool((grad.dW[sign < 0] < 0.81).all())


# --------------------------------------------------------------------------- #
# The comparators' output levels in the passes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("offset", OFFSETS)
def test_output_levels_are_the_clamped_voltages_of_every_pass(direction, offset):
    model = machine(offset, comparator_levels=(-0.2, 1.3), comparator_level_spread=0.1)
    forward = direction == "forward"
    clamped = states(3, 5 if forward else 4, 5)
    volts = level_voltages(model, clamped, forward)
    net = netlist_of(model, volts, direction)
    expected = solve_netlist(net)
    scale = model.n_visible if forward else model.n_hidden
    x = (model.delta_eh(clamped) if forward else model.delta_ev(clamped)) / scale
    np.testing.assert_allclose(x.numpy(), expected, rtol=0, atol=1e-12)
    power = model.power_forward(clamped) if forward else model.power_backward(clamped)
    np.testing.assert_allclose(power.numpy(), edge_power(net, expected), rtol=1e-10, atol=1e-12)


def test_output_levels_off_by_default_and_saved(tmp_path):
    plain = rkm.RKM("a", 16, 10, seed=2, device="cpu")
    assert plain.comparator_levels == (0.0, 1.0) and plain.comparator_level_spread == 0.0
    assert plain.devices.output_levels(True) is None and plain.devices.level_draws is None
    v = states(4, 16, 1)
    assert plain.network.voltages(v, True) is v
    model = rkm.RKM("lv", 16, 10, seed=2, device="cpu", comparator_levels=(0.05, 0.9), comparator_level_spread=0.02,
                    max_epochs=3, batch_size=4)
    model.train(v, model_state_path=str(tmp_path))
    found, loaded = rkm.load_model("lv", model_state_path=str(tmp_path))
    assert found and loaded.comparator_levels == (0.05, 0.9) and loaded.comparator_level_spread == 0.02
    for a, b in zip(loaded.devices.level_draws, model.devices.level_draws):
        assert torch.equal(a, b)


def test_bad_output_levels_and_rules_are_config_errors():
    with pytest.raises(ConfigError, match="comparator_levels must be a pair"):
        rkm.RKM("a", 4, 3, comparator_levels=(1.0, 0.0))
    with pytest.raises(ConfigError, match="comparator_level_spread must be >= 0"):
        rkm.RKM("a", 4, 3, comparator_level_spread=-0.1)
    with pytest.raises(ConfigError, match="learning_rule='hebbian' is not supported; use one of 'algorithmic', 'local'"):
        rkm.RKM("a", 4, 3, learning_rule="hebbian")
