"""The fast float32 product path (``rkm.core._products``): accuracy, its switch, and its settings."""

import contextlib

import pytest
import torch

import rkm
from rkm import load_model, save_model
from rkm.core import _products
from rkm.errors import ConfigError

FAST = _products.probe()["available"]
needs_fast = pytest.mark.skipif(not FAST, reason="the fast float32 product is not as accurate as IEEE on this machine")
needs_switch = pytest.mark.skipif(_products._mkldnn_matmul() is None, reason="this torch has no oneDNN precision setting")


def test_the_acceptance_rule_separates_three_bfloat16_pieces_from_fewer():
    # measured here: IEEE 1.1e-8, oneDNN's mode 1.5e-8, two pieces 2.0e-7, plain bfloat16 1.1e-4
    assert _products.accurate(1.1e-8, 1.5e-8)
    assert not _products.accurate(1.1e-8, 2.0e-7)
    assert not _products.accurate(1.1e-8, 1.1e-4)


def test_the_probe_measures_both_products():
    result = _products.probe()
    assert set(result) == {"available", "ieee_error", "fast_error", "reason"}
    if _products._mkldnn_matmul() is not None:
        assert 0 < result["ieee_error"] < 1e-7
        assert result["available"] == _products.accurate(result["ieee_error"], result["fast_error"])


@needs_fast
def test_a_fast_pass_is_as_accurate_as_an_ieee_pass():
    g = torch.Generator().manual_seed(0)
    v = torch.randint(0, 2, (128, 784), generator=g).float()
    errors = {}
    for setting in (True, False):
        model = rkm.RKM("m", 784, 512, seed=1, device="cpu", fast_matmul=setting)
        model.W = torch.randn(512, 784, generator=torch.Generator().manual_seed(2)) * 0.05
        numerator, phys = model.network.numerator(v, True)
        W, b = model.W.double(), phys.effective_bias.double()
        exact = v.double() @ W.T + b
        scale = v.double() @ W.abs().T + b.abs()
        errors[setting] = ((numerator.double() - exact).abs() / scale).mean().item()
        assert model.uses_fast_matmul is setting
    assert errors[True] <= _products.ACCURACY_FACTOR * errors[False]
    assert errors[True] < 1e-7


@needs_switch
def test_products_restore_the_global_precision_setting_even_on_error():
    setting = torch.backends.mkldnn.matmul
    before = setting.fp32_precision
    a, b = torch.ones(256, 256), torch.ones(256, 256)
    _products.mm(a, b, True)
    assert setting.fp32_precision == before
    with pytest.raises(RuntimeError):
        _products.addmm(torch.zeros(3), a, torch.ones(255, 3), True)
    assert setting.fp32_precision == before


def test_small_products_and_unasked_products_stay_on_the_ieee_path(monkeypatch):
    entered = []
    monkeypatch.setattr(_products, "_precision", lambda value: entered.append(value) or contextlib.nullcontext())
    a = torch.ones(8, 8)
    _products.mm(a, a, True)
    big = torch.ones(256, 256)
    _products.mm(big, big, False)
    assert entered == []
    _products.mm(big, big, True)
    assert entered == ["bf16"]


def test_the_setting_is_checked_and_follows_dtype_and_device(monkeypatch):
    with pytest.raises(ConfigError, match="fast_matmul"):
        rkm.RKM("m", 4, 3, device="cpu", fast_matmul="yes")
    with pytest.raises(ConfigError, match="float32 on the CPU only"):
        rkm.RKM("m", 4, 3, device="cpu", mytype=torch.float64, fast_matmul=True)
    model = rkm.RKM("m", 4, 3, device="cpu")
    assert model.fast_matmul is None and model.uses_fast_matmul is FAST
    model.to(dtype=torch.float64)
    assert model.uses_fast_matmul is False
    required = rkm.RKM("m", 4, 3, device="cpu", fast_matmul=True) if FAST else None
    if required is not None:
        with pytest.raises(ConfigError, match="float32 on the CPU only"):
            required.to(dtype=torch.float64)
        assert required.mytype == torch.float32 and required.W.dtype == torch.float32
    unavailable = {"available": False, "ieee_error": 1e-8, "fast_error": 1e-4, "reason": "not here"}
    monkeypatch.setattr(_products, "probe", lambda: unavailable)
    assert rkm.RKM("m", 4, 3, device="cpu").uses_fast_matmul is False
    with pytest.raises(ConfigError, match="not here"):
        rkm.RKM("m", 4, 3, device="cpu", fast_matmul=True)


