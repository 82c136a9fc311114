"""Every pass of a model against the explicit circuit of ``netlist_of`` and against ngspice.

``rkm.circuits.netlist.netlist_of`` turns a model's parameters, supplies and offset into resistors
and sources; ``solve_netlist``/``edge_power`` solve that network with rkm's sparse solver,
and ``simulate_ngspice``/``ngspice_relaxation_time`` hand it to the ngspice circuit
simulator, which knows nothing of rkm. The ngspice tests are skipped when ngspice is not
installed (``apt-get install ngspice``; ``.ci/run`` installs it).
"""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

import rkm
from rkm.circuits.netlist import (
    NODE_CAPACITANCE,
    Netlist,
    edge_power,
    netlist_of,
    node_conductance,
    solve_netlist,
)
from rkm.circuits.spice import SpiceOperatingPoint, ngspice_relaxation_time, simulate_ngspice
from rkm.errors import DataError, NgspiceNotFoundError, SimulationError

needs_ngspice = pytest.mark.skipif(
    shutil.which("ngspice") is None,
    reason="ngspice is not installed: `apt-get install ngspice` runs these circuit-simulator checks",
)

OFFSETS = [0.0, 0.5, 1.0]
DIRECTIONS = ["forward", "backward"]


def random_machine(offset, layer_scaled=True, seed=0, cls=rkm.RKM):
    """A 5-visible, 4-hidden float64 machine with random signed parameters and a few missing edges."""
    g = torch.Generator().manual_seed(seed)
    model = cls("spice", 5, 4, offset=offset, g_v=0.7, g_h=0.4, layer_scaled=layer_scaled,
                mytype=torch.float64, seed=seed, device="cpu")
    W = torch.randn(4, 5, generator=g, dtype=torch.float64)
    W[torch.rand(4, 5, generator=g) < 0.2] = 0.0
    model.W = W
    model.v_bias = torch.randn(5, generator=g, dtype=torch.float64)
    model.h_bias = torch.randn(4, generator=g, dtype=torch.float64)
    return model


def clamped_states(model, direction, n=3, seed=1):
    width = model.n_visible if direction == "forward" else model.n_hidden
    return torch.randint(0, 2, (n, width), generator=torch.Generator().manual_seed(seed)).double()


def model_pass(model, clamped, direction):
    """The model's free node voltages, power per sample and relaxation times of one pass."""
    t_forward, t_backward = model.relaxation_times()
    if direction == "forward":
        scale = model.n_visible if model.layer_scaled else 1
        volts, power, tau = model.delta_eh(clamped) / scale, model.power_forward(clamped), t_forward
    else:
        scale = model.n_hidden if model.layer_scaled else 1
        volts, power, tau = model.delta_ev(clamped) / scale, model.power_backward(clamped), t_backward
    return volts.numpy(), power.numpy(), tau.numpy()


# --------------------------------------------------------------------------- #
# The model against the explicit circuit of netlist_of (no ngspice needed)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layer_scaled", [True, False])
def test_model_equals_the_circuit_of_netlist_of(offset, direction, layer_scaled):
    model = random_machine(offset, layer_scaled, seed=3)
    clamped = clamped_states(model, direction)
    net = netlist_of(model, clamped, direction)
    assert net.n_free == (model.n_hidden if direction == "forward" else model.n_visible)
    volts, power, tau = model_pass(model, clamped, direction)
    circuit_volts = solve_netlist(net)
    np.testing.assert_allclose(volts, circuit_volts, rtol=0, atol=1e-10)
    np.testing.assert_allclose(power, edge_power(net, circuit_volts), rtol=0, atol=1e-10)
    np.testing.assert_allclose(tau, NODE_CAPACITANCE / node_conductance(net), rtol=1e-10)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_the_rbm_power_is_that_of_its_circuit(direction):
    model = random_machine(0.5, seed=4, cls=rkm.RBM)
    clamped = clamped_states(model, direction)
    net = netlist_of(model, clamped, direction)
    _, power, _ = model_pass(model, clamped, direction)
    np.testing.assert_allclose(power, edge_power(net, solve_netlist(net)), rtol=0, atol=1e-10)


def test_netlist_of_carries_every_supply_and_the_offset():
    model = random_machine(0.5, seed=5)
    net = netlist_of(model, clamped_states(model, "backward"), "backward")
    supplies = dict(zip(net.source_names, net.source_voltages[0]))
    assert supplies["+g_v"] == 0.7 and supplies["c-g_v"] == pytest.approx(0.5 - 0.7)
    assert supplies["not h0"] == 0.5 - supplies["h0"]
    forward = netlist_of(model, clamped_states(model, "forward"), "forward")
    assert dict(zip(forward.source_names, forward.source_voltages[0]))["+g_h"] == 0.4


