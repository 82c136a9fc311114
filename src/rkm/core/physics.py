"""The resistor network in closed form: node voltages, dissipated power, relaxation times.

Pure functions of tensors. One clamped pass of a Restricted Kirchhoff Machine is a
set of floating nodes (the free layer), each tied by conductances to fixed sources
(the clamped layer, its inverted copies at ``c - x`` and two bias supplies).
Kirchhoff's current law makes every free node the conductance-weighted mean of the
sources it touches:

    G_j     = sum_i |W_ji| + |b_j| / g
    num_j   = sum_i W_ji x_i + b_j + (c/2) ((|b_j| - b_j)/g + sum_i (|W_ji| - W_ji))
    V_j     = num_j / G_j

and the power dissipated, P = 1/2 sum_edges G (dV)^2, evaluated at those voltages,
collapses to sums the pass has already computed:

    2 P = sum_i (x_i^2 Gp_i + (c - x_i)^2 Gm_i) + K - sum_j num_j^2 / G_j

where Gp_i, Gm_i are the total positive and negative conductance on source node i and
K = sum_j (|b_j|/g) u_j^2 is the bias supplies' share (u_j = g or c - g). Nothing here
forms a (batch, n_free, n_clamped) tensor: a pass costs one matrix product plus
O(batch x (n_free + n_clamped)).

A free node with zero total conductance (or one below the dtype's smallest normal number,
whose inverse is not finite) has no defined voltage. It is taken to sit at 0 V (its
comparator sees 0), dissipates nothing, and has an infinite relaxation time; no NaN is
produced. The module ``rkm.circuits.netlist`` solves the same network explicitly and
the tests hold these formulas to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["NODE_CAPACITANCE", "LayerPhysics", "layer_physics", "pass_power", "relaxation_times", "twice_pass_power"]

NODE_CAPACITANCE = 2.0
"""Capacitance of every node in code units: a node's relaxation time is ``NODE_CAPACITANCE / G``."""


@dataclass(frozen=True)
class LayerPhysics:
    """Per-parameter constants of one pass direction, computed once per update.

    Attributes
    ----------
    conductance : Tensor, shape (n_free,)
        Total conductance G on each free node (0 for an isolated node).
    inverse_conductance : Tensor, shape (n_free,)
        ``1 / G``, with 1 in place of an isolated node's 1/0 (its numerator is 0).
    effective_bias : Tensor, shape (n_free,)
        The constant part of the numerator, b_eff.
    source_abs : Tensor, shape (n_clamped,)
        Total conductance on each clamped node and its inverted copy, Gp + Gm.
    source_neg : Tensor, shape (n_clamped,)
        Total negative-weight conductance Gm on each clamped node (to its inverted copy).
    source_binary : Tensor, shape (n_clamped,)
        ``Gp + Gm - 2 c Gm``: the source weights of a 0/1 clamped layer (x^2 = x).
    constant : Tensor, shape ()
        K + c^2 sum_i Gm_i, with K = sum_j (|b_j|/g) u_j^2 the bias supplies' share.
    slowest : Tensor, shape ()
        The slowest finite relaxation time 2 / G of the free nodes (0 if every node is isolated):
        how long a pass of this direction takes to settle, in relaxation times (``rkm.core.units``).
    offset : float
        The offset voltage c.
    """

    conductance: torch.Tensor
    inverse_conductance: torch.Tensor
    effective_bias: torch.Tensor
    source_abs: torch.Tensor
    source_neg: torch.Tensor
    source_binary: torch.Tensor
    constant: torch.Tensor
    slowest: torch.Tensor
    offset: float


def _layer(abs_row: torch.Tensor, row: torch.Tensor, abs_col: torch.Tensor, col: torch.Tensor, bias: torch.Tensor,
           g: float, offset: float) -> LayerPhysics:
    abs_b = bias.abs()
    conductance = torch.add(abs_row, abs_b, alpha=1.0 / g)
    source_neg = torch.sub(abs_col, col).mul_(0.5)
    # bias supplies: |b|/g to g where b > 0, to c - g where b < 0; with A = sum |b|, S = sum b,
    # K = (g^2 (A + S) + (c - g)^2 (A - S)) / (2 g)
    up, down = g * g, (offset - g) ** 2
    constant = torch.add(abs_b.sum() * ((up + down) / (2 * g)), bias.sum(), alpha=(up - down) / (2 * g))
    if offset == 0.0:
        effective_bias, source_binary = bias.clone(), abs_col
    else:
        effective_bias = torch.add(bias, torch.sub(abs_row, row), alpha=0.5 * offset)
        effective_bias.add_(torch.sub(abs_b, bias), alpha=0.5 * offset / g)
        source_binary = torch.add(abs_col, source_neg, alpha=-2.0 * offset)
        constant.add_(source_neg.sum(), alpha=offset**2)
    # a conductance below the dtype's smallest normal number (a subnormal) has no finite inverse: isolated
    connected = conductance >= torch.finfo(conductance.dtype).tiny
    return LayerPhysics(
        conductance=conductance,
        inverse_conductance=torch.where(connected, conductance, 1.0).reciprocal_(),
        effective_bias=effective_bias,
        source_abs=abs_col,
        source_neg=source_neg,
        source_binary=source_binary,
        constant=constant,
        slowest=NODE_CAPACITANCE / torch.where(connected, conductance, math.inf).min(),
        offset=float(offset),
    )


