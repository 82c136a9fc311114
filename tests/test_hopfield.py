"""The Boltzmann energy of the RBM against sums over every state, pyrkm's values, and the RKM's lack of one."""

import itertools

import numpy as np
import pytest
import torch

import rkm
from rkm.core import hopfield
from rkm.errors import ConfigError


def all_states(n):
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def small_rbm(seed=0, n_visible=4, n_hidden=3):
    model = rkm.RBM("h", n_visible, n_hidden, mytype=torch.float64, seed=seed, device="cpu")
    g = torch.Generator().manual_seed(seed)
    model.W = torch.randn(n_hidden, n_visible, generator=g, dtype=torch.float64)
    model.v_bias = torch.randn(n_visible, generator=g, dtype=torch.float64)
    model.h_bias = torch.randn(n_hidden, generator=g, dtype=torch.float64)
    return model


def energy_by_sums(model, v, h):
    """E(v, h) = -sum_ji W_ji h_j v_i - sum_i a_i v_i - sum_j b_j h_j, term by term."""
    W, a, b = model.W, model.v_bias, model.h_bias
    return -sum(W[j, i] * h[j] * v[i] for j in range(len(h)) for i in range(len(v))) - (a * v).sum() - (b * h).sum()


def test_energy_is_the_bilinear_sum():
    model = small_rbm()
    vs, hs = all_states(4), all_states(3)
    for v in vs[::3]:
        for h in hs:
            assert float(model._energy_hopfield(v, h)) == pytest.approx(float(energy_by_sums(model, v, h)), abs=1e-12)


@pytest.mark.parametrize("beta", [1.0, 0.3, 2.5])
def test_free_energy_is_minus_log_of_the_boltzmann_sum_over_hidden_states(beta):
    model = small_rbm(1)
    vs, hs = all_states(4), all_states(3)
    for v in vs:
        z = sum(torch.exp(-beta * energy_by_sums(model, v, h)) for h in hs)
        assert float(model.free_energy(v, beta=beta)) == pytest.approx(float(-torch.log(z)), abs=1e-10)
    # a batch gives one value per row, the model's beta by default
    assert model.free_energy(vs).shape == (16,)
    torch.testing.assert_close(model.free_energy(vs), model.free_energy(vs, beta=model.model_beta))


