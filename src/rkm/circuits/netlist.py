"""Explicit resistor-network view of an RKM pass.

This module builds the circuit of one forward or backward pass as a netlist of
resistors and fixed voltage sources and solves Kirchhoff's current law as a
sparse linear system (weighted graph Laplacian, SciPy). It deliberately uses no
closed-form formula for the node voltages or the power, so that the fast model
code can be tested against it.

Node numbering of a :class:`Netlist`: free (floating) nodes ``0 .. n_free-1``,
then the source nodes ``n_free .. n_free+n_sources-1``. For a pass that clamps
a layer of ``n`` units the sources are, in order: the ``n`` clamped nodes
``x_k``, their ``n`` inverted copies ``c - x_k``, the bias supply ``+g`` and
the bias supply ``c - g``.

Voltages, conductances and powers are in code units; all computation is in
float64 NumPy.

:func:`netlist_of` builds the netlist of one pass of an ``rkm.RKM`` or ``rkm.RBM``
from its parameters, supplies and offset. :mod:`rkm.circuits.spice` hands the same
network to a real circuit simulator, ngspice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import splu

from rkm.errors import ConfigError, DataError

from ..core import _checks
from ..core.physics import NODE_CAPACITANCE

__all__ = [
    "Netlist",
    "CircuitPass",
    "build_netlist",
    "solve_netlist",
    "edge_power",
    "power_gradient",
    "node_conductance",
    "solve_pass",
    "netlist_of",
]

Direction = Literal["forward", "backward"]
Isolated = Literal["raise", "nan"]


# --------------------------------------------------------------------------- #
# Netlist
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class Netlist:
    """Resistors between nodes, some of them held at fixed voltages.

    Attributes
    ----------
    n_free : int
        Number of free (floating) nodes; they are nodes ``0 .. n_free-1``.
    source_voltages : ndarray, shape (N, n_sources)
        Voltage of every source node, one row per sample. Source ``k`` is node
        ``n_free + k``.
    edges_a, edges_b : ndarray of int, shape (n_edges,)
        End nodes of each resistor.
    conductance : ndarray, shape (n_edges,)
        Conductance of each resistor (strictly positive).
    source_names, free_names : list of str
        Human-readable node names, e.g. ``'v3'``, ``'not v3'``, ``'+g_h'``,
        ``'c-g_h'`` for sources and ``'h0'`` for free nodes.
    """

    n_free: int
    source_voltages: np.ndarray
    edges_a: np.ndarray
    edges_b: np.ndarray
    conductance: np.ndarray
    source_names: list[str]
    free_names: list[str]

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "n_free", int(self.n_free))
        set_(self, "source_voltages", np.asarray(self.source_voltages, np.float64))
        set_(self, "edges_a", np.asarray(self.edges_a, np.int64))
        set_(self, "edges_b", np.asarray(self.edges_b, np.int64))
        set_(self, "conductance", np.asarray(self.conductance, np.float64))
        set_(self, "source_names", list(self.source_names))
        set_(self, "free_names", list(self.free_names))
        sv = self.source_voltages
        if sv.ndim != 2:
            raise DataError(
                f"source_voltages must be 2-D (N, n_sources); got shape {sv.shape}"
            )
        n_e = self.conductance.shape
        if self.edges_a.shape != n_e or self.edges_b.shape != n_e or len(n_e) != 1:
            raise DataError(
                "edges_a, edges_b and conductance must be 1-D of equal length; got "
                f"{self.edges_a.shape}, {self.edges_b.shape}, {self.conductance.shape}"
            )
        if len(self.free_names) != self.n_free:
            raise DataError(
                f"expected {self.n_free} free_names, got {len(self.free_names)}"
            )
        if len(self.source_names) != sv.shape[1]:
            raise DataError(
                f"expected {sv.shape[1]} source_names, got {len(self.source_names)}"
            )
        n = self.n_nodes
        if n_e[0] and (
            min(self.edges_a.min(), self.edges_b.min()) < 0
            or max(self.edges_a.max(), self.edges_b.max()) >= n
        ):
            raise DataError(f"edge node indices must lie in [0, {n}); got out of range")
        if not np.all(np.isfinite(self.conductance)) or np.any(self.conductance <= 0):
            raise DataError("every edge conductance must be finite and > 0")

    @property
    def n_sources(self) -> int:
        """Number of source (fixed-voltage) nodes."""
        return int(self.source_voltages.shape[1])

    @property
    def n_nodes(self) -> int:
        """Total number of nodes, free and source."""
        return self.n_free + self.n_sources

    @property
    def n_samples(self) -> int:
        """Number of samples N (rows of ``source_voltages``)."""
        return int(self.source_voltages.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of resistors."""
        return int(self.conductance.shape[0])


