"""rkm.sklearn: scikit-learn's estimator checks, a digits pipeline, and BernoulliRBM's values."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from rkm.sklearn import BernoulliRKM, RBMEstimator


@parametrize_with_checks(
    [BernoulliRKM(n_components=8, n_iter=2, random_state=0), RBMEstimator(n_components=8, n_iter=2, random_state=0)]
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


@pytest.mark.parametrize(
    "machine, accuracy",
    [(BernoulliRKM(n_components=32, n_iter=3, model_beta=0.1), 0.3), (RBMEstimator(n_components=32, n_iter=3), 0.6)],
)
def test_a_digits_pipeline_runs_and_repeats(digits, machine, accuracy):
    X, y = digits
    pipe = Pipeline([("machine", machine.set_params(random_state=0)), ("logistic", LogisticRegression(max_iter=500))])
    first = clone(pipe).fit(X[:400], y[:400])
    second = clone(pipe).fit(X[:400], y[:400])
    np.testing.assert_array_equal(first.predict_proba(X[400:]), second.predict_proba(X[400:]))
    assert first.score(X[400:], y[400:]) > accuracy  # chance is 0.1 (measured: 0.415 and 0.74)
    other = clone(pipe).set_params(machine__random_state=1).fit(X[:400], y[:400])
    assert not np.array_equal(other.named_steps["machine"].components_, first.named_steps["machine"].components_)


def test_fitted_state_and_accounting(digits):
    X, _ = digits
    est = BernoulliRKM(n_components=5, batch_size=50, n_iter=2, random_state=0).fit(X[:100])
    assert est.components_.shape == (5, 64) and est.intercept_hidden_.shape == (5,)
    assert est.intercept_visible_.shape == (64,)
    assert est.model_.epoch == 4  # 2 passes of 2 mini-batches
    assert est.power_forward_ > 0 and est.power_backward_ > 0 and est.energy_ > 0
    energy = est.energy_
    est.partial_fit(X[100:130])
    assert est.model_.epoch == 5 and est.energy_ > energy
    assert list(est.get_feature_names_out()) == [f"bernoullirkm{i}" for i in range(5)]
    sample = est.gibbs(X[:7])
    assert sample.shape == (7, 64) and sample.dtype == bool
    fresh = BernoulliRKM(n_components=5, random_state=0).partial_fit(X[:30])
    assert fresh.model_.epoch == 1 and fresh.n_features_in_ == 64


def test_transform_and_score_are_bernoullirbms_for_the_same_parameters(digits):
    X, _ = digits
    X = X[:40]
    ours = RBMEstimator(n_components=12, n_iter=1, random_state=0).fit(X)
    ref = BernoulliRBM(n_components=12, n_iter=1, random_state=0).fit(X)
    ours.model_.W = ref.components_
    ours.model_.h_bias, ours.model_.v_bias = ref.intercept_hidden_, ref.intercept_visible_
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), rtol=1e-12)
    # BernoulliRBM flips one random pixel per sample: n_features * log P(v_i | v_-i) for that pixel
    binary = (X > 0.5).astype(np.float64)
    ref.random_state = 3
    pixel = np.random.RandomState(3).randint(0, 64, binary.shape[0])
    from rkm.core import hopfield

    m = ours.model_
    terms = hopfield.pixel_log_conditionals(torch.tensor(binary), m.W, m.v_bias, m.h_bias).numpy()
    np.testing.assert_allclose(ref.score_samples(binary), 64 * terms[np.arange(len(binary)), pixel], rtol=1e-10)
    np.testing.assert_allclose(ours.score_samples(binary), terms.sum(1), rtol=1e-12)
    np.testing.assert_allclose(ours.score_samples(binary), ours.score_samples(binary))  # no randomness


def test_the_rkm_score_is_the_mean_field_reconstruction_log_likelihood(digits):
    X, _ = digits
    est = BernoulliRKM(n_components=6, n_iter=1, random_state=0).fit(X[:50])
    v = (X[:5] > 0.5).astype(np.float64)
    h = est.transform(v)
    p = est.model_.h_to_v(torch.tensor(h))[0].numpy()  # P(v = 1 | h clamped at P(h = 1 | v))
    expected = (v * np.log(p) + (1 - v) * np.log1p(-p)).sum(1)
    np.testing.assert_allclose(est.score_samples(v), expected, rtol=1e-9)
    # saturated units keep exact log-probabilities (a deterministic comparator gives 0 or -inf)
    hard = BernoulliRKM(n_components=6, n_iter=1, model_beta=float("inf"), random_state=0).fit(X[:50])
    assert not np.isnan(hard.score_samples(v)).any()


@pytest.mark.parametrize("seed", range(3))
def test_the_default_model_beta_keeps_the_rkms_features_graded(digits, seed):
    """BernoulliRKM's default (0.2, docs/sklearn.md) against pyrkm's 1 on a small digits pipeline: measured
    accuracy 0.71-0.73 against chance (0.1), and 0.5-3% against 99.8-100% of P(h = 1 | v) saturated."""
    X, y = digits
    assert BernoulliRKM().model_beta == 0.2 and RBMEstimator().model_beta == 1.0  # BernoulliRBM's law

    def fit(**params):
        features = BernoulliRKM(n_components=32, n_iter=3, random_state=seed, **params)
        pipe = Pipeline([("rkm", features), ("logistic", LogisticRegression(max_iter=500))]).fit(X[:400], y[:400])
        p = features.transform(X[:400])
        return pipe.score(X[400:], y[400:]), float(((p < 0.01) | (p > 0.99)).mean())

    (accuracy, saturated), (accuracy_at_1, saturated_at_1) = fit(), fit(model_beta=1.0)
    assert accuracy > 0.5 and saturated < 0.1
    assert saturated_at_1 > 0.9 and accuracy_at_1 < accuracy - 0.3


def test_verbose_prints_every_pass_as_bernoulli_rbm_does(digits, capsys):
    X, _ = digits
    RBMEstimator(n_components=4, n_iter=3, batch_size=50, verbose=1, random_state=0).fit(X[:100])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(",")[0] for line in lines] == [f"[RBMEstimator] Iteration {i}" for i in (1, 2, 3)]


def test_a_fit_at_verbose_0_prints_nothing_and_rkm_attaches_only_a_null_handler(tmp_path):
    """In a fresh interpreter, as a user's script: no line on stdout or stderr, and the logger "rkm" has a
    NullHandler and nothing else, also after training (a library leaves its output to the application)."""
    script = (
        "import logging, numpy as np\n"
        "from rkm.sklearn import BernoulliRKM\n"
        "X = (np.random.default_rng(0).random((40, 9)) < 0.5).astype(float)\n"
        "BernoulliRKM(n_components=4, n_iter=2, random_state=0).fit(X)\n"
        "BernoulliRKM(n_components=4, random_state=0).partial_fit(X)\n"
        "import rkm\n"
        "rkm.RKM('m', 9, 4, max_epochs=3, device='cpu').train(X, save=False, print_error=True, print_every=1)\n"
        "handlers = logging.getLogger('rkm').handlers\n"
        "assert [type(h).__name__ for h in handlers] == ['NullHandler'], handlers\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


