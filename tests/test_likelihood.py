"""``rkm evaluate RUN --log-likelihood`` on tiny run folders: exact, AIS, or why no likelihood applies."""

import json

import numpy as np
import pytest

from rkm.app._cli import main
from rkm.app.run import load_run
from rkm.evaluation import exact

FAST = ["--preset", "bars", "--max-epochs", "60", "--log-every", "60", "--generate-k", "5", "--no-progress"]


def _train(tmp_path, name, *flags):
    run = tmp_path / name
    assert main(["train", *FAST, "--run-dir", str(run), *flags]) == 0
    return run


def _evaluate(run, tmp_path, capsys, *flags):
    capsys.readouterr()
    out = tmp_path / f"{run.name}.json"
    assert main(["evaluate", str(run), "-n", "30", "-k", "5", "--log-likelihood", "--json", str(out), *flags]) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def test_a_small_rkm_reports_the_exact_kl_of_its_stationary_law(tmp_path, capsys):
    run = _train(tmp_path, "rkm", "--n-hidden", "6", "--energy-type", "RKM")
    results, printed = _evaluate(run, tmp_path, capsys)
    _, dataset, model = load_run(run)
    assert results["likelihood_method"] == "exact stationary law"
    assert results["kl_train"] == pytest.approx(exact.kl_divergence(model, dataset.train), abs=1e-12)
    assert results["log_likelihood_test"] == pytest.approx(exact.log_likelihood(model, dataset.test), abs=1e-12)
    assert 0 < results["kl_train"] < 30 and "kl_train" in printed


def test_a_small_hopfield_model_enumerates_log_z(tmp_path, capsys):
    run = _train(tmp_path, "rbm", "--n-hidden", "6", "--energy-type", "hopfield")
    results, _ = _evaluate(run, tmp_path, capsys)
    _, dataset, model = load_run(run)
    assert results["likelihood_method"] == "exact log Z"
    assert results["log_z"] == pytest.approx(exact.log_partition(model), abs=1e-12)
    # the Boltzmann route and the stationary law of the chain agree on the same model
    pi = exact.stationary_distribution(model)  # float32 comparator inputs: agreement to float32 rounding
    log_p = np.log(pi[exact.index_of(exact.binary_rows(model, dataset.train)).numpy()])
    assert results["kl_train"] == pytest.approx(-exact.data_entropy(model, dataset.train) - log_p.mean(), abs=1e-4)


def test_a_large_hopfield_model_gets_an_ais_estimate_with_its_interval(tmp_path, capsys):
    run = _train(tmp_path, "ais", "--n-hidden", "24", "--energy-type", "hopfield", "--size", "5")
    results, printed = _evaluate(run, tmp_path, capsys, "--ais-chains", "20", "--ais-betas", "300")
    assert results["likelihood_method"] == "AIS" and results["ais_chains"] == 20
    assert results["log_z_low"] <= results["log_z"] <= results["log_z_high"]
    assert results["log_likelihood_test_low"] <= results["log_likelihood_test"] <= results["log_likelihood_test_high"]
    assert "kl_train" not in results and "log_z_high" in printed


def test_a_large_rkm_says_plainly_that_no_likelihood_applies(tmp_path, capsys):
    run = _train(tmp_path, "big", "--energy-type", "RKM")  # the preset's 32 hidden units
    results, printed = _evaluate(run, tmp_path, capsys)
    assert results["likelihood_method"] == "none"
    assert "no energy function" in results["likelihood_note"] and "16 x 32" in printed
