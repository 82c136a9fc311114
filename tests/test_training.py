"""Training: learning on bars and stripes, the update rule by hand, energy accounting, data inputs."""

import numpy as np
import pytest
import torch

import rkm
from rkm.circuits.netlist import solve_pass
from rkm.evaluation.metrics import reconstruction_error
from rkm.io.datasets import bars_and_stripes

BAS = torch.tensor(bars_and_stripes(4))
ALGO_SETTINGS = {"CD": 1, "PCD": 3, "RDM": 3, "vRDM": 3, "hRDM": 1}


def fit(algo, optimizer, sampling="bernoulli", updates=1500, seed=0):
    lr = 0.05 if optimizer == "SGD" else 0.01
    model = rkm.RKM(
        "bas", 16, 32, k=ALGO_SETTINGS[algo], lr=lr, max_epochs=updates, batch_size=16, train_algo=algo,
        optimizer=optimizer, sampling=sampling, seed=seed, device="cpu",
    )
    start = reconstruction_error(model, BAS)
    model.train(BAS, save=False, print_every=10**9)
    return model, start, reconstruction_error(model, BAS)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
@pytest.mark.parametrize("algo", list(ALGO_SETTINGS))
def test_every_algorithm_learns_bars_and_stripes(algo, optimizer):
    model, start, end = fit(algo, optimizer)
    assert start > 0.4
    assert end < 0.6 * start, (start, end)
    assert model.epoch == 1500


def test_multi_threshold_rkm_learns():
    _, start, end = fit("vRDM", "SGD", sampling="multi-threshold")
    assert end < 0.6 * start, (start, end)


def test_training_stops_exactly_at_max_epochs():
    model = rkm.RKM("m", 16, 8, max_epochs=37, batch_size=5, seed=0, device="cpu")
    model.train(BAS, save=False)
    assert model.epoch == 37
    model.max_epochs = 40
    model.train(BAS, save=False)
    assert model.epoch == 40


def test_data_loader_iterables_and_arrays_are_accepted():
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(BAS), batch_size=6, shuffle=False)
    for data in (loader, [BAS[:10], BAS[10:]], BAS.numpy(), BAS):
        model = rkm.RKM("m", 16, 8, max_epochs=7, batch_size=6, seed=0, device="cpu")
        model.train(data, save=False)
        assert model.epoch == 7


def test_bad_training_data_is_a_clear_error():
    model = rkm.RKM("m", 16, 8, max_epochs=3, seed=0, device="cpu")
    with pytest.raises(rkm.DataError, match=r"\(batch, 16\)"):
        model.train(torch.ones(4, 15), save=False)
    with pytest.raises(rkm.DataError, match="no batches"):
        model.train(iter([]), save=False)
    with pytest.raises(rkm.DataError, match="test_data"):
        model.train(BAS, print_test_error=True, save=False)


# ----------------------------------------------------------- the rule by hand
def hand_update(model, v_d, h_d, v_m, h_m, *, l1=0.0, l2=0.0, ov=0.0, oh=0.0):
    """The learning rule from per-sample outer products, in NumPy."""
    W, a, b = model.W.numpy().copy(), model.v_bias.numpy().copy(), model.h_bias.numpy().copy()
    pos = sum(np.outer(h - oh, v - ov) for v, h in zip(v_d, h_d)) / len(v_d)
    neg = sum(np.outer(h - oh, v - ov) for v, h in zip(v_m, h_m)) / len(v_m)
    dW = pos - neg
    da = v_d.mean(0) - v_m.mean(0)
    db = h_d.mean(0) - h_m.mean(0)
    if np.ndim(oh):
        da = da - oh @ dW
        db = db - dW @ ov
    grads = [dW, da, db]
    for i, p in enumerate((W, a, b)):
        grads[i] = grads[i] - 2 * l2 * p - l1 * np.sign(p)
    return grads


def binary(n, m, seed):
    return np.random.default_rng(seed).integers(0, 2, (n, m)).astype(np.float64)