def test_conditionals_are_ratios_of_boltzmann_weights():
    model = small_rbm(2)
    beta = 0.7
    vs, hs = all_states(4), all_states(3)
    weights = torch.stack([torch.stack([torch.exp(-beta * energy_by_sums(model, v, h)) for h in hs]) for v in vs])
    p_h = (weights[:, :, None] * hs[None]).sum(1) / weights.sum(1, keepdim=True)  # P(h_j = 1 | v)
    p_v = (weights[:, :, None] * vs[:, None, :]).sum(0) / weights.sum(0)[:, None]  # P(v_i = 1 | h)
    torch.testing.assert_close(model._prob_h_given_v(vs, beta), p_h, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(model._prob_v_given_h(hs, beta), p_v, rtol=1e-10, atol=1e-12)


def test_pseudo_likelihood_is_the_sum_of_exact_pixel_conditionals():
    model = small_rbm(3, n_visible=5)
    beta = 1.3
    vs = all_states(5)
    marginal = torch.exp(-model.free_energy(vs, beta=beta))  # unnormalised P(v)
    index = {tuple(v.tolist()): k for k, v in enumerate(vs)}
    expected = torch.zeros(len(vs), dtype=torch.float64)
    for k, v in enumerate(vs):
        for i in range(5):
            w = v.clone()
            w[i] = 1 - w[i]
            expected[k] += torch.log(marginal[k] / (marginal[k] + marginal[index[tuple(w.tolist())]]))
    got = hopfield.pseudo_log_likelihood(vs, model.W, model.v_bias, model.h_bias, beta)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_pixel_conditionals_do_not_depend_on_the_chunking(monkeypatch):
    model = small_rbm(4, n_visible=6, n_hidden=5)
    v = (torch.rand(9, 6, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    whole = hopfield.pixel_log_conditionals(v, model.W, model.v_bias, model.h_bias)
    monkeypatch.setattr(hopfield, "_CHUNK_ELEMENTS", 60)  # two rows per block
    torch.testing.assert_close(hopfield.pixel_log_conditionals(v, model.W, model.v_bias, model.h_bias), whole)


def test_free_energy_stays_finite_where_log_one_plus_exp_overflows():
    model = rkm.RBM("h", 2, 1, device="cpu", seed=0)
    model.W, model.v_bias, model.h_bias = torch.full((1, 2), 9.0), torch.zeros(2), torch.zeros(1)
    # float32: log(1 + exp(90)) is inf; the free energy is -90 (softplus(90) = 90)
    assert float(model.free_energy(torch.ones(2), beta=5.0)) == pytest.approx(-90.0)


def test_free_energy_needs_a_finite_beta_and_a_hopfield_model():
    model = small_rbm()
    with pytest.raises(ConfigError, match="finite"):
        model.free_energy(torch.ones(4), beta=float("inf"))
    assert torch.equal(model._prob_h_given_v(torch.ones(1, 4), float("inf")),
                       (torch.ones(1, 4, dtype=torch.float64) @ model.W.t() + model.h_bias > 0).double())
    machine = rkm.RKM("k", 4, 3, seed=0, device="cpu")
    for method, arg in (("free_energy", torch.ones(4)), ("_prob_h_given_v", torch.ones(4)), ("_prob_v_given_h", torch.ones(3))):
        with pytest.raises(ConfigError, match="no energy function"):
            getattr(machine, method)(arg)
    # the explicitly Hopfield helpers still give the bilinear values of the RKM's parameters
    assert machine._free_energy_hopfield(torch.ones(4)).shape == ()


def test_the_rkm_conditionals_are_not_those_of_any_joint_law():
    """P(h|v)/P(v|h) must factor as f(h)/g(v) for a joint law to exist; the cross-ratio tests it."""

    def cross_ratios(model):
        vs, hs = all_states(model.n_visible), all_states(model.n_hidden)
        p_h = model.v_to_h(vs)[0]  # (V, n_hidden)
        p_v = model.h_to_v(hs)[0]  # (H, n_visible)
        log_h = (hs[None] * torch.log(p_h[:, None]) + (1 - hs[None]) * torch.log1p(-p_h[:, None])).sum(-1)  # [v, h]
        log_v = (vs[:, None] * torch.log(p_v[None]) + (1 - vs[:, None]) * torch.log1p(-p_v[None])).sum(-1)  # [v, h]
        r = log_h - log_v
        return r[1:, 1:] - r[1:, :1] - r[:1, 1:] + r[:1, :1]  # log of R(v,h) R(0,0) / (R(v,0) R(0,h))

    rbm = small_rbm(5, 3, 2)
    assert torch.allclose(cross_ratios(rbm), torch.zeros(1, dtype=torch.float64), atol=1e-9)
    machine = rkm.RKM("k", 3, 2, mytype=torch.float64, seed=5, device="cpu")
    machine.W, machine.v_bias, machine.h_bias = rbm.W, rbm.v_bias, rbm.h_bias
    assert cross_ratios(machine).abs().max() > 0.1


def test_hopfield_values_are_pyrkms(pyrkm_model):
    reference = pyrkm_model("RBM", "ref", 6, 4)
    model = rkm.RBM("ours", 6, 4, seed=0, device="cpu")
    g = torch.Generator().manual_seed(7)
    W, a, b = torch.randn(4, 6, generator=g), torch.randn(6, generator=g), torch.randn(4, generator=g)
    reference.W, reference.W_t, reference.v_bias, reference.h_bias = W, W.t(), a, b
    model.W, model.v_bias, model.h_bias = W, a, b
    v = (torch.rand(5, 6, generator=g) > 0.5).float()
    h = (torch.rand(5, 4, generator=g) > 0.5).float()
    for beta in (None, 0.5, 2.0):
        torch.testing.assert_close(model.free_energy(v, beta), reference.free_energy(v, beta))
        torch.testing.assert_close(model._free_energy_hopfield(v, beta), reference._free_energy_hopfield(v, beta))
        torch.testing.assert_close(model._prob_h_given_v(v, beta), reference._prob_h_given_v(v, beta))
        torch.testing.assert_close(model._prob_v_given_h(h, beta), reference._prob_v_given_h(h, beta))
    torch.testing.assert_close(model._energy_hopfield(v, h), reference._energy_hopfield(v, h))
    assert np.isfinite(model.free_energy(v).numpy()).all()