# --------------------------------------------------------------------------- #
# The model against ngspice
# --------------------------------------------------------------------------- #
@needs_ngspice
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
@pytest.mark.parametrize("layer_scaled", [True, False])
def test_model_equals_ngspice_operating_point(offset, direction, layer_scaled):
    model = random_machine(offset, layer_scaled, seed=6)
    clamped = clamped_states(model, direction, n=2, seed=7)
    net = netlist_of(model, clamped, direction)
    volts, power, _ = model_pass(model, clamped, direction)
    for sample in range(2):
        op = simulate_ngspice(net, sample)
        assert isinstance(op, SpiceOperatingPoint)
        np.testing.assert_allclose(volts[sample], op.voltages, rtol=1e-9, atol=1e-12)
        assert power[sample] == pytest.approx(op.power, rel=1e-9)
        # the sources' currents balance: nothing flows to ground but through them
        assert abs(op.source_currents.sum()) < 1e-9 * np.abs(op.source_currents).sum()


@needs_ngspice
@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_model_relaxation_times_equal_ngspice_transients(offset, direction):
    model = random_machine(offset, seed=8)
    net = netlist_of(model, clamped_states(model, direction, n=1, seed=9), direction)
    _, _, tau = model_pass(model, clamped_states(model, direction, n=1), direction)
    measured = [ngspice_relaxation_time(net, name, NODE_CAPACITANCE) for name in net.free_names]
    np.testing.assert_allclose(measured, tau, rtol=1e-3)


@needs_ngspice
def test_relaxation_time_of_a_coupled_node_is_its_one_over_e_time():
    """s1 = 1 --(1)-- x --(2)-- y --(1)-- s0 = 0, capacitance C on x and y.

    x starts displaced by d with y at its consistent value (2/3 of x's displacement); the
    modes of L = [[3, -2], [-2, 3]] are (1, 1) at rate 1/C and (1, -1) at rate 5/C, so
    x's deviation is d (5/6 exp(-t/C) + 1/6 exp(-5t/C)).
    """
    net = Netlist(
        n_free=2, source_voltages=np.array([[0.0, 1.0]]), edges_a=np.array([3, 0, 1]),
        edges_b=np.array([0, 1, 2]), conductance=np.array([1.0, 2.0, 1.0]),
        source_names=["s0", "s1"], free_names=["x", "y"],
    )
    C = 0.3
    expected = brentq(lambda t: 5 / 6 * math.exp(-t / C) + 1 / 6 * math.exp(-5 * t / C) - math.exp(-1), 0, 10 * C)
    assert ngspice_relaxation_time(net, "x", C) == pytest.approx(expected, rel=1e-4)
    # one capacitance per node: with ten times more on y, x relaxes more slowly too
    slow = ngspice_relaxation_time(net, 0, [C, 10 * C])
    assert slow > 1.5 * expected


@needs_ngspice
def test_a_floating_node_is_ngspices_singular_matrix():
    net = Netlist(
        n_free=3, source_voltages=np.array([[1.0]]), edges_a=np.array([0, 1]),
        edges_b=np.array([3, 2]), conductance=np.array([1.0, 1.0]),
        source_names=["s"], free_names=["x", "y", "z"],
    )
    with pytest.raises(SimulationError, match=r"singular matrix:\s+check node"):
        simulate_ngspice(net)


# --------------------------------------------------------------------------- #
# Errors (no ngspice needed)
# --------------------------------------------------------------------------- #
def test_missing_ngspice_says_how_to_install_it(tmp_path):
    model = random_machine(0.0)
    net = netlist_of(model, clamped_states(model, "forward"), "forward")
    missing = str(tmp_path / "no-such-ngspice")
    with pytest.raises(NgspiceNotFoundError, match=r"apt-get install ngspice"):
        simulate_ngspice(net, executable=missing)
    with pytest.raises(rkm.RKMError, match=r"apt-get install ngspice"):
        ngspice_relaxation_time(net, "h0", executable=missing)


def test_a_failing_ngspice_is_quoted(tmp_path):
    fake = tmp_path / "ngspice"
    fake.write_text("#!/bin/sh\necho 'Error on line 3: unknown parameter (-x)' >&2\nexit 1\n")
    fake.chmod(0o755)
    model = random_machine(0.0)
    net = netlist_of(model, clamped_states(model, "forward"), "forward")
    with pytest.raises(SimulationError, match=r"exit status 1.*unknown parameter \(-x\)"):
        simulate_ngspice(net, executable=str(fake))


def test_bad_relaxation_arguments():
    model = random_machine(0.0)
    net = netlist_of(model, clamped_states(model, "forward"), "forward")
    with pytest.raises(DataError, match=r"'v0' is not a free node.*h0, h1"):
        ngspice_relaxation_time(net, "v0")
    with pytest.raises(DataError, match=r"index in \[0, 4\)"):
        ngspice_relaxation_time(net, 4)
    with pytest.raises(DataError, match="capacitance"):
        ngspice_relaxation_time(net, 0, -1.0)
    with pytest.raises(DataError, match="capacitance"):
        ngspice_relaxation_time(net, 0, [1.0, 2.0])
    with pytest.raises(DataError, match="sample"):
        simulate_ngspice(net, sample=3)
    lone = Netlist(1, np.zeros((1, 1)), [], [], [], ["s"], ["x"])
    with pytest.raises(DataError, match="no resistor"):
        ngspice_relaxation_time(lone, "x")