@dataclass(frozen=True, eq=False)
class CircuitPass:
    """Solved circuit of one pass.

    Attributes
    ----------
    voltages : ndarray, shape (N, n_free)
        Free node voltages (NaN for isolated nodes when ``isolated='nan'``).
    power : ndarray, shape (N,)
        Dissipated power ``1/2 sum_e G_e dV_e^2`` at those voltages.
    node_conductance : ndarray, shape (n_free,)
        Total conductance attached to each free node.
    relaxation_times : ndarray, shape (n_free,)
        ``2 / node_conductance`` (``inf`` for an isolated node).
    """

    voltages: np.ndarray
    power: np.ndarray
    node_conductance: np.ndarray
    relaxation_times: np.ndarray


# --------------------------------------------------------------------------- #
# Building
# --------------------------------------------------------------------------- #
def build_netlist(
    W: Any,
    v_bias: Any,
    h_bias: Any,
    clamped: Any,
    *,
    direction: Direction = "forward",
    g_v: float = 0.5,
    g_h: float = 0.5,
    offset: float = 0.0,
) -> Netlist:
    """Build the resistor network of one RKM pass.

    Parameters
    ----------
    W : array_like or Tensor, shape (n_hidden, n_visible)
        Weights; ``|W_ji|`` is the conductance between hidden ``j`` and
        visible ``i`` (``W_ji > 0``) or the inverted copy of the clamped one
        (``W_ji < 0``). Zero weights give no resistor.
    v_bias, h_bias : array_like or Tensor, shapes (n_visible,), (n_hidden,)
        Biases ``a`` and ``b``; a bias ``beta`` gives conductance
        ``|beta| / g`` to the source ``+g`` (``beta > 0``) or ``c - g``.
    clamped : array_like or Tensor, shape (N, n) or (n,)
        Clamped layer: visible states for ``'forward'``, hidden states for
        ``'backward'``.
    direction : {'forward', 'backward'}
        ``'forward'``: visible clamped, hidden free. ``'backward'``: mirror.
    g_v, g_h : float
        Bias supply voltages (> 0).
    offset : float
        Offset ``c`` of the inverted copies.

    Returns
    -------
    Netlist

    Raises
    ------
    DataError
        Inconsistent shapes or non-finite values.
    ConfigError
        Unknown direction, non-positive or non-finite ``g_v``, ``g_h``, ``offset``.
    """
    if direction not in ("forward", "backward"):
        raise ConfigError(
            f"direction must be 'forward' or 'backward'; got {direction!r}"
        )
    g_v = _checks.number("g_v", g_v, positive=True)
    g_h = _checks.number("g_h", g_h, positive=True)
    c = _checks.number("offset", offset)

    W = _checks.float_array(W, "W")
    if W.ndim != 2:
        raise DataError(f"W must be 2-D (n_hidden, n_visible); got shape {W.shape}")
    n_hidden, n_visible = W.shape
    a = _checks.float_array(v_bias, "v_bias")
    b = _checks.float_array(h_bias, "h_bias")
    if a.shape != (n_visible,):
        raise DataError(
            f"v_bias: expected shape ({n_visible},) to match W {W.shape}; got {a.shape}"
        )
    if b.shape != (n_hidden,):
        raise DataError(
            f"h_bias: expected shape ({n_hidden},) to match W {W.shape}; got {b.shape}"
        )

    if direction == "forward":
        Wfc = W  # (n_free, n_clamped)
        bias, g = b, g_h
        free_p, clamp_p, g_name = "h", "v", "g_h"
    else:
        Wfc = W.T
        bias, g = a, g_v
        free_p, clamp_p, g_name = "v", "h", "g_v"
    n_free, n_clamp = Wfc.shape

    x = _checks.float_array(clamped, "clamped")
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or x.shape[1] != n_clamp:
        raise DataError(
            f"clamped ({'visible' if direction == 'forward' else 'hidden'} layer, "
            f"direction={direction!r}): expected shape (N, {n_clamp}) or "
            f"({n_clamp},); got {np.shape(clamped)}"
        )
    n_samples = x.shape[0]

    # Source nodes: clamped x_k, inverted c - x_k, +g, c - g.
    src_x = n_free + np.arange(n_clamp)
    src_not = n_free + n_clamp + np.arange(n_clamp)
    src_pos = n_free + 2 * n_clamp
    src_neg = src_pos + 1
    source_voltages = np.concatenate(
        [x, c - x, np.full((n_samples, 1), g), np.full((n_samples, 1), c - g)],
        axis=1,
    )

    jj, kk = np.nonzero(Wfc)
    w = Wfc[jj, kk]
    w_other = np.where(w > 0, src_x[kk], src_not[kk])
    (bj,) = np.nonzero(bias)
    bv = bias[bj]
    b_other = np.where(bv > 0, src_pos, src_neg)

    edges_a = np.concatenate([jj, bj]).astype(np.int64)
    edges_b = np.concatenate([w_other, b_other]).astype(np.int64)
    conductance = np.concatenate([np.abs(w), np.abs(bv) / g])

    source_names = (
        [f"{clamp_p}{k}" for k in range(n_clamp)]
        + [f"not {clamp_p}{k}" for k in range(n_clamp)]
        + [f"+{g_name}", f"c-{g_name}"]
    )
    free_names = [f"{free_p}{j}" for j in range(n_free)]
    return Netlist(
        n_free=n_free,
        source_voltages=source_voltages,
        edges_a=edges_a,
        edges_b=edges_b,
        conductance=conductance,
        source_names=source_names,
        free_names=free_names,
    )


