"""Tests of the explicit resistor-network solver (rkm.circuits.netlist)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from rkm.circuits.netlist import (
    CircuitPass,
    Netlist,
    build_netlist,
    edge_power,
    node_conductance,
    power_gradient,
    solve_netlist,
    solve_pass,
)
from rkm.circuits.spice import to_spice
from rkm.errors import ConfigError, DataError


def _random_machine(rng, n_hidden=5, n_visible=7, n=4):
    W = rng.normal(size=(n_hidden, n_visible))
    a = rng.normal(size=n_visible)
    b = rng.normal(size=n_hidden)
    v = (rng.random((n, n_visible)) < 0.5).astype(float)
    h = (rng.random((n, n_hidden)) < 0.5).astype(float)
    return W, a, b, v, h


# --------------------------------------------------------------------------- #
# Hand-solved networks
# --------------------------------------------------------------------------- #
def test_forward_hand_solved():
    # 1 hidden, 2 visible, W = [[2, -1]], b = [0.5], g_h = 0.5, c = 0.3, v = [1, 0].
    # h0 connects to: v0 = 1.0 (G = 2), not v1 = c - 0 = 0.3 (G = 1),
    # +g_h = 0.5 (G = 0.5 / 0.5 = 1).  h0 = (2*1.0 + 1*0.3 + 1*0.5) / 4 = 0.7.
    res = solve_pass(
        [[2.0, -1.0]], [0.0, 0.0], [0.5], [1.0, 0.0], g_h=0.5, offset=0.3
    )
    assert isinstance(res, CircuitPass)
    np.testing.assert_allclose(res.voltages, [[0.7]], atol=1e-14)
    # P = 1/2 (2 * 0.3^2 + 1 * 0.4^2 + 1 * 0.2^2) = 1/2 (0.18 + 0.16 + 0.04) = 0.19
    np.testing.assert_allclose(res.power, [0.19], atol=1e-14)
    np.testing.assert_allclose(res.node_conductance, [4.0])
    np.testing.assert_allclose(res.relaxation_times, [0.5])


def test_backward_hand_solved_batch():
    # W (2 hidden, 2 visible) = [[2, -1], [0, 3]], a = [-1, 0.5], g_v = 0.25, c = 1.
    W = [[2.0, -1.0], [0.0, 3.0]]
    a = [-1.0, 0.5]
    h = [[1.0, 0.0], [0.0, 1.0]]
    res = solve_pass(W, a, [9.0, 9.0], h, direction="backward", g_v=0.25, offset=1.0)
    # Sample 0, h = [1, 0]:
    #  v0: h0 = 1 (G=2), c - g_v = 0.75 (G = 1/0.25 = 4)       -> (2 + 3)/6 = 5/6
    #  v1: not h0 = 0 (G=1), h1 = 0 (G=3), +g_v = 0.25 (G=2)   -> 0.5/6 = 1/12
    # Sample 1, h = [0, 1]:
    #  v0: h0 = 0 (G=2), 0.75 (G=4)                            -> 3/6 = 0.5
    #  v1: not h0 = 1 (G=1), h1 = 1 (G=3), 0.25 (G=2)          -> 4.5/6 = 0.75
    np.testing.assert_allclose(res.voltages, [[5 / 6, 1 / 12], [0.5, 0.75]], atol=1e-14)
    # Power, sample 0: v0: 1/2 (2 (1/6)^2 + 4 (1/12)^2) = 1/24
    #                  v1: 1/2 (1 (1/12)^2 + 3 (1/12)^2 + 2 (1/6)^2) = 1/24
    # Power, sample 1: v0: 1/2 (2 * 0.25 + 4 * 0.0625) = 0.375
    #                  v1: 1/2 (1 * 0.0625 + 3 * 0.0625 + 2 * 0.25) = 0.375
    np.testing.assert_allclose(res.power, [1 / 12, 0.75], atol=1e-14)
    np.testing.assert_allclose(res.node_conductance, [6.0, 6.0])
    np.testing.assert_allclose(res.relaxation_times, [1 / 3, 1 / 3])


def test_netlist_structure_literal():
    net = build_netlist(
        [[2.0, -1.0]], [0.0, 0.0], [0.5], [1.0, 0.0], g_h=0.5, offset=0.3
    )
    assert net.n_free == 1
    assert net.free_names == ["h0"]
    assert net.source_names == ["v0", "v1", "not v0", "not v1", "+g_h", "c-g_h"]
    np.testing.assert_allclose(net.source_voltages, [[1.0, 0.0, -0.7, 0.3, 0.5, -0.2]])
    edges = sorted(
        (int(x), int(y), float(g))
        for x, y, g in zip(net.edges_a, net.edges_b, net.conductance)
    )
    # node numbering: h0 = 0, v0 = 1, v1 = 2, not v0 = 3, not v1 = 4, +g_h = 5
    assert edges == [(0, 1, 2.0), (0, 4, 1.0), (0, 5, 1.0)]


def test_node_conductance_is_sum_of_attached_edges():
    # W = [[2, -1, 0], [0, 0.5, -4]], b = [-0.3, 0], g_h = 0.6
    # h0: |2| + |-1| + |-0.3|/0.6 = 3.5 ; h1: 0.5 + 4 = 4.5
    net = build_netlist(
        [[2.0, -1.0, 0.0], [0.0, 0.5, -4.0]], np.zeros(3), [-0.3, 0.0],
        [0.0, 1.0, 1.0], g_h=0.6,
    )
    np.testing.assert_allclose(node_conductance(net), [3.5, 4.5], atol=1e-14)
    # backward: visible nodes: v0: 2 + |a0|/g_v, v1: 1 + 0.5, v2: 4 (a = [1, 0, 0])
    net_b = build_netlist(
        [[2.0, -1.0, 0.0], [0.0, 0.5, -4.0]], [1.0, 0.0, 0.0], [-0.3, 0.0],
        [1.0, 0.0], direction="backward", g_v=0.25,
    )
    np.testing.assert_allclose(node_conductance(net_b), [6.0, 1.5, 4.0], atol=1e-14)
    assert net_b.free_names == ["v0", "v1", "v2"]
    assert net_b.source_names[-2:] == ["+g_v", "c-g_v"]


# --------------------------------------------------------------------------- #
# Physics properties
# --------------------------------------------------------------------------- #
def test_hidden_nodes_are_independent():
    rng = np.random.default_rng(0)
    W, a, b, v, _ = _random_machine(rng)
    base = solve_pass(W, a, b, v, offset=0.5).voltages
    W2 = W.copy()
    W2[0, :] = rng.normal(size=W.shape[1]) * 3
    changed = solve_pass(W2, a, b, v, offset=0.5).voltages
    np.testing.assert_array_equal(changed[:, 1:], base[:, 1:])
    assert np.all(np.abs(changed[:, 0] - base[:, 0]) > 1e-6)


@pytest.mark.parametrize("direction", ["forward", "backward"])
@pytest.mark.parametrize("offset", [0.0, 0.5, 1.0])
def test_solution_minimises_power(direction, offset):
    rng = np.random.default_rng(1)
    W, a, b, v, h = _random_machine(rng)
    clamped = v if direction == "forward" else h
    net = build_netlist(W, a, b, clamped, direction=direction, offset=offset)
    x = solve_netlist(net)
    np.testing.assert_allclose(power_gradient(net, x), 0.0, atol=1e-10)
    p0 = edge_power(net, x)
    for _ in range(5):
        d = rng.normal(size=x.shape) * 10.0 ** rng.uniform(-4, 0)
        assert np.all(edge_power(net, x + d) > p0)
    # the gradient is not trivially zero away from the solution
    assert np.abs(power_gradient(net, x + 0.1)).max() > 1e-3


def test_power_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    W, a, b, v, _ = _random_machine(rng, n=2)
    net = build_netlist(W, a, b, v, offset=0.5)
    x = rng.normal(size=(2, net.n_free))
    g = power_gradient(net, x)
    eps = 1e-6
    for k in range(net.n_free):
        e = np.zeros_like(x)
        e[:, k] = eps
        fd = (edge_power(net, x + e) - edge_power(net, x - e)) / (2 * eps)
        np.testing.assert_allclose(g[:, k], fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.0])
def test_power_never_negative(offset):
    rng = np.random.default_rng(3)
    for _ in range(10):
        W, a, b, v, h = _random_machine(rng)
        for direction, clamped in (("forward", v), ("backward", h)):
            res = solve_pass(W, a, b, clamped, direction=direction, offset=offset)
            assert np.all(res.power >= 0)
            assert np.all(np.isfinite(res.voltages))


@pytest.mark.parametrize("offset", [0.0, 0.5, 1.0])
def test_agrees_with_closed_form_of_design_notes(offset):
    # DESIGN.md section 1; checked here so that a mistake on either side shows.
    rng = np.random.default_rng(4)
    W, a, b, v, _ = _random_machine(rng)
    g_h = 0.7
    G = np.abs(W).sum(1) + np.abs(b) / g_h
    b_eff = b + offset / 2 * ((np.abs(b) - b) / g_h + (np.abs(W) - W).sum(1))
    h_analog = (v @ W.T + b_eff) / G
    res = solve_pass(W, a, b, v, g_h=g_h, offset=offset)
    np.testing.assert_allclose(res.voltages, h_analog, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.node_conductance, G, rtol=1e-12)


def test_duck_typed_tensor_input():
    class FakeTensor:  # stands in for torch.Tensor (detach().cpu().numpy())
        def __init__(self, x):
            self.x = np.asarray(x, dtype=np.float32)

        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return self.x

    res = solve_pass(FakeTensor([[2.0, -1.0]]), FakeTensor([0.0, 0.0]),
                     FakeTensor([0.5]), FakeTensor([1.0, 0.0]), offset=0.3)
    assert res.voltages.dtype == np.float64
    np.testing.assert_allclose(res.voltages, [[0.7]], atol=1e-6)


# --------------------------------------------------------------------------- #
# Isolated nodes
# --------------------------------------------------------------------------- #
def test_zero_conductance_node_raises_by_default():
    W = [[1.0, 0.0], [0.0, 0.0], [0.0, -2.0]]
    with pytest.raises(DataError, match=r"h1.*nonzero conductance"):
        solve_pass(W, [0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0])
    # a node with only a bias is fine
    res = solve_pass(W, [0.0, 0.0], [0.0, 0.5, 0.0], [1.0, 0.0])
    np.testing.assert_allclose(res.voltages, [[1.0, 0.5, 0.0]])


def test_zero_conductance_node_nan_mode():
    W = [[1.0, 0.0], [0.0, 0.0], [0.0, -2.0]]
    res = solve_pass(
        W, [0.0, 0.0], [0.0, 0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]],
        offset=0.5, isolated="nan",
    )
    # h0 follows v0; h2 follows not v1 = 0.5 - v1; h1 is undefined
    assert np.all(np.isnan(res.voltages[:, 1]))
    np.testing.assert_allclose(res.voltages[:, [0, 2]], [[1.0, 0.5], [0.0, -0.5]])
    np.testing.assert_allclose(res.power, [0.0, 0.0])
    assert res.relaxation_times[1] == np.inf
    np.testing.assert_allclose(res.relaxation_times[[0, 2]], [2.0, 1.0])


def test_floating_component_detected_in_general_netlist():
    # two free nodes joined to each other only: no path to a source
    net = Netlist(
        n_free=3,
        source_voltages=np.array([[1.0]]),
        edges_a=np.array([0, 1]),
        edges_b=np.array([3, 2]),
        conductance=np.array([1.0, 1.0]),
        source_names=["s"],
        free_names=["x", "y", "z"],
    )
    with pytest.raises(DataError, match=r"y, z"):
        solve_netlist(net)
    x = solve_netlist(net, isolated="nan")
    assert x[0, 0] == 1.0 and np.isnan(x[0, 1:]).all()


def test_general_netlist_with_free_free_edges():
    # chain: s1 = 1.0 --(G=1)-- x --(G=2)-- y --(G=1)-- s0 = 0.0
    # KCL: 1 (1 - x) = 2 (x - y), 2 (x - y) = 1 (y - 0)  ->  y = 2x/3, x = 0.6, y = 0.4
    net = Netlist(
        n_free=2,
        source_voltages=np.array([[0.0, 1.0]]),
        edges_a=np.array([3, 0, 1]),
        edges_b=np.array([0, 1, 2]),
        conductance=np.array([1.0, 2.0, 1.0]),
        source_names=["s0", "s1"],
        free_names=["x", "y"],
    )
    x = solve_netlist(net)
    np.testing.assert_allclose(x, [[0.6, 0.4]], atol=1e-14)
    np.testing.assert_allclose(node_conductance(net), [3.0, 3.0])
    # P = 1/2 (0.4^2 + 2 * 0.2^2 + 0.4^2) = 0.2
    np.testing.assert_allclose(edge_power(net, x), [0.2], atol=1e-14)
    np.testing.assert_allclose(power_gradient(net, x), 0.0, atol=1e-14)


# --------------------------------------------------------------------------- #
# SPICE export
# --------------------------------------------------------------------------- #
def _solve_spice_text(text):
    """Tiny independent reader: nodal analysis of R and V(to ground) elements."""
    lines = text.strip().splitlines()[1:]  # first line is the title
    volts, res = {}, []
    for line in lines:
        tok = line.split()
        if not tok or tok[0].startswith("*") or tok[0].startswith("."):
            continue
        if tok[0][0].upper() == "V":
            assert tok[2] == "0" and tok[3].upper() == "DC"
            volts[tok[1]] = float(tok[4])
        elif tok[0][0].upper() == "R":
            res.append((tok[1], tok[2], float(tok[3])))
    nodes = sorted({n for r in res for n in r[:2]} - set(volts))
    idx = {n: k for k, n in enumerate(nodes)}
    A = np.zeros((len(nodes), len(nodes)))
    rhs = np.zeros(len(nodes))
    for p, q, r in res:
        g = 1.0 / r
        for x, y in ((p, q), (q, p)):
            if x in idx:
                A[idx[x], idx[x]] += g
                if y in idx:
                    A[idx[x], idx[y]] -= g
                else:
                    rhs[idx[x]] += g * volts[y]
    return dict(zip(nodes, np.linalg.solve(A, rhs)))


def test_to_spice_literal_case():
    net = build_netlist(
        [[2.0, -1.0]], [0.0, 0.0], [0.5], [[1.0, 0.0], [0.0, 1.0]], g_h=0.5, offset=0.3
    )
    text = to_spice(net, sample=0, title="hand case")
    lines = text.strip().splitlines()
    assert lines[0] == "hand case"
    assert lines[-2:] == [".op", ".end"]
    r_lines = [ln for ln in lines if ln.startswith("R")]
    v_lines = [ln for ln in lines if ln.startswith("V")]
    assert len(r_lines) == 3
    assert len(v_lines) == 6
    resistances = sorted(float(ln.split()[3]) for ln in r_lines)
    np.testing.assert_allclose(resistances, [0.5, 1.0, 1.0])
    assert "not_v1" in text and "plus_g_h" in text and "c_minus_g_h" in text
    assert re.search(r"^R\d+ h0 v0 0\.5$", text, re.M)
    np.testing.assert_allclose(_solve_spice_text(text)["h0"], 0.7, atol=1e-14)
    # the second sample: h0 = (2*0 + 1*(0.3 - 1) + 1*0.5) / 4 = -0.05
    np.testing.assert_allclose(_solve_spice_text(to_spice(net, 1))["h0"], -0.05)
    with pytest.raises(DataError):
        to_spice(net, sample=2)


def test_to_spice_matches_sparse_solve_random():
    rng = np.random.default_rng(5)
    W, a, b, v, h = _random_machine(rng)
    W[W < -1] = 0.0  # some missing edges
    net = build_netlist(W, a, b, h, direction="backward", offset=0.5)
    x = solve_netlist(net)
    text = to_spice(net, sample=3)
    assert sum(ln.startswith("R") for ln in text.splitlines()) == net.n_edges
    sol = _solve_spice_text(text)
    np.testing.assert_allclose([sol[f"v{i}"] for i in range(net.n_free)], x[3],
                               rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
def test_validation_errors():
    W = np.ones((2, 3))
    a, b, v = np.zeros(3), np.zeros(2), np.zeros((4, 3))
    with pytest.raises(ConfigError, match="direction"):
        build_netlist(W, a, b, v, direction="sideways")
    for bad in (0.0, -1.0, np.nan, np.inf, "x"):
        with pytest.raises(ConfigError, match="g_h"):
            build_netlist(W, a, b, v, g_h=bad)
        with pytest.raises(ConfigError, match="g_v"):
            build_netlist(W, a, b, v, g_v=bad)
    with pytest.raises(ConfigError, match="offset"):
        build_netlist(W, a, b, v, offset=np.nan)
    with pytest.raises(DataError, match="W must be 2-D"):
        build_netlist(np.ones(3), a, b, v)
    with pytest.raises(DataError, match=r"v_bias: expected shape \(3,\)"):
        build_netlist(W, np.zeros(2), b, v)
    with pytest.raises(DataError, match=r"h_bias: expected shape \(2,\)"):
        build_netlist(W, a, np.zeros(3), v)
    with pytest.raises(DataError, match=r"expected shape \(N, 3\).*got \(4, 2\)"):
        build_netlist(W, a, b, np.zeros((4, 2)))
    with pytest.raises(DataError, match=r"expected shape \(N, 2\)"):
        build_netlist(W, a, b, v, direction="backward")
    bad_W = W.copy()
    bad_W[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        build_netlist(bad_W, a, b, v)
    with pytest.raises(DataError, match="NaN"):
        build_netlist(W, a, b, np.full((4, 3), np.inf))
    net = build_netlist(W, a, b, v)
    with pytest.raises(ConfigError, match="isolated"):
        solve_netlist(net, isolated="zero")
    with pytest.raises(DataError, match=r"expected shape \(4, 2\)"):
        edge_power(net, np.zeros((3, 2)))
    with pytest.raises(DataError, match=r"expected shape \(4, 2\)"):
        power_gradient(net, np.zeros((4, 3)))
    with pytest.raises(DataError, match="conductance"):
        Netlist(1, np.zeros((1, 1)), [0], [1], [-1.0], ["s"], ["x"])
