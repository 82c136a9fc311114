"""rkm.evaluation.ais: the AIS estimate of log Z holds the exact value (2^20 hidden states enumerated) of a
784 x 20 RBM trained on mnist-5k."""

import numpy as np
import pytest
import torch

import rkm
from rkm.evaluation import ais, exact
from rkm.io.datasets import load_dataset


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    data = load_dataset("mnist-5k").train
    model = rkm.RBM("m", 784, 20, k=1, lr=0.05, batch_size=64, max_epochs=400, train_algo="PCD", seed=0,
                    device="cpu", average_data=torch.tensor(data.mean(axis=0)))
    model.train(data, save=False)
    return model, data, exact.log_partition(model)


def test_the_exact_log_z_lies_in_the_interval_and_the_estimate_within_0_2_nats(trained):
    model, data, log_z = trained
    estimate = ais.log_partition(model, n_chains=100, n_betas=1000, data=data, seed=1)
    assert estimate.low <= log_z <= estimate.high
    assert abs(estimate.log_z - log_z) < 0.2
    assert estimate.high - estimate.low < 0.5  # an interval that says something
    assert estimate.log_weights.shape == (100,) and estimate.log_weights.dtype == np.float64


def test_the_estimate_is_reproducible_from_its_seed(trained):
    model, data, _ = trained
    first = ais.log_partition(model, n_chains=20, n_betas=200, data=data[:500], seed=3)
    again = ais.log_partition(model, n_chains=20, n_betas=200, data=data[:500], seed=3)
    other = ais.log_partition(model, n_chains=20, n_betas=200, data=data[:500], seed=4)
    assert first.log_z == again.log_z and np.array_equal(first.log_weights, again.log_weights)
    assert other.log_z != first.log_z


def test_a_small_rbm_matches_its_enumerated_log_z_with_the_models_own_base():
    model = rkm.RBM("m", 10, 6, seed=0, device="cpu", mytype=torch.float64, model_beta=0.8)
    g = torch.Generator().manual_seed(0)
    model.W = torch.randn(6, 10, generator=g, dtype=torch.float64)
    estimate = ais.log_partition(model, n_chains=200, n_betas=2000, seed=0)
    assert estimate.low <= exact.log_partition(model) <= estimate.high


def test_the_schedule_runs_from_0_to_1_and_bad_arguments_are_refused():
    schedule = ais.betas(1000)
    assert len(schedule) == 1000 and schedule[0] == 0.0 and schedule[-1] == 1.0 and np.all(np.diff(schedule) > 0)
    with pytest.raises(rkm.ConfigError, match="no energy function"):
        ais.log_partition(rkm.RKM("m", 10, 6, device="cpu"))
    with pytest.raises(rkm.ConfigError, match="n_chains"):
        ais.log_partition(rkm.RBM("m", 10, 6, device="cpu"), n_chains=0)
    with pytest.raises(rkm.DataError, match="shape"):
        ais.log_partition(rkm.RBM("m", 10, 6, device="cpu"), data=np.zeros((3, 9)))