# --------------------------------------------------------------------------- #
# Linear algebra on the netlist
# --------------------------------------------------------------------------- #
def laplacian(net: Netlist) -> sp.csr_matrix:
    """Weighted graph Laplacian of the netlist, shape (n_nodes, n_nodes): ``L = B^T diag(G) B``."""
    a, b, G = net.edges_a, net.edges_b, net.conductance
    rows = np.concatenate([a, b, a, b])
    cols = np.concatenate([a, b, b, a])
    vals = np.concatenate([G, G, -G, -G])
    n = net.n_nodes
    return sp.coo_matrix((vals, (rows, cols)), shape=(n, n)).tocsr()


def _incidence(net: Netlist) -> sp.csr_matrix:
    """Signed incidence matrix B, shape (n_edges, n_nodes): +1 at a, -1 at b."""
    m = net.n_edges
    rows = np.concatenate([np.arange(m), np.arange(m)])
    cols = np.concatenate([net.edges_a, net.edges_b])
    vals = np.concatenate([np.ones(m), -np.ones(m)])
    return sp.coo_matrix((vals, (rows, cols)), shape=(m, net.n_nodes)).tocsr()


def _all_voltages(net: Netlist, free_voltages: Any) -> np.ndarray:
    v = _checks.float_array(free_voltages, "free_voltages", finite=False)
    if v.ndim == 1:
        v = v[None, :]
    expected = (net.n_samples, net.n_free)
    if v.shape != expected:
        raise DataError(
            f"free_voltages: expected shape {expected} (or ({net.n_free},) for one "
            f"sample); got {np.shape(free_voltages)}"
        )
    return np.concatenate([v, net.source_voltages], axis=1)


def node_conductance(net: Netlist) -> np.ndarray:
    """Total conductance attached to each free node.

    Returns
    -------
    ndarray, shape (n_free,)
    """
    G = np.bincount(net.edges_a, weights=net.conductance, minlength=net.n_nodes)
    G = G + np.bincount(net.edges_b, weights=net.conductance, minlength=net.n_nodes)
    return G[: net.n_free]


def _floating_nodes(net: Netlist) -> np.ndarray:
    """Free nodes whose connected component contains no source node."""
    if net.n_free == 0:
        return np.zeros(0, dtype=np.int64)
    n = net.n_nodes
    adj = sp.coo_matrix(
        (np.ones(net.n_edges), (net.edges_a, net.edges_b)), shape=(n, n)
    )
    _, labels = connected_components(adj, directed=False)
    grounded = np.zeros(labels.max() + 1, dtype=bool)
    grounded[labels[net.n_free :]] = True
    return np.nonzero(~grounded[labels[: net.n_free]])[0]


