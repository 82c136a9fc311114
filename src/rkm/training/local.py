"""The local learning rule: every edge's update from what that edge sees in the two twin networks.

The RKM learns as a contrastive local learning network: a clamped twin holds the data phase, a
free twin runs the model chain, and every edge compares its own response in the two. After the
passes of an update each twin holds a state of the two layers, every unit's node at its
comparator's output voltage (``Network.voltages``). A weight edge between hidden node ``j``
(voltage ``y``) and its source terminal (voltage ``s``: visible node ``i`` at ``x`` when
``W_ji >= 0``, its inverted copy at ``c - x`` when ``W_ji < 0``) reads its squared voltage drop
``dV^2 = (y - s)^2`` and its two terminal voltages; with the offset ``c`` and which terminal it
is switched to, that gives (:func:`weight_statistic`)::

    direct terminal:    q = (y + s - dV^2) / 2
    inverted terminal:  q = (dV^2 - c^2 - (1 - 2c)(y + c - s)) / 2

both equal to ``x y`` plus ``+-(x(1 - x) + y(1 - y)) / 2``, so to ``v_i h_j`` for binary nodes
at exactly 0 and 1. A bias edge (node to a supply) reads its node's voltage. The rule is linear
in these readings, so an edge that averages them over its twin's samples gets the mean statistic;
the update of every edge is the clamped twin's mean statistic less the free twin's
(:func:`local_gradient`). The user guide's page "Learning on the circuit"
(``docs/learning-rule.md``) derives it.

Where the comparators' output levels are not exactly 0 and 1 (``comparator_levels``,
``comparator_level_spread``), the rule sees those voltages and no longer equals the products of
the binary decisions that the algorithmic rule (:class:`rkm.training.optim.Gradient`) forms;
nothing corrects that difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.network import Network
from .optim import Gradient

__all__ = ["LEARNING_RULES", "EdgeReadings", "weight_statistic", "bias_statistic", "readings", "local_gradient"]

LEARNING_RULES = ("algorithmic", "local")
"""The ``learning_rule`` settings: the contrastive statistics as products of the binary samples, or
each edge's rule from its own voltage drops and terminal voltages in the twins."""


def weight_statistic(sq_drop: torch.Tensor, node: torch.Tensor, source: torch.Tensor, inverted: torch.Tensor,
                     offset: float) -> torch.Tensor:
    """A weight edge's estimate of ``v_i h_j`` from what it reads, elementwise over any shape.

    Parameters
    ----------
    sq_drop : Tensor
        Squared voltage drop ``(V_node - V_source)^2`` across the edge.
    node : Tensor
        Voltage of the edge's hidden-node terminal.
    source : Tensor
        Voltage of its source terminal: the visible node (direct) or its inverted copy ``c - x``.
    inverted : Tensor of bool
        Whether the edge is switched to the inverted copy (its weight is negative).
    offset : float
        The offset voltage ``c`` of the inverted copies.

    Returns
    -------
    Tensor
        ``(node + source - sq_drop) / 2`` on direct edges, ``(sq_drop - c^2 - (1 - 2c)(node + c - source)) / 2``
        on inverted ones. Linear in ``sq_drop``, ``node`` and ``source``: given their means over
        a twin's samples it returns the mean statistic.
    """
    direct = (node + source - sq_drop) / 2
    crossed = (sq_drop - offset**2 - (1 - 2 * offset) * (node + offset - source)) / 2
    return torch.where(inverted, crossed, direct)


def bias_statistic(node: torch.Tensor) -> torch.Tensor:
    """A bias edge's estimate of its unit's state ``v_i`` or ``h_j``: the voltage of its node terminal.

    At the default supplies (``g_v = g_h = 1/2``) the drop across a bias edge is ``1/4`` whatever
    the unit does, so the edge reads its node terminal, which is the unit's state for binary nodes.

    Parameters
    ----------
    node : Tensor
        Voltage of the bias edge's node terminal (any shape).

    Returns
    -------
    Tensor
        ``node`` itself.
    """
    return node


@dataclass(frozen=True)
class EdgeReadings:
    """What every edge of one twin reads, averaged over the twin's samples.

    Attributes
    ----------
    sq_drop : Tensor, shape (n_hidden, n_visible)
        Mean squared voltage drop across each weight edge, between its hidden node and the
        terminal it is switched to.
    source : Tensor, shape (n_hidden, n_visible)
        Mean voltage of each weight edge's source terminal (``x_i`` or ``c - x_i``).
    hidden, visible : Tensor, shapes (n_hidden,), (n_visible,)
        Mean node voltages: the hidden terminal of the weight edges, the node terminal of the
        bias edges.
    """

    sq_drop: torch.Tensor
    source: torch.Tensor
    hidden: torch.Tensor
    visible: torch.Tensor


