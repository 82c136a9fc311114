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

A free node with zero total conductance has no defined voltage. It is taken to sit at
0 V (its comparator sees 0), dissipates nothing, and has an infinite relaxation time;
no NaN is produced. The module ``rkm.circuit`` solves the same network explicitly and
the tests hold these formulas to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["LayerPhysics", "layer_physics", "free_voltages", "pass_power", "relaxation_times"]


@dataclass(frozen=True)
class LayerPhysics:
    """Per-parameter constants of one pass direction, computed once per update.

    Attributes
    ----------
    conductance : Tensor, shape (n_free,)
        Total conductance G on each free node (0 for an isolated node).
    safe_conductance : Tensor, shape (n_free,)
        ``conductance`` with zeros replaced by 1, for division.
    effective_bias : Tensor, shape (n_free,)
        The constant part of the numerator, b_eff.
    source_pos : Tensor, shape (n_clamped,)
        Total positive-weight conductance on each clamped node.
    source_neg : Tensor, shape (n_clamped,)
        Total negative-weight conductance on each clamped node (to its inverted copy).
    bias_constant : Tensor, shape ()
        K = sum_j (|b_j|/g) u_j^2.
    offset : float
        The offset voltage c.
    """

    conductance: torch.Tensor
    safe_conductance: torch.Tensor
    effective_bias: torch.Tensor
    source_pos: torch.Tensor
    source_neg: torch.Tensor
    bias_constant: torch.Tensor
    offset: float


def layer_physics(W: torch.Tensor, bias: torch.Tensor, g: float, offset: float) -> LayerPhysics:
    """Constants of a pass whose free layer has bias ``bias`` and supply ``g``.

    Parameters
    ----------
    W : Tensor, shape (n_free, n_clamped)
        Weights oriented from the clamped layer to the free layer: ``model.W`` for the
        forward pass (hidden nodes free), ``model.W.T`` for the backward pass.
    bias : Tensor, shape (n_free,)
        Bias of the free layer.
    g : float
        Bias supply voltage of the free layer (g_h forward, g_v backward).
    offset : float
        Offset voltage c; inverted sources sit at ``c - x``.
    """
    abs_w = W.abs()
    abs_row = abs_w.sum(dim=1)
    row = W.sum(dim=1)
    abs_col = abs_w.sum(dim=0)
    col = W.sum(dim=0)
    abs_b = bias.abs()
    conductance = abs_row + abs_b / g
    effective_bias = bias + 0.5 * offset * ((abs_b - bias) / g + (abs_row - row))
    supply = torch.where(bias > 0, torch.full_like(bias, g), torch.full_like(bias, offset - g))
    bias_constant = (abs_b / g * supply.square()).sum()
    safe = torch.where(conductance > 0, conductance, torch.ones_like(conductance))
    return LayerPhysics(
        conductance=conductance,
        safe_conductance=safe,
        effective_bias=effective_bias,
        source_pos=0.5 * (abs_col + col),
        source_neg=0.5 * (abs_col - col),
        bias_constant=bias_constant,
        offset=float(offset),
    )


def free_voltages(numerator: torch.Tensor, phys: LayerPhysics) -> torch.Tensor:
    """Node voltages V = num / G of the free layer, given ``num = x @ W.T + b_eff``."""
    return numerator / phys.safe_conductance


def pass_power(clamped: torch.Tensor, numerator: torch.Tensor, phys: LayerPhysics) -> torch.Tensor:
    """Power dissipated by each sample's pass at its equilibrium, shape (batch,).

    Parameters
    ----------
    clamped : Tensor, shape (batch, n_clamped)
        Voltages of the clamped layer.
    numerator : Tensor, shape (batch, n_free)
        ``clamped @ W.T + effective_bias``, as computed for the node voltages.
    phys : LayerPhysics
        Constants of this pass direction.
    """
    c = phys.offset
    sources = clamped.square() @ phys.source_pos + (c - clamped).square() @ phys.source_neg
    stored = (numerator.square() / phys.safe_conductance).sum(dim=1)
    power = 0.5 * (sources + phys.bias_constant - stored)
    return power.clamp_min(0.0)


def relaxation_times(phys: LayerPhysics) -> torch.Tensor:
    """RC relaxation time 2 / G of each free node (node capacitance 2); inf if G = 0."""
    return 2.0 / phys.conductance
