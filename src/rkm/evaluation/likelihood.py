"""Which likelihood applies to a model, and its values: exact, AIS, or none and why.

:func:`report` is what ``rkm evaluate RUN --log-likelihood`` prints:

* ``energy_type='hopfield'`` with the bernoulli comparator (noisy units): the chain samples the
  Boltzmann law, ``log p(v) = -F(v) - log Z``; ``log Z`` is enumerated over the smaller layer up
  to :data:`ENUMERATE_UP_TO` units (:func:`rkm.evaluation.exact.log_partition`), estimated by AIS beyond
  (:func:`rkm.evaluation.ais.log_partition`, base rates from the training data), with its interval;
* any other model within the limits of :func:`rkm.evaluation.exact.stationary_distribution`: the Gibbs
  chain's exact stationary law;
* otherwise no likelihood applies, and the report says why (an RKM has no energy function, so
  its law is only the chain's stationary law, which is computable for small machines only).

The exact KL(training data || model) is added where ``n_visible <= 16``.
"""

from __future__ import annotations

from typing import Any

import torch

from ..core import hopfield
from . import ais, exact

__all__ = ["ENUMERATE_UP_TO", "report"]

ENUMERATE_UP_TO = 20
"""Largest smaller layer whose log Z the report enumerates (2^20 x 784 softplus terms: about 40 s on
one core); AIS is faster beyond."""


def _why_none(model: Any) -> str:
    size = (f"rkm.evaluation.exact computes it for n_visible <= {exact.MAX_UNITS}, n_hidden <= {exact.MAX_UNITS} "
            f"with the smaller layer at most {exact.MAX_SMALLER} units; this model is "
            f"{model.n_visible} x {model.n_hidden}")
    if model.energy_type != "hopfield":
        return ("no likelihood applies: an RKM's Gibbs chain has no energy function (its forward and backward passes "
                "divide the weights by different node conductances), so its distribution is only the chain's "
                f"stationary law, and {size}")
    return (f"no likelihood applies: with the {model.sampling} comparator (or deterministic units) the chain does not "
            f"sample the Boltzmann law whose log Z AIS estimates; its law is the chain's stationary law, and {size}")


def report(model: Any, train: Any, test: Any, *, n_chains: int = 100, n_betas: int = 10000,
           seed: int = 0) -> dict[str, Any]:
    """The log-likelihood of ``train`` and ``test`` (mean log p(v), nats) by the method that applies.

    Returns a dict with ``likelihood_method`` (``'exact stationary law'``, ``'exact log Z'``,
    ``'AIS'`` or ``'none'``) and, by method, ``log_likelihood_train``, ``log_likelihood_test``,
    ``log_z``, the AIS interval (``log_z_low``, ``log_z_high``, ``log_likelihood_test_low``,
    ``log_likelihood_test_high``), ``kl_train`` (n_visible <= 16) or ``likelihood_note``.
    """
    beta = float(model.model_beta)
    out: dict[str, Any] = {}
    rows = {name: exact.binary_rows(model, data) for name, data in (("train", train), ("test", test))}
    if exact.samples_boltzmann(model, beta):
        W, a, b = exact.boltzmann_parameters(model)
        minus_f = {name: float(-hopfield.free_energy(v, W, a, b, beta).mean()) for name, v in rows.items()}
        if min(model.n_visible, model.n_hidden) <= ENUMERATE_UP_TO:
            out["likelihood_method"] = "exact log Z"
            out["log_z"] = exact.log_partition(model)
        else:
            estimate = ais.log_partition(model, n_chains, n_betas, data=train, seed=seed)
            out.update(likelihood_method="AIS", log_z=estimate.log_z, log_z_low=estimate.low,
                       log_z_high=estimate.high, ais_chains=n_chains, ais_betas=n_betas)
        for name, value in minus_f.items():
            out[f"log_likelihood_{name}"] = value - out["log_z"]
        if out["likelihood_method"] == "AIS":
            out["log_likelihood_test_low"] = minus_f["test"] - out["log_z_high"]
            out["log_likelihood_test_high"] = minus_f["test"] - out["log_z_low"]
    elif exact.chain_within_limits(model):
        pi = torch.from_numpy(exact.stationary_distribution(model))
        out["likelihood_method"] = "exact stationary law"
        for name, v in rows.items():
            out[f"log_likelihood_{name}"] = float(pi[exact.index_of(v)].log().mean())
    else:
        return {"likelihood_method": "none", "likelihood_note": _why_none(model)}
    if model.n_visible <= exact.MAX_UNITS:
        out["kl_train"] = exact.kl_from_log_likelihood(model, rows["train"], out["log_likelihood_train"])
    return out

