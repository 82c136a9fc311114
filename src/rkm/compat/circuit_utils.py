"""pyrkm 0.1.0's ``pyrkm.circuit_utils``: a resistor network on any networkx graph.

Each edge of the graph is a resistor; :meth:`Circuit.solve` holds some nodes at given
voltages and finds the others by Kirchhoff's current law, with rkm's sparse solver
(:func:`rkm.circuits.netlist.solve_netlist`, a sparse LU of the free block of the Laplacian).
pyrkm solved the extended (Laplacian plus constraints) system instead, which gives the
same voltages where the problem is well posed.

Differences from pyrkm: a node with no conductance path to a fixed node has no defined
voltage and raises :class:`~rkm.errors.DataError` naming it (pyrkm's solve returned
NaN with a singular-matrix warning); a zero conductance is an open circuit and a
negative or non-finite one is refused; ``Q`` must fix node voltages (each column a
single 1, as :meth:`Circuit.constraint_matrix` builds it, which is what pyrkm
documents); a graph file path is refused (pyrkm unpickled it with ``read_gpickle``,
which networkx 3 removed); the plots return their figure and work with current
matplotlib (pyrkm's ``plot_edge_state`` used the removed ``cm.get_cmap``).
"""

from __future__ import annotations

import os
from typing import Any

import networkx as nx
import numpy as np
import scipy.sparse as sp
from matplotlib.figure import Figure

from .. import plots
from ..circuits.netlist import Netlist, laplacian, solve_netlist
from ..core._checks import float_array
from ..errors import ConfigError, DataError

__all__ = ["Circuit"]