def test_a_save_point_keeps_the_setting(tmp_path):
    model = rkm.RKM("m", 6, 4, device="cpu", seed=0, fast_matmul=False)
    save_model(model, tmp_path)
    found, loaded = load_model("m", model_state_path=tmp_path)
    assert found and loaded.fast_matmul is False and loaded.uses_fast_matmul is False


def test_plain_sgd_steps_w_in_place_exactly_as_the_gradient_path():
    """Plain SGD adds the two products straight into W; with a zero L2 term the same update
    goes through the explicit gradient. Both must give the same parameters."""
    data = torch.randint(0, 2, (64, 30), generator=torch.Generator().manual_seed(0)).double()
    models = [
        rkm.RKM("m", 30, 20, k=2, lr=0.05, batch_size=16, train_algo="PCD", seed=4, max_epochs=8,
                mytype=torch.float64, device="cpu", regularization=reg, l2_factor=0.0)
        for reg in (False, "l2")
    ]
    assert not models[0].trainer.transforms() and models[1].trainer.transforms()  # only L2 forms the gradient
    for model in models:
        model.train(data, save=False)
    for name in ("W", "v_bias", "h_bias"):
        torch.testing.assert_close(getattr(models[0], name), getattr(models[1], name), rtol=0, atol=1e-12)


def _binary(shape, seed):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).float()


def test_is_binary():
    assert _products.is_binary(_binary((8, 30), 0))
    assert _products.is_binary(torch.zeros(2, 3, dtype=torch.float64))
    for value in (0.5, -1.0, 2.0, 1e-7):
        x = _binary((8, 30), 0)
        x[2, 7] = value
        assert not _products.is_binary(x)


@pytest.mark.parametrize("product", ["int8", "float32"])
def test_binary_counts_are_the_exact_contrastive_statistics(monkeypatch, product):
    if product == "int8" and not _products._int8_products():
        pytest.skip("no int8 products in this torch")
    monkeypatch.setattr(_products, "count_product", lambda: product)
    h_pos, v_pos, h_neg, v_neg = _binary((64, 200), 0), _binary((64, 784), 1), _binary((64, 200), 2), _binary((64, 784), 3)
    counts = _products.binary_counts(h_pos, v_pos, h_neg, v_neg)
    assert counts.dtype == (torch.int32 if product == "int8" else torch.float32)
    exact = h_pos.double().T @ v_pos.double() - h_neg.double().T @ v_neg.double()
    assert torch.equal(counts.double(), exact)
    assert _products.binary_counts(h_pos[:32], v_pos[:32], h_neg, v_neg) is None
    assert _products.binary_counts(h_pos[:, :4], v_pos[:, :4], h_neg[:, :4], v_neg[:, :4]) is None


def test_the_count_product_is_one_of_the_two_exact_ones_and_both_train_the_same_model(monkeypatch):
    """Whichever product the timing picks, the trained parameters are bit for bit the same."""
    assert _products.count_product() in ("int8", "float32")
    if not _products._int8_products():
        pytest.skip("no int8 products in this torch")
    data = _binary((256, 512), 6)
    trained = []
    for product in ("int8", "float32"):
        monkeypatch.setattr(_products, "count_product", lambda product=product: product)
        model = rkm.RKM("m", 512, 64, k=1, lr=0.05, batch_size=64, train_algo="PCD", seed=4, max_epochs=3,
                        device="cpu")
        model.train(data, save=False)
        trained.append(model)
    for name in ("W", "v_bias", "h_bias"):
        assert torch.equal(getattr(trained[0], name), getattr(trained[1], name))


