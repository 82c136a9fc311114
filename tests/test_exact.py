"""rkm.evaluation.exact: the stationary law of the Gibbs chain, held to the Boltzmann law (enumerated
independently from the joint) and to long Monte Carlo runs of the model's own sampler."""

import math

import numpy as np
import pytest
import torch

import rkm
from rkm.evaluation import exact


def _model(nv, nh, energy_type="RKM", seed=5, **settings):
    model = rkm.RBM("m", nv, nh, energy_type=energy_type, seed=3, device="cpu", mytype=torch.float64, **settings)
    g = torch.Generator().manual_seed(seed)
    model.W = torch.randn(nh, nv, generator=g, dtype=torch.float64)
    model.v_bias = 0.5 * torch.randn(nv, generator=g, dtype=torch.float64)
    model.h_bias = 0.5 * torch.randn(nh, generator=g, dtype=torch.float64)
    return model


def _joint_marginal(model, beta):
    """P(v) ~ sum_h exp(-beta E(v, h)) by brute force over the joint, E = -h W v - a v - b h."""
    W, a, b = (t.double() for t in model.network.realised_parameters())
    nv, nh = model.n_visible, model.n_hidden
    weights = np.zeros(2**nv)
    for s in range(2**nv):
        v = torch.tensor([(s >> i) & 1 for i in range(nv)], dtype=torch.float64)
        for t in range(2**nh):
            h = torch.tensor([(t >> j) & 1 for j in range(nh)], dtype=torch.float64)
            weights[s] += math.exp(beta * float(h @ W @ v + a @ v + b @ h))
    return weights / weights.sum(), math.log(weights.sum())


@pytest.mark.parametrize("shape", [(4, 3), (3, 5)])
@pytest.mark.parametrize("beta", [None, 0.6])
def test_the_stationary_law_of_a_hopfield_rbm_is_its_boltzmann_marginal(shape, beta):
    model = _model(*shape, energy_type="hopfield")
    marginal, log_z = _joint_marginal(model, 1.0 if beta is None else beta)
    np.testing.assert_allclose(exact.stationary_distribution(model, beta), marginal, rtol=0, atol=1e-10)
    assert exact.log_partition(model, beta) == pytest.approx(log_z, abs=1e-10)
    data = exact.states(shape[0])[[1, 2, 2, 7]]
    expected = np.log(marginal[[1, 2, 2, 7]]).mean()
    assert exact.log_likelihood(model, data, beta) == pytest.approx(expected, abs=1e-10)


def test_the_states_are_indexed_with_unit_0_as_the_least_significant_bit():
    s = exact.states(3)
    assert s[6].tolist() == [0.0, 1.0, 1.0]
    assert exact.index_of(s).tolist() == list(range(8))


N_CHAINS, STEPS = 100_000, 30

