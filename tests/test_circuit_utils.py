"""circuit_utils.Circuit: a resistor network on a networkx graph, held to Kirchhoff's current law."""

import matplotlib
import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pytest

from rkm.circuit_utils import Circuit
from rkm.errors import ConfigError, DataError

matplotlib.use("Agg")


def grid_circuit(seed=0):
    graph = nx.grid_2d_graph(4, 5)
    graph = nx.convert_node_labels_to_integers(graph, label_attribute="xy")
    for node, data in graph.nodes(data=True):
        data["pos"] = data["xy"]
    circuit = Circuit(graph)
    circuit.setConductances(np.random.default_rng(seed).uniform(0.1, 2.0, circuit.ne))
    return circuit


def net_currents(circuit, V):
    """Current leaving each node, summed edge by edge from the graph: I = sum_e G_e (V_a - V_b)."""
    out = np.zeros(circuit.n)
    nodes = list(circuit.graph.nodes)
    for (u, v), g in zip(circuit.graph.edges(), circuit.conductances):
        a, b = nodes.index(u), nodes.index(v)
        out[a] += g * (V[a] - V[b])
        out[b] += g * (V[b] - V[a])
    return out


def test_solve_obeys_kirchhoff_at_every_free_node_and_holds_the_fixed_ones():
    circuit = grid_circuit()
    fixed = np.array([0, 7, 19])
    f = np.array([1.0, -0.5, 0.25])
    V = circuit.solve(circuit.constraint_matrix(fixed), f)
    assert V.shape == (circuit.n,)
    np.testing.assert_array_equal(V[fixed], f)
    free = np.setdiff1d(np.arange(circuit.n), fixed)
    np.testing.assert_allclose(net_currents(circuit, V)[free], 0.0, atol=1e-12)
    assert f.min() <= V.min() and V.max() <= f.max()  # a passive network: extremes at the sources


def test_a_voltage_divider():
    circuit = Circuit(nx.path_graph(3))
    circuit.setConductances([1.0, 3.0])
    V = circuit.solve(circuit.constraint_matrix([0, 2]), [1.0, 0.0])
    np.testing.assert_allclose(V, [1.0, 0.25, 0.0], atol=1e-15)  # V1 = G1 / (G1 + G2)


def test_hessian_is_the_weighted_laplacian_and_zero_conductances_are_open():
    circuit = grid_circuit(1)
    g = circuit.conductances.copy()
    g[::4] = 0.0
    circuit.setConductances(g)
    B = nx.incidence_matrix(circuit.graph, oriented=True).toarray()
    np.testing.assert_allclose(circuit._hessian().toarray(), B @ np.diag(g) @ B.T, atol=1e-14)
    V = circuit.solve(circuit.constraint_matrix([0, 19]), [1.0, 0.0])
    free = np.arange(1, 19)
    np.testing.assert_allclose((circuit._hessian() @ V)[free], 0.0, atol=1e-12)


def test_constraint_matrix_selects_the_nodes():
    circuit = grid_circuit()
    Q = circuit.constraint_matrix([3, 1])
    assert Q.shape == (circuit.n, 2) and Q.nnz == 2 and Q[3, 0] == 1 and Q[1, 1] == 1
    P = (Q @ Q.T).toarray()
    np.testing.assert_array_equal(P @ P, P)  # a projector
    for bad in ([], [0, 0], [circuit.n], [1.5]):
        with pytest.raises(DataError):
            circuit.constraint_matrix(bad)


def test_bad_inputs_are_clear_errors():
    circuit = Circuit(nx.path_graph(4))
    with pytest.raises(ConfigError, match="setConductances"):
        circuit.solve(circuit.constraint_matrix([0]), [1.0])
    with pytest.raises(DataError, match="one value per edge"):
        circuit.setConductances([1.0, 1.0])
    with pytest.raises(DataError, match=">= 0"):
        circuit.setConductances([1.0, -1.0, 1.0])
    circuit.setConductances([1.0, 0.0, 1.0])  # nodes 2 and 3 cut off from node 0
    with pytest.raises(DataError, match="node\\(s\\) 2, 3 have no conductance path"):
        circuit.solve(circuit.constraint_matrix([0]), [1.0])
    with pytest.raises(DataError, match="f has 2 values"):
        circuit.solve(circuit.constraint_matrix([0]), [1.0, 2.0])
    difference = np.zeros((4, 1))
    difference[0, 0], difference[1, 0] = 1.0, -1.0
    with pytest.raises(DataError, match="fix node voltages"):
        circuit.solve(difference, [1.0])
    with pytest.raises(ConfigError, match="not the file"):
        Circuit("graph.gpickle")


def test_plots_return_figures():
    circuit = grid_circuit()
    V = circuit.solve(circuit.constraint_matrix([0, 19]), [1.0, 0.0])
    fig = circuit.plot_node_state(V, title="voltages")
    assert fig.axes[0].get_title() == "voltages" and len(fig.axes[0].collections) == 1
    currents = circuit.conductances * (circuit.incidence_matrix.T @ V)
    fig2 = circuit.plot_edge_state(currents)
    assert len(fig2.axes[0].collections[0].get_segments()) == circuit.ne
    plt.close("all")
    with pytest.raises(DataError, match="'pos'"):
        Circuit(nx.path_graph(3)).plot_node_state(np.zeros(3))
    with pytest.raises(DataError, match="must have 20 values"):
        circuit.plot_node_state(np.zeros(3))


def test_same_voltages_as_pyrkm(pyrkm):
    from pyrkm.circuit_utils import Circuit as Reference

    ours = grid_circuit(2)
    reference = Reference(ours.graph)
    reference.setConductances(ours.conductances)
    Q = ours.constraint_matrix([0, 5, 12])
    np.testing.assert_allclose(ours.solve(Q, [1.0, 0.0, 0.3]), reference.solve(Q, np.array([1.0, 0.0, 0.3])), atol=1e-12)
    np.testing.assert_allclose(ours._hessian().toarray(), reference._hessian().toarray(), atol=1e-14)