@pytest.mark.parametrize("regularization,l1,l2", [(False, 0, 0), ("l2", 0, 0.01), ("l1", 0.003, 0), (True, 0.002, 0.01)])
def test_sgd_update_is_the_learning_rule(regularization, l1, l2):
    model = rkm.RKM(
        "m", 6, 4, lr=0.1, regularization=regularization, l1_factor=l1, l2_factor=l2, seed=1,
        mytype=torch.float64, device="cpu",
    )
    v_d, h_d, v_m, h_m = binary(5, 6, 0), binary(5, 4, 1), binary(7, 6, 2), binary(7, 4, 3)
    dW, da, db = hand_update(model, v_d, h_d, v_m, h_m, l1=l1, l2=l2)
    W0, a0, b0 = model.W.numpy().copy(), model.v_bias.numpy().copy(), model.h_bias.numpy().copy()
    data = model.derivatives(v_d, h_d)
    mod = model.derivatives(v_m, h_m)
    model.SGD_update(data[0], mod[0], data[1], mod[1], data[2], mod[2])
    np.testing.assert_allclose(model.W.numpy(), W0 + 0.1 * dW, atol=1e-12)
    np.testing.assert_allclose(model.v_bias.numpy(), a0 + 0.1 * da, atol=1e-12)
    np.testing.assert_allclose(model.h_bias.numpy(), b0 + 0.1 * db, atol=1e-12)


def test_adam_update_is_bias_corrected_adam_on_the_learning_rule():
    model = rkm.RKM("m", 6, 4, lr=0.05, optimizer="Adam", regularization="l2", l2_factor=0.01, seed=1,
                    mytype=torch.float64, device="cpu")
    W = model.W.numpy().copy()
    m = np.zeros_like(W)
    s = np.zeros_like(W)
    for t in (1, 2, 3):
        v_d, h_d, v_m, h_m = binary(5, 6, t), binary(5, 4, t + 10), binary(5, 6, t + 20), binary(5, 4, t + 30)
        g = hand_update(model, v_d, h_d, v_m, h_m, l2=0.01)[0]
        m = 0.9 * m + 0.1 * g
        s = 0.999 * s + 0.001 * g**2
        W = W + 0.05 * (m / (1 - 0.9**t)) / (np.sqrt(s / (1 - 0.999**t)) + 1e-8)
        data, mod = model.derivatives(v_d, h_d), model.derivatives(v_m, h_m)
        model.Adam_update(t, data[0], mod[0], data[1], mod[1], data[2], mod[2])
        np.testing.assert_allclose(model.W.numpy(), W, atol=1e-12)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_l2_shrinks_weights_when_data_and_model_agree(optimizer):
    model = rkm.RKM("m", 6, 4, lr=0.01, optimizer=optimizer, regularization="l2", l2_factor=0.1, seed=2, device="cpu")
    model.W = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    before = model.W.abs().clone()
    v, h = torch.ones(3, 6), torch.ones(3, 4)
    d = model.derivatives(v, h)
    for t in range(1, 4):
        model.Adam_update(t, *[d[0], d[0], d[1], d[1], d[2], d[2]]) if optimizer == "Adam" else model.SGD_update(
            d[0], d[0], d[1], d[1], d[2], d[2]
        )
    assert (model.W.abs() < before).all()


def test_one_training_update_with_centering_is_the_rule_on_deterministic_samples():
    """With beta = inf the chain is deterministic; the test recomputes it with the circuit solver."""
    avg = torch.tensor(bars_and_stripes(3)).double().mean(0)
    model = rkm.RKM(
        "m", 9, 5, k=1, lr=0.1, batch_size=4, train_algo="CD", centering=True, average_data=avg, model_beta=float("inf"),
        regularization="l2", l2_factor=0.01, offset=0.3, seed=4, mytype=torch.float64, max_epochs=1, device="cpu",
    )
    v_d = torch.tensor(bars_and_stripes(3)[:4]).double()

    def units(W, a, b, clamped, direction):
        c = solve_pass(W, a, b, clamped, direction=direction, g_v=0.5, g_h=0.5, offset=0.3)
        return (c.voltages > 0).astype(np.float64)

    W, a, b = model.W.numpy().copy(), model.v_bias.numpy().copy(), model.h_bias.numpy().copy()
    h_d = units(W, a, b, v_d.numpy(), "forward")
    v_m = units(W, a, b, h_d, "backward")
    ov = 0.99 * avg.numpy() + 0.01 * v_d.numpy().mean(0)
    oh = 0.99 * 0.5 + 0.01 * h_d.mean(0)
    dW, da, db = hand_update(model, v_d.numpy(), h_d, v_m, h_d, l2=0.01, ov=ov, oh=oh)
    model.train(v_d, save=False)
    np.testing.assert_allclose(model.ov.numpy(), ov, atol=1e-12)
    np.testing.assert_allclose(model.W.numpy(), np.clip(W + 0.1 * dW, -10, 10), atol=1e-12)
    np.testing.assert_allclose(model.v_bias.numpy(), np.clip(a + 0.1 * da, -10, 10), atol=1e-12)
    np.testing.assert_allclose(model.h_bias.numpy(), np.clip(b + 0.1 * db, -10, 10), atol=1e-12)


