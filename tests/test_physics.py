"""The model's node voltages, power and relaxation times against the explicit circuit.

``rkm.circuits.netlist`` builds the resistor network edge by edge and solves Kirchhoff's law as a
sparse linear system; nothing here compares the closed forms with themselves.
"""

import numpy as np
import pytest
import torch

import rkm
from rkm.circuits.netlist import build_netlist, edge_power, node_conductance, power_gradient, solve_pass
from rkm.core import physics

OFFSETS = [0.0, 0.5, 1.0]


def random_machine(offset, *, layer_scaled=True, energy_type="RKM", seed=0, n_visible=13, n_hidden=7):
    g = torch.Generator().manual_seed(seed)
    model = rkm.RKM(
        "phys", n_visible, n_hidden, offset=offset, g_v=0.7, g_h=0.4, mytype=torch.float64,
        layer_scaled=layer_scaled, energy_type=energy_type, seed=seed, device="cpu",
    )
    model.W = torch.randn(n_hidden, n_visible, generator=g, dtype=torch.float64)
    model.v_bias = torch.randn(n_visible, generator=g, dtype=torch.float64)
    model.h_bias = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    return model


def binary(n, m, seed=1):
    return torch.randint(0, 2, (n, m), generator=torch.Generator().manual_seed(seed)).double()


def circuit(model, clamped, direction):
    return solve_pass(
        model.W, model.v_bias, model.h_bias, clamped, direction=direction,
        g_v=model.g_v, g_h=model.g_h, offset=model.offset,
    )


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("layer_scaled", [True, False])
def test_node_voltages_equal_the_kirchhoff_solution(offset, layer_scaled):
    model = random_machine(offset, layer_scaled=layer_scaled)
    v, h = binary(6, model.n_visible), binary(6, model.n_hidden, seed=2)
    fwd, bwd = circuit(model, v, "forward"), circuit(model, h, "backward")
    scale_h = model.n_visible if layer_scaled else 1
    scale_v = model.n_hidden if layer_scaled else 1
    np.testing.assert_allclose(model.delta_eh(v).numpy() / scale_h, fwd.voltages, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.delta_ev(h).numpy() / scale_v, bwd.voltages, rtol=0, atol=1e-10)