@pytest.mark.parametrize("grey", [False, True], ids=["binary-data", "grey-data"])
@pytest.mark.parametrize("settings", [{}, {"regularization": "l2", "optimizer": "Adam"}])
def test_training_with_exact_counts_matches_float_products(monkeypatch, settings, grey):
    """64 x 64 x 512 is above the size threshold: the default counts the statistics exactly in one product,
    fast_matmul=False uses float products. In float64 both give the same parameters. Data
    that is not 0/1 never reaches the exact counts."""
    data = _binary((256, 512), 5).double()
    if grey:
        data[:, 7] = 0.5
    models = [
        rkm.RKM("m", 512, 64, k=1, lr=0.05, batch_size=64, train_algo="PCD", seed=4, max_epochs=3,
                mytype=torch.float64, device="cpu", fast_matmul=fast, **settings)
        for fast in (None, False)
    ]
    used = []
    original = _products.binary_counts
    monkeypatch.setattr(_products, "binary_counts", lambda *a: used.append(original(*a)) or used[-1])
    for model in models:
        model.train(data, save=False, values="probabilities" if grey else "binary")
    if grey:
        assert used == []
    else:
        assert len(used) == 3 and all(c is not None for c in used)
    for name in ("W", "v_bias", "h_bias"):
        torch.testing.assert_close(getattr(models[0], name), getattr(models[1], name), rtol=0, atol=1e-12)


@needs_fast
def test_one_update_agrees_with_and_without_the_fast_paths():
    """From the same parameters, chains and random state, an update on the fast paths (bf16-based
    float32 passes, int8 statistics) steps W as the IEEE update does, to float32 rounding. A unit
    whose comparator input lies within rounding of its threshold may come out differently, so an
    update with a different sample is allowed once."""
    data = _binary((320, 784), 7)
    fast, ieee = (rkm.RKM("m", 784, 200, batch_size=64, train_algo="PCD", lr=0.01, seed=2, device="cpu",
                          fast_matmul=setting) for setting in (None, False))
    differing = 0
    for step in range(5):
        for name in ("W", "v_bias", "h_bias", "persistent_chains"):
            setattr(ieee, name, getattr(fast, name).clone())
        ieee.generator.set_state(fast.generator.get_state())
        W0 = fast.W.clone()
        batch = data[64 * step : 64 * (step + 1)]
        fast.trainer.update(batch)
        ieee.trainer.update(batch)
        if not torch.equal(fast.persistent_chains, ieee.persistent_chains):
            differing += 1
            continue
        torch.testing.assert_close(fast.W - W0, ieee.W - W0, rtol=0, atol=1e-6)
    assert differing <= 1


@needs_fast
def test_fast_products_have_no_sign_bias():
    """Rounding that leaned one way could drift a trained model. At the demo's pass shapes the
    fast products' errors (against float64, signed towards the exact value's sign) average to
    a few % of their mean size (1% and 3% here; IEEE float32: 1% and 1%); pieces cut by
    truncation instead of rounding would give about -100%."""
    g = torch.Generator().manual_seed(1)
    W = torch.randn(1000, 784, generator=g) * 0.03 + 0.01
    v = (torch.rand(64, 784, generator=g) < 0.2).float()
    h = (torch.rand(64, 1000, generator=g) < 0.5).float()
    for a, b in ((v, W.t()), (h, W)):
        exact = a.double() @ b.double()
        with _products._precision("bf16"):
            error = (a @ b).double() - exact
        assert error.abs().mean() > 0  # the mode did round
        assert abs(float((error * exact.sign()).mean())) < 0.1 * float(error.abs().mean())