# ------------------------------------------------------------ energy accounting
@pytest.mark.parametrize("grey", [False, True], ids=["binary-data", "grey-data"])
@pytest.mark.parametrize("algo", list(ALGO_SETTINGS))
def test_energy_is_the_sum_of_the_circuit_power_of_every_pass(monkeypatch, algo, grey):
    # model_beta != 1: the power reuses the comparator input, which carries beta and the layer scale
    model = rkm.RKM("m", 9, 6, k=2, lr=0.05, batch_size=4, train_algo=algo, offset=0.4, max_epochs=6, seed=3,
                    mytype=torch.float64, device="cpu", model_beta=0.3)
    passes = []
    original = model.network.pass_

    def recording(clamped, forward, beta, power=False, binary=False):
        if power:
            passes.append((model.epoch, forward, clamped.numpy().copy(), model.W.numpy().copy(),
                           model.v_bias.numpy().copy(), model.h_bias.numpy().copy()))
        return original(clamped, forward, beta, power, binary)

    monkeypatch.setattr(model.network, "pass_", recording)
    data = torch.tensor(bars_and_stripes(3)).double()
    if grey:  # sources between the rails: the data passes take the general x^2 terms
        data = 0.1 + 0.8 * data
    per_update = {}
    model.train(data, save=False, values="probabilities" if grey else "binary",
                callback=lambda m: per_update.setdefault(m.epoch, (float(m.power_f), float(m.power_b))))
    energy, last_f, last_b = 0.0, 0.0, 0.0
    for epoch, forward, clamped, W, a, b in passes:
        power = solve_pass(W, a, b, clamped, direction="forward" if forward else "backward", g_v=0.5, g_h=0.5, offset=0.4).power
        energy += power.sum()
        if epoch == 5:
            if forward:
                last_f += power.mean()
            else:
                last_b += power.mean()
    assert float(model.energy) == pytest.approx(energy, rel=1e-10)
    assert float(model.power_f) == pytest.approx(last_f, rel=1e-10)
    assert float(model.power_b) == pytest.approx(last_b, rel=1e-10)
    expected_passes = {"CD": 1 + 2 * 2, "PCD": 1 + 2 * 2, "vRDM": 1 + 2 * 2, "RDM": 1 + 2 * 2 + 1, "hRDM": 1 + 1 + 2}
    assert len(passes) == 6 * expected_passes[algo]
    t_f, t_b = model.relaxation_times()
    torch.testing.assert_close(model.relax_t_f, t_f)
    torch.testing.assert_close(model.relax_t_b, t_b)


def test_hrdm_with_k1_pairs_model_visibles_with_hiddens_sampled_from_them(monkeypatch):
    model = rkm.RKM("m", 9, 6, k=1, batch_size=4, train_algo="hRDM", seed=3, max_epochs=1, mytype=torch.float64, device="cpu")
    seen = []
    original = model.network.pass_

    def recording(clamped, forward, beta, power=False, binary=False):
        out = original(clamped, forward, beta, power, binary)
        seen.append((forward, clamped.clone(), out[1].clone()))
        return out

    monkeypatch.setattr(model.network, "pass_", recording)
    W0 = model.W.clone()
    data = torch.tensor(bars_and_stripes(3)[:4]).double()
    model.train(data, save=False)
    (f0, v_d, h_d), (f1, h0, v1), (f2, v1_again, h1) = seen
    assert (f0, f1, f2) == (True, False, True)
    torch.testing.assert_close(v1_again, v1)
    expected = (h_d.T @ v_d) / 4 - (h1.T @ v1) / 4
    torch.testing.assert_close((model.W - W0) / model.lr, expected)