def solve_netlist(net: Netlist, *, isolated: Isolated = "raise") -> np.ndarray:
    """Solve Kirchhoff's current law for the free node voltages.

    With the Laplacian ``L`` split into free (f) and source (s) blocks this
    solves ``L_ff x_f = -L_fs x_s`` for all samples with one sparse LU
    factorisation.

    Parameters
    ----------
    net : Netlist
    isolated : {'raise', 'nan'}
        What to do with free nodes not connected to any source (e.g. a node
        whose weights and bias are all zero): raise :class:`~rkm.errors.DataError`, or
        give them NaN voltage and solve the rest.

    Returns
    -------
    ndarray, shape (N, n_free)
    """
    if isolated not in ("raise", "nan"):
        raise ConfigError(f"isolated must be 'raise' or 'nan'; got {isolated!r}")
    nf = net.n_free
    out = np.full((net.n_samples, nf), np.nan)
    bad = _floating_nodes(net)
    if bad.size and isolated == "raise":
        names = ", ".join(net.free_names[k] for k in bad[:20])
        more = f" (and {bad.size - 20} more)" if bad.size > 20 else ""
        raise DataError(
            f"node(s) {names}{more} have no conductance path to any source, so "
            "their voltage is undefined: every node needs at least one nonzero "
            "conductance (a nonzero weight or bias). Fix the parameters, or pass "
            "isolated='nan' to get NaN for these nodes."
        )
    keep = np.setdiff1d(np.arange(nf), bad)
    if keep.size == 0 or net.n_samples == 0:
        return out
    L = laplacian(net)
    L_ff = L[keep][:, keep].tocsc()
    L_fs = L[keep][:, nf:]
    rhs = -(L_fs @ net.source_voltages.T)  # (n_keep, N)
    lu = splu(L_ff)
    x = lu.solve(np.ascontiguousarray(rhs))
    out[:, keep] = np.asarray(x).reshape(keep.size, net.n_samples).T
    return out


def edge_power(net: Netlist, free_voltages: Any) -> np.ndarray:
    """Dissipated power ``1/2 sum_e G_e (V_a - V_b)^2`` at given free voltages.

    Parameters
    ----------
    net : Netlist
    free_voltages : array_like, shape (N, n_free) or (n_free,)
        Any free node voltages (not necessarily the KCL solution).

    Returns
    -------
    ndarray, shape (N,)
    """
    V = _all_voltages(net, free_voltages)
    dV = _incidence(net) @ V.T  # (n_edges, N)
    return 0.5 * (net.conductance @ np.square(dV, out=dV))


def power_gradient(net: Netlist, free_voltages: Any) -> np.ndarray:
    """Gradient of :func:`edge_power` with respect to the free voltages.

    ``dP/dV_k = sum_e G_e (V_a - V_b) (delta_ka - delta_kb)``; it vanishes at
    the KCL solution (it is the net current out of each free node).

    Returns
    -------
    ndarray, shape (N, n_free)
    """
    V = _all_voltages(net, free_voltages)
    B = _incidence(net)
    current = (B @ V.T) * net.conductance[:, None]  # (n_edges, N)
    return np.asarray(B.T @ current)[: net.n_free].T


def solve_pass(
    W: Any,
    v_bias: Any,
    h_bias: Any,
    clamped: Any,
    *,
    direction: Direction = "forward",
    g_v: float = 0.5,
    g_h: float = 0.5,
    offset: float = 0.0,
    isolated: Isolated = "raise",
) -> CircuitPass:
    """Build and solve one pass: voltages, power and relaxation times.

    Parameters are those of :func:`build_netlist` and :func:`solve_netlist`.

    Returns
    -------
    CircuitPass
    """
    net = build_netlist(
        W, v_bias, h_bias, clamped, direction=direction, g_v=g_v, g_h=g_h, offset=offset
    )
    volts = solve_netlist(net, isolated=isolated)
    G = node_conductance(net)
    with np.errstate(divide="ignore"):
        tau = NODE_CAPACITANCE / G
    return CircuitPass(
        voltages=volts,
        power=edge_power(net, volts),
        node_conductance=G,
        relaxation_times=tau,
    )


# --------------------------------------------------------------------------- #
# A pass of a model
# --------------------------------------------------------------------------- #
def netlist_of(model: Any, clamped: Any, direction: Direction = "forward") -> Netlist:
    """The netlist of one pass of an ``rkm.RKM`` or ``rkm.RBM``.

    The resistors come from the model's realised parameters
    (``model.realised_parameters()``: the conductances its devices realise, which
    equal ``W``, ``v_bias``, ``h_bias`` for ideal devices), the supplies from
    ``g_v``, ``g_h`` and ``offset``: the whole circuit the model's passes, power
    and relaxation times describe (see :func:`build_netlist`).

    Parameters
    ----------
    model : rkm.RKM or rkm.RBM
    clamped : array_like or Tensor, shape (N, n) or (n,)
        The clamped layer: visible states for ``'forward'``, hidden states for
        ``'backward'``.
    direction : {'forward', 'backward'}

    Returns
    -------
    Netlist
    """
    W, v_bias, h_bias = model.realised_parameters()
    return build_netlist(
        W, v_bias, h_bias, clamped, direction=direction,
        g_v=model.g_v, g_h=model.g_h, offset=model.offset,
    )