def layer_physics(
    W: torch.Tensor, v_bias: torch.Tensor, h_bias: torch.Tensor, g_v: float, g_h: float, offset: float
) -> tuple[LayerPhysics, LayerPhysics]:
    """Constants of the forward pass (hidden nodes free) and the backward pass (visible free).

    Parameters
    ----------
    W : Tensor, shape (n_hidden, n_visible)
    v_bias, h_bias : Tensor
        Biases of the visible and hidden layer.
    g_v, g_h : float
        Bias supply voltages.
    offset : float
        Offset voltage c; inverted sources sit at ``c - x``.

    Both directions share one pass over ``|W|``: its row sums are the forward node
    conductances and the backward source totals, its column sums the reverse.
    """
    magnitude = W.abs()  # one W-sized temporary: ord-1 norms along dim 0 were 5x slower
    abs_row, abs_col = magnitude.sum(dim=1), magnitude.sum(dim=0)
    del magnitude
    row, col = W.sum(dim=1), W.sum(dim=0)
    forward = _layer(abs_row, row, abs_col, col, h_bias, g_h, offset)
    backward = _layer(abs_col, col, abs_row, row, v_bias, g_v, offset)
    return forward, backward


def pass_power(clamped: torch.Tensor, numerator: torch.Tensor, phys: LayerPhysics,
               binary: bool = False) -> torch.Tensor:
    """Power dissipated by each sample's pass at its equilibrium, shape (batch,).

    Same parameters as :func:`twice_pass_power`; rounding can leave a tiny negative
    value where the power is 0, which is clipped.
    """
    return twice_pass_power(clamped, numerator, phys, binary).mul_(0.5).clamp_min_(0.0)


def twice_pass_power(
    clamped: torch.Tensor,
    numerator: torch.Tensor,
    phys: LayerPhysics,
    binary: bool = False,
    drive: tuple[torch.Tensor, float] | None = None,
    constant: bool = True,
) -> torch.Tensor:
    """Twice the power of each sample's pass, unclipped (training halves and clips all passes at once).

    Parameters
    ----------
    clamped : Tensor, shape (batch, n_clamped)
        Voltages of the clamped layer.
    numerator : Tensor, shape (batch, n_free)
        ``clamped @ W.T + effective_bias``, as computed for the node voltages.
    phys : LayerPhysics
        Constants of this pass direction.
    binary : bool
        The caller guarantees ``clamped`` is 0/1 (a comparator sample), so x^2 = x and
        the source terms take one product instead of two or three.
    drive : (Tensor, float), optional
        ``(z, f)`` with ``z = numerator / (f G)`` per node, the comparator input the pass
        already formed; then sum_j num_j^2 / G_j = f sum_j num_j z_j, one row-wise dot.
    constant : bool
        False leaves out ``phys.constant``, the same for every sample, for the caller to
        add once to many passes.
    """
    if drive is None:
        node, factor = torch.mv(numerator.square(), phys.inverse_conductance), 1.0
    else:
        z, factor = drive
        node = torch.linalg.vecdot(numerator, z)
    # sum_i x_i^2 Gp_i + (c - x_i)^2 Gm_i = x^2 . (Gp + Gm) - 2c x . Gm + c^2 sum Gm
    if binary:
        twice = torch.addmv(node, clamped, phys.source_binary, beta=-factor)
    else:
        twice = torch.addmv(node, clamped.square(), phys.source_abs, beta=-factor)
        if phys.offset != 0.0:
            twice.addmv_(clamped, phys.source_neg, alpha=-2.0 * phys.offset)
    return twice.add_(phys.constant) if constant else twice


def relaxation_times(phys: LayerPhysics) -> torch.Tensor:
    """RC relaxation time 2 / G of each free node (node capacitance 2); inf if G = 0."""
    return NODE_CAPACITANCE / phys.conductance
