"""Each comparator's empirical P(unit = 1) against its closed form, threshold sharing, determinism."""

import math

import numpy as np
import pytest
import torch
from scipy.special import expit
from scipy.stats import norm

import rkm

N_DRAWS = 20000


def closed_form(sampling, distribution, z):
    if sampling == "bernoulli":
        return expit(z)
    if distribution == "gaussian":
        return norm.cdf(z)
    return np.clip((1 + z) / 2, 0, 1)


def machine_with_known_inputs(sampling, distribution, beta, sharing="sample"):
    """A one-visible RKM whose hidden comparator inputs are fixed numbers."""
    n_hidden = 9
    model = rkm.RKM(
        "cmp", 1, n_hidden, sampling=sampling, distribution=distribution, model_beta=beta,
        layer_scaled=False, mytype=torch.float64, seed=11, threshold_sharing=sharing, device="cpu",
    )
    # hidden j: a unit conductance to v = 1 and a bias conductance G_b to the -g_h supply,
    # so its voltage is (1 - G_b / 2) / (1 + G_b) = target_j
    targets = torch.linspace(-0.4, 0.8, n_hidden, dtype=torch.float64)
    model.W = torch.ones(n_hidden, 1, dtype=torch.float64)
    model.h_bias = -0.5 * (1 - targets) / (targets + 0.5)
    return model, targets


@pytest.mark.parametrize(
    "sampling,distribution",
    [("bernoulli", "gaussian"), ("multi-threshold", "gaussian"), ("multi-threshold", "uniform"),
     ("single-threshold", "gaussian"), ("single-threshold", "uniform")],
)
@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_empirical_probability_matches_the_closed_form(sampling, distribution, beta):
    model, _ = machine_with_known_inputs(sampling, distribution, beta)
    v = torch.ones(N_DRAWS, 1, dtype=torch.float64)
    x = model.delta_eh(v)[0].numpy()
    p_model, h = model.v_to_h(v)
    expected = closed_form(sampling, distribution, beta * x)
    freq = h.numpy().mean(axis=0)
    bound = 5 * np.sqrt(expected * (1 - expected) / N_DRAWS) + 1e-9
    assert np.all(np.abs(freq - expected) <= bound), (freq, expected)
    np.testing.assert_allclose(p_model[0].numpy(), expected, atol=1e-12)


def test_voltages_of_the_test_machine_are_the_intended_ones():
    model, targets = machine_with_known_inputs("bernoulli", "gaussian", 1.0)
    x = model.delta_eh(torch.ones(1, 1, dtype=torch.float64))[0]
    np.testing.assert_allclose(x.numpy(), targets.numpy(), atol=1e-7)


def test_layer_scaling_multiplies_the_comparator_input():
    scaled = rkm.RKM("s", 20, 5, seed=0, mytype=torch.float64, device="cpu")
    plain = rkm.RKM("s", 20, 5, seed=0, mytype=torch.float64, layer_scaled=False, device="cpu")
    v = torch.randint(0, 2, (3, 20), generator=torch.Generator().manual_seed(0)).double()
    torch.testing.assert_close(scaled.delta_eh(v), 20 * plain.delta_eh(v))
    h = torch.randint(0, 2, (3, 5), generator=torch.Generator().manual_seed(1)).double()
    torch.testing.assert_close(scaled.delta_ev(h), 5 * plain.delta_ev(h))


def test_single_threshold_shares_one_threshold_per_sample_by_default():
    model, targets = machine_with_known_inputs("single-threshold", "gaussian", 1.0)
    v = torch.ones(2000, 1, dtype=torch.float64)
    _, h = model.v_to_h(v)
    h = h.numpy()
    # one threshold per row: a unit is on exactly when every unit with a larger input is on
    order = np.argsort(targets.numpy())
    rows = h[:, order]
    assert np.all(np.diff(rows, axis=1) >= 0)
    # different rows see different thresholds
    assert len({tuple(r) for r in rows}) > 3


def test_single_threshold_batch_sharing_reproduces_the_reference():
    model, _ = machine_with_known_inputs("single-threshold", "uniform", 1.0, sharing="batch")
    v = torch.ones(50, 1, dtype=torch.float64)
    _, h = model.v_to_h(v)
    assert torch.all(h == h[0])


def test_multi_threshold_draws_independent_thresholds():
    model, _ = machine_with_known_inputs("multi-threshold", "gaussian", 1.0)
    _, h = model.v_to_h(torch.ones(4000, 1, dtype=torch.float64))
    h = h.numpy()
    # independent units: the joint frequency of two middle units factorises
    a, b = h[:, 3], h[:, 5]
    assert abs((a * b).mean() - a.mean() * b.mean()) < 0.03