CASES = {
    "bernoulli, offset and supplies": ((4, 3), dict(offset=0.4, g_v=0.7, g_h=0.3)),
    "bernoulli unscaled, beta 3": ((3, 5), dict(layer_scaled=False, model_beta=3.0)),
    "multi-threshold gaussian": ((4, 3), dict(sampling="multi-threshold")),
    "multi-threshold uniform": ((3, 5), dict(sampling="multi-threshold", distribution="uniform")),
    "single-threshold gaussian": ((4, 3), dict(sampling="single-threshold")),
    "single-threshold uniform": ((3, 5), dict(sampling="single-threshold", distribution="uniform")),
    "device non-idealities": ((4, 3), dict(conductance_range=(0.05, 2.0), conductance_levels=8, variability=0.3,
                                           comparator_offset=0.1)),
    "hopfield, single-threshold": ((4, 3), dict(energy_type="hopfield", sampling="single-threshold")),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_stationary_law_agrees_with_a_long_run_of_the_models_own_sampler(case):
    shape, settings = CASES[case]
    model = _model(*shape, **settings)
    pi = exact.stationary_distribution(model)
    assert pi.dtype == np.float64 and pi.sum() == pytest.approx(1.0, abs=1e-12)
    v = model.forward(model.network.random_visible(N_CHAINS), STEPS)
    empirical = np.bincount(exact.index_of(v).numpy(), minlength=len(pi)) / N_CHAINS
    tv = 0.5 * np.abs(pi - empirical).sum()
    # E[TV] <= 1/2 sum sqrt(pi (1 - pi) / N); McDiarmid adds sqrt(log(1/delta) / 2N) at delta = 1e-6
    bound = 0.5 * np.sqrt(pi * (1 - pi) / N_CHAINS).sum() + math.sqrt(math.log(1e6) / (2 * N_CHAINS))
    assert tv < bound
    # the tolerance catches a real error: the law of a 15% hotter or colder chain lies outside it
    wrong = exact.stationary_distribution(model, beta=1.15 * model.model_beta)
    assert 0.5 * np.abs(wrong - empirical).sum() > 2 * bound


def test_batch_threshold_sharing_is_the_law_of_one_chain():
    single = _model(4, 3, sampling="single-threshold")
    batch = _model(4, 3, sampling="single-threshold", threshold_sharing="batch")
    np.testing.assert_array_equal(exact.stationary_distribution(single), exact.stationary_distribution(batch))


def test_the_rkm_log_likelihood_and_kl_come_from_the_stationary_law():
    model = _model(4, 3)
    pi = exact.stationary_distribution(model)
    data = exact.states(4)[[0, 0, 3, 9]]
    assert exact.log_likelihood(model, data) == pytest.approx(np.log(pi[[0, 0, 3, 9]]).mean(), abs=1e-12)
    q = np.array([0.5, 0.25, 0.25])
    kl = float((q * np.log(q / pi[[0, 3, 9]])).sum())
    assert exact.kl_divergence(model, data) == pytest.approx(kl, abs=1e-12)


def test_kl_of_independent_units_against_a_hand_computed_value():
    model = rkm.RBM("m", 2, 2, seed=0, device="cpu", mytype=torch.float64)
    model.W = torch.zeros(2, 2, dtype=torch.float64)
    model.v_bias = torch.tensor([0.0, math.log(3.0)], dtype=torch.float64)  # P(v0 = 1) = 1/2, P(v1 = 1) = 3/4
    data = [[1, 1], [1, 1], [0, 1], [0, 0]]
    p = {(1, 1): 3 / 8, (0, 1): 3 / 8, (0, 0): 1 / 8}
    q = {(1, 1): 1 / 2, (0, 1): 1 / 4, (0, 0): 1 / 4}
    expected = sum(q[s] * math.log(q[s] / p[s]) for s in q)
    assert exact.kl_divergence(model, data) == pytest.approx(expected, abs=1e-12)


def test_sizes_beyond_the_limits_are_refused_with_the_limits():
    with pytest.raises(rkm.ConfigError, match="n_visible <= 16, n_hidden <= 16 and the smaller layer at most 12"):
        exact.stationary_distribution(rkm.RKM("m", 17, 3, device="cpu"))
    with pytest.raises(rkm.ConfigError, match="smaller layer at most 12"):
        exact.stationary_distribution(rkm.RKM("m", 13, 13, device="cpu"))
    with pytest.raises(rkm.ConfigError, match="at most 25 units"):
        exact.log_partition(rkm.RBM("m", 26, 26, device="cpu"))
    with pytest.raises(rkm.ConfigError, match="no energy function"):
        exact.log_partition(rkm.RKM("m", 4, 3, device="cpu"))


def test_a_chain_with_several_stationary_laws_is_refused():
    model = rkm.RBM("m", 3, 2, seed=0, device="cpu", mytype=torch.float64)
    model.W = torch.full((2, 3), 4.0, dtype=torch.float64)
    model.v_bias = torch.full((3,), -6.0, dtype=torch.float64)
    model.h_bias = torch.full((2,), -6.0, dtype=torch.float64)  # all off and all on are both fixed points
    with pytest.raises(rkm.DataError, match="2 closed classes"):
        exact.stationary_distribution(model, beta=float("inf"))


@pytest.mark.parametrize("data, match", [([[0, 1, 1]], r"shape \(batch, 4\)"), ([[0, 1, 0.5, 1]], "0/1"),
                                         ([[0, 1, 2, 1]], "0/1"), ([[0, 1, float("nan"), 1]], "NaN")])
def test_bad_data_is_a_data_error(data, match):
    model = _model(4, 3)
    for function in (exact.log_likelihood, exact.kl_divergence):
        with pytest.raises(rkm.DataError, match=match):
            function(model, data)
