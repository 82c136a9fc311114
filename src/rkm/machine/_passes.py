"""The seed methods of the passes and of the Boltzmann law, as mixins of :class:`rkm.machine.RBM`.

:class:`Passes`: samples and comparator inputs; :class:`Circuit`: power, relaxation times; :class:`Boltzmann`:
pyrkm's energy methods for ``energy_type='hopfield'``. Each method is a short delegate to the
model's :class:`~rkm.core.network.Network` or to :mod:`rkm.core.hopfield`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..core import _checks, comparators, hopfield, limits
from ..core.network import Network
from ..errors import ConfigError, DataError
from ..training import Trainer


class Passes:
    """The seed methods of the passes: samples, comparator inputs, power, relaxation times."""

    network: Network
    trainer: Trainer

    def __getattr__(self, name: str) -> Any:
        """Adam's moments ``m_dW``... as pyrkm names them; the settings are descriptors of :class:`RBM`."""
        if name.startswith(("m_d", "v_d")) and "trainer" in self.__dict__:
            moments = self.trainer.optimizer_named("Adam").state_dict()
            if name in moments:
                return moments[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


    # ---------------------------------------------------------------- inputs
    def _batch(self, x: Any, n: int, name: str) -> tuple[torch.Tensor, bool]:
        return _checks.batch(x, n, name, self.mytype, self.device)

    def _beta(self, beta: Any) -> float:
        return self.model_beta if beta is None else _checks.beta(beta)

    def _layer(self, x: Any, forward: bool, name: str) -> tuple[torch.Tensor, bool]:
        tensor, single = self._batch(x, self.n_visible if forward else self.n_hidden, name)
        self.network.physics()
        return tensor, single

    # ------------------------------------------------------------ the passes
    def v_to_h(self, v: Any, beta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the hidden layer given the visible layer.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        beta : float, optional
            Inverse temperature; default ``model_beta``.

        Returns
        -------
        p_h : Tensor, shape (N, n_hidden)
            P(h = 1 | v) of the comparator in closed form (the reference returned the
            analog voltage here for the threshold comparators).
        h : Tensor, shape (N, n_hidden)
            Binary sample.
        """
        return self._sample(v, True, beta, "v")

    def h_to_v(self, h: Any, beta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample the visible layer given the hidden layer (the mirror of :meth:`v_to_h`).

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)
        beta : float, optional
            Inverse temperature; default ``model_beta``.

        Returns
        -------
        p_v, v : Tensor, shape (N, n_visible)
            P(v = 1 | h) in closed form, and the binary sample.
        """
        return self._sample(h, False, beta, "h")

    def _sample(self, x: Any, forward: bool, beta: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        x, single = self._layer(x, forward, name)
        p, s, _ = self.network.pass_(x, forward, self._beta(beta))
        return (p[0], s[0]) if single else (p, s)

    def delta_eh(self, v: Any) -> torch.Tensor:
        """Comparator input of each hidden unit given ``v``, shape (N, n_hidden).

        For the RBM this is the energy change ``v @ W.T + h_bias`` of switching the unit
        on; for the RKM it is the node voltage (times ``n_visible`` if layer-scaled). With
        comparator offsets (``comparator_offset``) each unit's offset voltage is taken from it
        first: ``scale (V - V_os)``.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)

        Returns
        -------
        Tensor, shape (N, n_hidden)
        """
        return self._drive(v, True, "v")

    def delta_ev(self, h: Any) -> torch.Tensor:
        """Comparator input of each visible unit given ``h`` (the mirror of :meth:`delta_eh`).

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)

        Returns
        -------
        Tensor, shape (N, n_visible)
        """
        return self._drive(h, False, "h")

    def _drive(self, x: Any, forward: bool, name: str) -> torch.Tensor:
        x, single = self._layer(x, forward, name)
        out = self.network.drive(x, forward)[0]
        return out[0] if single else out

    def _bernoulli(self, x: torch.Tensor, beta: Any) -> tuple[torch.Tensor, torch.Tensor]:
        p = comparators.probability(comparators.Bernoulli(), x, _checks.beta(beta))
        u = torch.rand(x.shape, generator=self.generator, dtype=x.dtype, device=x.device)
        return p, (u < p).to(x.dtype)

    def Bernoulli_v_to_h(self, v: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden sample with a sigmoid (Bernoulli) comparator, whatever ``sampling`` is.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        beta : float
            Inverse temperature.

        Returns
        -------
        p_h, h : Tensor, shape (N, n_hidden)
            ``sigmoid(beta delta_eh(v))`` and the binary sample.
        """
        return self._bernoulli(self.delta_eh(v), beta)

    def Bernoulli_h_to_v(self, h: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Visible sample with a sigmoid (Bernoulli) comparator, whatever ``sampling`` is.

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)
        beta : float
            Inverse temperature.

        Returns
        -------
        p_v, v : Tensor, shape (N, n_visible)
            ``sigmoid(beta delta_ev(h))`` and the binary sample.
        """
        return self._bernoulli(self.delta_ev(h), beta)

    def Deterministic_v_to_h(self, v: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free hidden units ``[delta_eh(v) > 0]``.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        beta : float
            Ignored (pyrkm's signature).

        Returns
        -------
        h, h : Tensor, shape (N, n_hidden)
            The units twice, as probability and as sample (pyrkm's layout).
        """
        h = (self.delta_eh(v) > 0).to(self.mytype)
        return h, h

    def Deterministic_h_to_v(self, h: Any, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Noise-free visible units ``[delta_ev(h) > 0]``.

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)
        beta : float
            Ignored (pyrkm's signature).

        Returns
        -------
        v, v : Tensor, shape (N, n_visible)
            The units twice, as probability and as sample (pyrkm's layout).
        """
        v = (self.delta_ev(h) > 0).to(self.mytype)
        return v, v

    def _require_chain(self, what: str, rows: int, k: int, hint: str) -> None:
        limits.require_work(what, limits.sampling_work(rows, k, self.n_visible, self.n_hidden), hint,
                            names=("k", "n_samples"))

    def forward(self, v: Any, k: int, beta: float | None = None) -> torch.Tensor:
        """Run ``k`` Gibbs steps (v -> h -> v) from ``v``; ``k=0`` returns ``v`` (the reference raised).

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
        k : int
            Gibbs steps.
        beta : float, optional
            Inverse temperature; default ``model_beta``.

        Returns
        -------
        Tensor, shape (N, n_visible)
            The visible sample after ``k`` steps.
        """
        k = _checks.integer("k", k, minimum=0)
        v, single = self._layer(v, True, "v")
        self._require_chain(f"{len(v)} rows x k={k} Gibbs steps", len(v), k, "use fewer Gibbs steps `k` or fewer rows")
        out = self.network.gibbs(v, k, self._beta(beta))
        return out[0] if single else out

    def generate(self, n_samples: int, k: int, h_binarized: bool = True, from_visible: bool = True,
                 beta: float | None = None) -> np.ndarray:
        """Generate samples by Gibbs sampling from random noise.

        Parameters
        ----------
        n_samples : int
        k : int
            Gibbs steps.
        h_binarized : bool
            With ``from_visible=False``: start from binary (True) or uniform analog hiddens.
        from_visible : bool
            Start from random binary visibles (True) or from random hiddens.
        beta : float, optional

        Returns
        -------
        numpy.ndarray, shape (n_samples, n_visible)
        """
        n_samples = _checks.integer("n_samples", n_samples)
        k = _checks.integer("k", k, minimum=0)
        h_binarized = _checks.boolean("h_binarized", h_binarized)
        from_visible = _checks.boolean("from_visible", from_visible)
        beta = self._beta(beta)
        limits.require(f"generate(n_samples={n_samples})",
                       limits.sampling_bytes(n_samples, self.n_visible, self.n_hidden, self.mytype), self.device,
                       "generate fewer samples per call (n_samples)", names=("n_samples",))
        self._require_chain(f"n_samples={n_samples} samples x k={k} Gibbs steps", n_samples, k,
                            "use fewer Gibbs steps `k` or samples `n_samples`")
        net = self.network
        net.physics()
        if from_visible:
            v = net.random_visible(n_samples)
        else:
            h = net.random_hidden(n_samples) if h_binarized else torch.rand(
                (n_samples, self.n_hidden), generator=self.generator, dtype=self.mytype, device=self.device)
            v = net.pass_(h, False, beta).s
        return net.gibbs(v, k, beta).cpu().numpy()

    def reconstruct(self, data: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Reconstruct ``data`` after ``k`` Gibbs steps.

        Parameters
        ----------
        data : Tensor or array, shape (N, n_visible)
        k : int
            Gibbs steps.

        Returns
        -------
        data, reconstruction : numpy.ndarray, shape (N, n_visible)
        """
        data, _ = self._batch(data, self.n_visible, "data")
        return data.cpu().numpy(), self.forward(data, k).cpu().numpy()



class Circuit(Passes):
    """The seed methods of the circuit's physics: the power of a pass, the relaxation times."""

    def power_forward(self, v: Any) -> torch.Tensor:
        """Power dissipated by the forward pass (visible clamped), shape (N,).

        P = 1/2 sum over resistors of G dV^2 with the hidden nodes at their Kirchhoff
        voltages; always >= 0, for every offset.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)
            The clamped visible states.

        Returns
        -------
        Tensor, shape (N,)
            In code units; :func:`rkm.core.units.power_watts` converts to watts.
        """
        return self._power(v, True, "v")

    def power_backward(self, h: Any) -> torch.Tensor:
        """Power dissipated by the backward pass (hidden clamped); see :meth:`power_forward`.

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)
            The clamped hidden states.

        Returns
        -------
        Tensor, shape (N,)
        """
        return self._power(h, False, "h")

    def _power(self, x: Any, forward: bool, name: str) -> torch.Tensor:
        x, _ = self._layer(x, forward, name)
        return self.network.power(x, forward)

    def av_power_forward(self, v: Any) -> torch.Tensor:
        """Mean of :meth:`power_forward` over the batch.

        Parameters
        ----------
        v : Tensor or array, shape (N, n_visible)

        Returns
        -------
        Tensor, 0-d
        """
        return self.power_forward(v).mean()

    def av_power_backward(self, h: Any) -> torch.Tensor:
        """Mean of :meth:`power_backward` over the batch.

        Parameters
        ----------
        h : Tensor or array, shape (N, n_hidden)

        Returns
        -------
        Tensor, 0-d
        """
        return self.power_backward(h).mean()

    def relaxation_times(self) -> tuple[torch.Tensor, torch.Tensor]:
        """RC relaxation times ``2 / G`` of the free nodes of both passes, in code units.

        The reference docstring swaps the two shapes. An isolated node has an infinite time.

        Returns
        -------
        t_forward : Tensor, shape (n_hidden,)
            The hidden nodes' times in the forward pass.
        t_backward : Tensor, shape (n_visible,)
            The visible nodes' times in the backward pass.
        """
        return self.network.relaxation_times()


class Boltzmann(Circuit):
    """pyrkm's energy methods for ``energy_type='hopfield'``, as delegates to :mod:`rkm.core.hopfield`.

    They use the realised parameters, the ones every pass uses (the programmed ones for ideal devices).
    """

    def _hopfield_only(self, method: str) -> None:
        if self.energy_type != "hopfield":
            raise ConfigError(
                f"{method} is the Boltzmann law of energy_type='hopfield'; this model's energy_type is "
                f"{self.energy_type!r}, whose Gibbs chain has no energy function in general (see "
                "RBM.free_energy). Use v_to_h / h_to_v for its conditionals (they return P(unit = 1))."
            )

    def free_energy(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """Free energy ``F(v)`` of each row, shape (N,), so that ``P(v) ~ exp(-F(v))``.

        For ``energy_type='hopfield'`` this is pyrkm's value,
        ``-sum_j softplus(beta (W v + b)_j) - beta v_bias . v`` (``rkm.core.hopfield``).

        An RKM (``energy_type='RKM'``) has no free energy in general: its forward pass
        divides hidden unit j's weights by the node conductance ``G_j`` and its backward
        pass divides visible unit i's by ``G_i``, so the two conditionals are not those of
        one Boltzmann law and its distribution is only the Gibbs chain's stationary law
        (``rkm.evaluation.exact.stationary_distribution``). pyrkm returned the Hopfield value of the RKM's
        parameters, which is not that law; ``_free_energy_hopfield`` still computes it.

        Raises
        ------
        ConfigError
            For ``energy_type='RKM'``, or a non-finite ``beta``.
        """
        self._hopfield_only("free_energy")
        return self._free_energy_hopfield(v, beta)

    def _free_energy_hopfield(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """Free energy of the bilinear (Hopfield) energy with this model's parameters, shape (N,)."""
        v, single = self._batch(v, self.n_visible, "v")
        W, a, b = self.network.realised_parameters()
        out = hopfield.free_energy(v, W, a, b, self._beta(beta))
        return out[0] if single else out

    def _energy_hopfield(self, v: Any, h: Any) -> torch.Tensor:
        """Bilinear energy ``-h . (W v) - v_bias . v - h_bias . h`` of each row pair, shape (N,)."""
        v, single = self._batch(v, self.n_visible, "v")
        h, _ = self._batch(h, self.n_hidden, "h")
        if v.shape[0] != h.shape[0]:
            raise DataError(f"v and h must have the same batch size, got {v.shape[0]} and {h.shape[0]}.")
        out = hopfield.energy(v, h, *self.network.realised_parameters())
        return out[0] if single else out

    def _prob_h_given_v(self, v: Any, beta: float | None = None) -> torch.Tensor:
        """``P(h = 1 | v) = sigmoid(beta (v W^T + h_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_h_given_v")
        v, single = self._batch(v, self.n_visible, "v")
        W, _, b = self.network.realised_parameters()
        out = hopfield.prob_h_given_v(v, W, b, self._beta(beta))
        return out[0] if single else out

    def _prob_v_given_h(self, h: Any, beta: float | None = None) -> torch.Tensor:
        """``P(v = 1 | h) = sigmoid(beta (h W + v_bias))`` (``energy_type='hopfield'`` only)."""
        self._hopfield_only("_prob_v_given_h")
        h, single = self._batch(h, self.n_hidden, "h")
        W, a, _ = self.network.realised_parameters()
        out = hopfield.prob_v_given_h(h, W, a, self._beta(beta))
        return out[0] if single else out