@pytest.mark.parametrize("beta", [1001.0, math.inf])
@pytest.mark.parametrize("sampling", ["bernoulli", "multi-threshold", "single-threshold"])
def test_deterministic_above_beta_1000(beta, sampling):
    model, targets = machine_with_known_inputs(sampling, "gaussian", 1.0)
    v = torch.ones(10, 1, dtype=torch.float64)
    p, h = model.v_to_h(v, beta=beta)
    expected = (targets > 0).double().expand(10, -1)
    torch.testing.assert_close(h, expected)
    torch.testing.assert_close(p, expected)
    dh, _ = model.Deterministic_v_to_h(v, beta)
    torch.testing.assert_close(dh, expected)


def test_bernoulli_methods_use_a_sigmoid_comparator():
    model, targets = machine_with_known_inputs("multi-threshold", "uniform", 1.0)
    v = torch.ones(N_DRAWS, 1, dtype=torch.float64)
    p, h = model.Bernoulli_v_to_h(v, 2.0)
    expected = expit(2.0 * targets.numpy())
    np.testing.assert_allclose(p[0].numpy(), expected, atol=1e-7)
    assert np.all(np.abs(h.numpy().mean(0) - expected) < 5 * np.sqrt(0.25 / N_DRAWS))
    pv, sv = model.Bernoulli_h_to_v(torch.ones(3, model.n_hidden, dtype=torch.float64), 1.0)
    assert pv.shape == sv.shape == (3, 1)


def test_rbm_conditionals_are_sigmoids_of_the_energy_difference():
    model = rkm.RBM("rbm", 6, 4, seed=0, mytype=torch.float64, device="cpu")
    v = torch.randint(0, 2, (5, 6), generator=torch.Generator().manual_seed(0)).double()
    p, _ = model.v_to_h(v)
    expected = expit(v.numpy() @ model.W.numpy().T + model.h_bias.numpy())
    np.testing.assert_allclose(p.numpy(), expected, atol=1e-12)
    torch.testing.assert_close(model.delta_eh(v), v @ model.W.T + model.h_bias)


def test_same_seed_same_samples_different_seed_different_samples():
    def draw(seed):
        model = rkm.RKM("r", 30, 12, seed=seed, sampling="multi-threshold", device="cpu")
        return model.generate(8, 5), model.W.clone()

    a, wa = draw(123)
    b, wb = draw(123)
    c, _ = draw(124)
    np.testing.assert_array_equal(a, b)
    torch.testing.assert_close(wa, wb)
    assert not np.array_equal(a, c)


def test_library_never_touches_global_rng_or_default_dtype():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    dtype = torch.get_default_dtype()
    model = rkm.RKM("g", 10, 4, mytype=torch.float64, device="cpu", seed=3, max_epochs=3)
    model.generate(3, 2)
    model.train(torch.ones(4, 10, dtype=torch.float64), save=False)
    assert torch.get_default_dtype() == dtype
    torch.testing.assert_close(torch.rand(3), expected)


def test_without_a_seed_the_model_takes_its_seed_from_torchs_global_generator():
    """As in pyrkm, torch.manual_seed makes a script that gives no seed reproducible; the seed is recorded."""
    seeds = []
    for _ in range(2):
        torch.manual_seed(42)
        seeds.append(rkm.RKM("g", 10, 4, device="cpu").seed)
    assert seeds[0] == seeds[1]
    assert rkm.RKM("g", 10, 4, device="cpu").seed != seeds[0]


def test_random_binary_units_are_fair_independent_and_seeded():
    from rkm.core.comparators import random_binary

    def draw(seed, shape=(1000, 781)):
        return random_binary(shape, torch.Generator().manual_seed(seed), torch.float64, "cpu")

    x = draw(0)
    assert x.shape == (1000, 781) and x.dtype == torch.float64
    assert set(torch.unique(x).tolist()) == {0.0, 1.0}
    n = x.numel()
    assert abs(float(x.mean()) - 0.5) < 5 * 0.5 / math.sqrt(n)
    # every bit position of the packed bytes (a stuck sign bit would show here), and every column
    columns = x.mean(dim=0)
    for position in range(8):
        share = float(columns[position::8].mean())
        assert abs(share - 0.5) < 5 * 0.5 / math.sqrt(n / 8)
    assert float((columns - 0.5).abs().max()) < 5 * 0.5 / math.sqrt(1000) + 0.02
    # neighbours within a row and within a byte are uncorrelated
    centred = x - 0.5
    assert abs(float((centred[:, 1:] * centred[:, :-1]).mean())) < 5 * 0.25 / math.sqrt(n)
    torch.testing.assert_close(draw(0), x)
    assert not torch.equal(draw(1), x)


@pytest.mark.parametrize("energy_type", ["RKM", "hopfield"])
def test_zero_and_finite_temperatures_in_a_pass(energy_type):
    model = rkm.RKM("m", 6, 4, seed=0, device="cpu", mytype=torch.float64, energy_type=energy_type)
    v = torch.randint(0, 2, (5, 6), generator=torch.Generator().manual_seed(0)).double()
    p, _ = model.v_to_h(v, beta=0)
    torch.testing.assert_close(p, torch.full_like(p, 0.5))
    p, _ = model.v_to_h(v, beta=2.5)
    torch.testing.assert_close(p, torch.sigmoid(2.5 * model.delta_eh(v)))