def readings(network: Network, v: torch.Tensor, h: torch.Tensor, inverted: torch.Tensor) -> EdgeReadings:
    """The mean readings of every edge of a twin holding the states ``v`` and ``h``.

    The node voltages are ``network.voltages`` of the states (the comparators' output levels).
    The means of the squared drops come from one matrix product, ``mean (y - s)^2 = mean y^2 +
    mean s^2 - 2 mean y s``, with nothing formed per sample and edge.

    Parameters
    ----------
    network : rkm.core.network.Network
        The network both twins copy (its conductances, offset and comparator levels).
    v : Tensor, shape (N, n_visible)
        The twin's visible states (0/1).
    h : Tensor, shape (N, n_hidden)
        The twin's hidden states (0/1).
    inverted : Tensor of bool, shape (n_hidden, n_visible)
        Which weight edges are switched to the inverted copies.

    Returns
    -------
    EdgeReadings
        The readings averaged over the ``N`` samples.
    """
    x, y = network.voltages(v, True), network.voltages(h, False)
    c, n = network.offset, v.shape[0]
    mean_x, mean_y = x.mean(dim=0), y.mean(dim=0)
    mean_xx, mean_yy = (x * x).mean(dim=0), (y * y).mean(dim=0)
    mean_xy = (y.t() @ x).div_(n)
    # direct: s = x;  inverted: s = c - x, so mean s^2 = c^2 - 2c mean x + mean x^2 and mean y s = c mean y - mean xy
    source = torch.where(inverted, c - mean_x, mean_x)
    sq_source = torch.where(inverted, c * c - 2 * c * mean_x + mean_xx, mean_xx)
    cross = torch.where(inverted, c * mean_y.unsqueeze(1) - mean_xy, mean_xy)
    sq_drop = sq_source.add_(mean_yy.unsqueeze(1)).sub_(cross, alpha=2.0)
    return EdgeReadings(sq_drop=sq_drop, source=source, hidden=mean_y, visible=mean_x)


def local_gradient(network: Network, v_data: torch.Tensor, h_data: torch.Tensor, v_model: torch.Tensor,
                   h_model: torch.Tensor, offsets: tuple[torch.Tensor, torch.Tensor] | None) -> Gradient:
    """The update every edge computes from its own readings: the clamped twin's statistic less the free twin's.

    An edge is switched to the inverted copy where its programmed weight has its sign bit set
    (as the devices realise it). With centering offsets ``(ov, oh)`` the weight direction is the
    centred one, ``dW - oh dv^T - dh ov^T`` (the bias directions are then corrected by the
    ``Centering`` transform, as for the algorithmic rule).

    Parameters
    ----------
    network : rkm.core.network.Network
        The network both twins copy.
    v_data, h_data : Tensor, shapes (N, n_visible), (N, n_hidden)
        The clamped twin's states: the data batch and the hidden units it drove.
    v_model, h_model : Tensor, shapes (M, n_visible), (M, n_hidden)
        The free twin's states: the negative phase's chains.
    offsets : (Tensor, Tensor) or None
        The centering offsets ``(ov, oh)``, or None without centering.

    Returns
    -------
    rkm.training.optim.Gradient
        The directions of ``W``, ``v_bias`` and ``h_bias``, as the algorithmic rule's gradient.
    """
    inverted = torch.signbit(network.W)
    c = network.offset
    data, model = readings(network, v_data, h_data, inverted), readings(network, v_model, h_model, inverted)
    dW = weight_statistic(data.sq_drop, data.hidden.unsqueeze(1), data.source, inverted, c)
    dW.sub_(weight_statistic(model.sq_drop, model.hidden.unsqueeze(1), model.source, inverted, c))
    dv = bias_statistic(data.visible) - bias_statistic(model.visible)
    dh = bias_statistic(data.hidden) - bias_statistic(model.hidden)
    if offsets is not None:
        ov, oh = offsets
        dW.sub_(torch.outer(oh, dv)).sub_(torch.outer(dh, ov))
    return Gradient.given(dW, dv, dh)