class Circuit:
    """A resistor network whose edges carry conductances.

    Parameters
    ----------
    graph : networkx.Graph
        Nodes and edges of the network (any networkx graph; every edge is one
        resistor). Node attributes ``'pos'`` (x, y) are used by the plots.

    Attributes
    ----------
    graph : networkx.Graph
    n : int
        Number of nodes.
    ne : int
        Number of edges.
    pts : numpy.ndarray of shape (n, 2), or None
        Node positions, when every node has a ``'pos'`` attribute.
    incidence_matrix : scipy sparse matrix, shape (n, ne)
        Oriented incidence matrix (``networkx.incidence_matrix``), in the order of
        ``graph.nodes`` and ``graph.edges``.
    conductances : numpy.ndarray, shape (ne,)
        Set by :meth:`setConductances`.
    """

    def __init__(self, graph: nx.Graph) -> None:
        if isinstance(graph, (str, os.PathLike)):
            raise ConfigError(
                f"Circuit takes a networkx graph, not the file {graph!r}: pyrkm read pickled graphs, and "
                "unpickling runs code from the file. Read it with networkx (e.g. nx.read_graphml) and pass the graph."
            )
        if not isinstance(graph, nx.Graph):
            raise ConfigError(f"Circuit takes a networkx graph, got {type(graph).__name__}.")
        self.graph = graph
        self.n = graph.number_of_nodes()
        self.ne = graph.number_of_edges()
        self._nodes = list(graph.nodes)
        index = {node: k for k, node in enumerate(self._nodes)}
        self._edges = np.array([(index[u], index[v]) for u, v in graph.edges()], dtype=np.int64).reshape(-1, 2)
        positions = [graph.nodes[node].get("pos") for node in self._nodes]
        self.pts = (
            None if any(p is None for p in positions) else np.asarray(positions, dtype=np.float64).reshape(self.n, -1)
        )
        self.incidence_matrix = nx.incidence_matrix(graph, oriented=True)

    def setConductances(self, conductances: Any) -> None:
        """Set the conductance of every edge, in the order of ``graph.edges``.

        Parameters
        ----------
        conductances : array_like, shape (ne,)
            Finite and >= 0 (0 is an open circuit).
        """
        g = float_array(conductances, "conductances").reshape(-1)
        if g.shape[0] != self.ne:
            raise DataError(f"conductances must have one value per edge ({self.ne}), got {g.shape[0]}.")
        if np.any(g < 0):
            raise DataError("conductances must be >= 0; a resistor has no negative conductance.")
        self.conductances = g

    def _netlist(self, fixed: np.ndarray, voltages: np.ndarray) -> tuple[Netlist, np.ndarray]:
        """The network with the nodes ``fixed`` held at ``voltages``, and the graph index of each free node."""
        if not hasattr(self, "conductances"):
            raise ConfigError("the conductances have not been set yet; call setConductances first.")
        free = np.setdiff1d(np.arange(self.n), fixed)
        order = np.empty(self.n, dtype=np.int64)
        order[free] = np.arange(free.size)
        order[fixed] = free.size + np.arange(fixed.size)
        on = self.conductances > 0
        a, b = order[self._edges[on, 0]], order[self._edges[on, 1]]
        net = Netlist(
            n_free=free.size,
            source_voltages=voltages.reshape(1, -1),
            edges_a=a,
            edges_b=b,
            conductance=self.conductances[on],
            source_names=[str(self._nodes[k]) for k in fixed],
            free_names=[str(self._nodes[k]) for k in free],
        )
        return net, free

    def _hessian(self) -> sp.csr_matrix:
        """The weighted Laplacian ``B diag(conductances) B^T`` (the power's Hessian in the node voltages).

        Returns
        -------
        scipy.sparse.csr_matrix, shape (n, n)
        """
        net, _ = self._netlist(np.zeros(0, dtype=np.int64), np.zeros(0))
        return laplacian(net)

    def constraint_matrix(self, indices_nodes: Any) -> sp.csr_matrix:
        """The matrix Q that fixes the voltages of the nodes ``indices_nodes``.

        Parameters
        ----------
        indices_nodes : array_like of int
            Positions of the fixed nodes in ``list(graph.nodes)``, distinct, at least one.

        Returns
        -------
        scipy.sparse.csr_matrix, shape (n, len(indices_nodes))
            ``Q[indices_nodes[k], k] = 1``, every other entry 0.
        """
        idx = np.asarray(indices_nodes).reshape(-1)
        if idx.size == 0:
            raise DataError("indices_nodes must name at least one node.")
        if idx.dtype.kind not in "iu" or idx.min() < 0 or idx.max() >= self.n or np.unique(idx).size != idx.size:
            raise DataError(f"indices_nodes must be distinct integers in [0, {self.n}), got {indices_nodes!r}.")
        return sp.csr_matrix((np.ones(idx.size), (idx, np.arange(idx.size))), shape=(self.n, idx.size))

    def solve(self, Q: Any, f: Any) -> np.ndarray:
        """Node voltages with ``Q^T V = f`` and Kirchhoff's current law at every other node.

        Parameters
        ----------
        Q : scipy sparse matrix or array, shape (n, m)
            From :meth:`constraint_matrix`: column k fixes one node.
        f : array_like, shape (m,)
            The fixed nodes' voltages.

        Returns
        -------
        numpy.ndarray, shape (n,)
            Voltage of every node, in the order of ``graph.nodes``.

        Raises
        ------
        DataError
            If ``f`` does not match ``Q``, ``Q`` does not fix node voltages, or a node
            has no conductance path to a fixed node.
        """
        Q = sp.csc_matrix(Q)
        f = float_array(f, "f").reshape(-1)
        if Q.shape[0] != self.n:
            raise DataError(f"Q must have one row per node ({self.n}), got shape {Q.shape}.")
        if f.shape[0] != Q.shape[1]:
            raise DataError(f"f has {f.shape[0]} values but Q fixes {Q.shape[1]} nodes.")
        Q.eliminate_zeros()
        fixed = Q.indices
        if np.any(np.diff(Q.indptr) != 1) or np.any(Q.data != 1) or np.unique(fixed).size != fixed.size:
            raise DataError(
                "Q must fix node voltages: each column a single 1 at a distinct node, as constraint_matrix builds it."
            )
        net, free = self._netlist(fixed, f)
        V = np.empty(self.n)
        V[free] = solve_netlist(net)[0]
        V[fixed] = f
        return V

    def _positions(self) -> np.ndarray:
        if self.pts is None:
            raise DataError("plotting needs a 'pos' attribute (x, y) on every node of the graph.")
        return self.pts

    def _state(self, state: Any, n: int, what: str) -> np.ndarray:
        values = float_array(state, what).reshape(-1)
        if values.shape[0] != n:
            raise DataError(f"{what} must have {n} values, got {values.shape[0]}.")
        return values

    def plot_node_state(
        self,
        node_state: Any,
        title: str | None = None,
        lw: float = 0.5,
        cmap: str = "RdYlBu_r",
        size_factor: float = 100,
    ) -> Figure:
        """Nodes at their positions, sized by ``|node_state|`` and coloured by it; returns the figure."""
        return plots.graph_nodes(self._positions(), self._state(node_state, self.n, "node_state"), title, lw, cmap,
                                 size_factor)

    def plot_edge_state(
        self, edge_state: Any, title: str | None = None, lw: float = 0.5, cmap: str = "RdYlBu_r"
    ) -> Figure:
        """Edges as segments between their nodes, coloured by ``edge_state``; returns the figure."""
        segments = self._positions()[self._edges]
        return plots.graph_edges(segments, self._state(edge_state, self.ne, "edge_state"), title, lw, cmap)