@pytest.mark.parametrize("offset", OFFSETS)
def test_analog_inputs_also_match(offset):
    model = random_machine(offset, layer_scaled=False)
    v = torch.rand(4, model.n_visible, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    np.testing.assert_allclose(model.delta_eh(v).numpy(), circuit(model, v, "forward").voltages, atol=1e-10)


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("energy_type", ["RKM", "hopfield"])
def test_power_equals_the_sum_over_the_networks_edges(offset, energy_type):
    model = random_machine(offset, energy_type=energy_type)
    v, h = binary(8, model.n_visible), binary(8, model.n_hidden, seed=2)
    fwd, bwd = circuit(model, v, "forward"), circuit(model, h, "backward")
    np.testing.assert_allclose(model.power_forward(v).numpy(), fwd.power, rtol=0, atol=1e-10)
    np.testing.assert_allclose(model.power_backward(h).numpy(), bwd.power, rtol=0, atol=1e-10)
    assert float(model.av_power_forward(v)) == pytest.approx(fwd.power.mean(), abs=1e-10)
    assert float(model.av_power_backward(h)) == pytest.approx(bwd.power.mean(), abs=1e-10)


@pytest.mark.parametrize("offset", OFFSETS)
def test_power_of_a_binary_clamped_layer_matches_the_circuit(offset):
    """Training passes tell pass_power their sources are 0/1 (x^2 = x); that shortcut is checked here."""
    model = random_machine(offset)
    v, h = binary(8, model.n_visible), binary(8, model.n_hidden, seed=2)
    for clamped, forward, direction in ((v, True, "forward"), (h, False, "backward")):
        numerator, phys = model.network.numerator(clamped, forward)
        got = physics.pass_power(clamped, numerator, phys, binary=True)
        np.testing.assert_allclose(got.numpy(), circuit(model, clamped, direction).power, rtol=0, atol=1e-10)


@pytest.mark.parametrize("offset", OFFSETS)
def test_power_is_never_negative_and_the_node_voltages_minimise_it(offset):
    for seed in range(5):
        model = random_machine(offset, layer_scaled=False, seed=seed)
        v = binary(16, model.n_visible, seed=seed + 10)
        assert (model.power_forward(v) >= 0).all()
        h = binary(16, model.n_hidden, seed=seed + 20)
        assert (model.power_backward(h) >= 0).all()
        net = build_netlist(model.W, model.v_bias, model.h_bias, v, g_v=model.g_v, g_h=model.g_h, offset=offset)
        voltages = model.delta_eh(v).numpy()
        assert np.abs(power_gradient(net, voltages)).max() < 1e-10
        rng = np.random.default_rng(seed)
        at_model = edge_power(net, voltages)
        for _ in range(5):
            moved = voltages + 1e-3 * rng.standard_normal(voltages.shape)
            assert (edge_power(net, moved) > at_model).all()


def test_the_reference_offset_error_is_not_reproduced():
    """pyrkm 0.1.0 returns negative power at c = 1; the circuit never does."""
    model = random_machine(1.0)
    model.W = -model.W.abs()
    v = torch.ones(3, model.n_visible, dtype=torch.float64)
    fwd = circuit(model, v, "forward")
    assert (fwd.power >= 0).all()
    np.testing.assert_allclose(model.power_forward(v).numpy(), fwd.power, atol=1e-10)


@pytest.mark.parametrize("offset", OFFSETS)
def test_relaxation_times_are_two_over_the_node_conductance(offset):
    model = random_machine(offset)
    t_forward, t_backward = model.relaxation_times()
    assert t_forward.shape == (model.n_hidden,)
    assert t_backward.shape == (model.n_visible,)
    v, h = binary(1, model.n_visible), binary(1, model.n_hidden)
    fwd_net = build_netlist(model.W, model.v_bias, model.h_bias, v, g_v=model.g_v, g_h=model.g_h, offset=offset)
    bwd_net = build_netlist(
        model.W, model.v_bias, model.h_bias, h, direction="backward", g_v=model.g_v, g_h=model.g_h, offset=offset
    )
    np.testing.assert_allclose(t_forward.numpy(), 2 / node_conductance(fwd_net), atol=1e-12)
    np.testing.assert_allclose(t_backward.numpy(), 2 / node_conductance(bwd_net), atol=1e-12)


def test_an_isolated_node_produces_no_nan():
    model = random_machine(0.5)
    W = model.W.clone()
    W[2] = 0.0
    b = model.h_bias.clone()
    b[2] = 0.0
    model.W, model.h_bias = W, b
    v = binary(5, model.n_visible)
    p, h = model.v_to_h(v)
    assert torch.isfinite(p).all() and torch.isfinite(h).all()
    assert torch.isfinite(model.power_forward(v)).all()
    assert torch.isfinite(model.delta_eh(v)).all()
    t_forward, _ = model.relaxation_times()
    assert torch.isinf(t_forward[2]) and not torch.isnan(t_forward).any()
    others = [j for j in range(model.n_hidden) if j != 2]
    solved = solve_pass(
        W, model.v_bias, b, v, g_v=model.g_v, g_h=model.g_h, offset=0.5, isolated="nan"
    )
    np.testing.assert_allclose(model.delta_eh(v).numpy()[:, others] / model.n_visible, solved.voltages[:, others], atol=1e-10)
    np.testing.assert_allclose(model.power_forward(v).numpy(), solved.power, atol=1e-10)
    generated = model.generate(4, 3)
    assert np.isfinite(generated).all()


def test_assigning_parameters_is_reflected_everywhere():
    model = random_machine(0.5)
    v = binary(3, model.n_visible)
    before = model.power_forward(v).clone()
    model.W = model.W * 2.0
    fwd = circuit(model, v, "forward")
    np.testing.assert_allclose(model.power_forward(v).numpy(), fwd.power, atol=1e-10)
    assert not torch.allclose(before, model.power_forward(v))
    model.W[0, :] = 3.0  # in-place edit of the live tensor
    model.h_bias += 1.0
    np.testing.assert_allclose(model.delta_eh(v).numpy() / model.n_visible, circuit(model, v, "forward").voltages, atol=1e-10)
    np.testing.assert_allclose(model.W_t.numpy(), model.W.numpy().T)
    t_forward, _ = model.relaxation_times()
    np.testing.assert_allclose(t_forward.numpy(), circuit(model, v, "forward").relaxation_times, atol=1e-12)


def test_float32_model_agrees_with_the_circuit_to_float32_precision():
    model = rkm.RKM("f32", 784, 50, offset=0.5, seed=3, device="cpu")
    v = binary(4, 784).float()
    fwd = circuit(model, v, "forward")
    np.testing.assert_allclose(model.delta_eh(v).numpy() / 784, fwd.voltages, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.power_forward(v).numpy(), fwd.power, rtol=1e-4)
