"""Save points: schedule, safe loading, integrity, atomic writes, bit-exact resume, pretrain."""

import os
import pickle

import numpy as np
import pytest
import torch

import rkm
from rkm.errors import CheckpointError
from rkm.io.datasets import bars_and_stripes
from rkm.io.savepoints import list_savepoints, read_savepoint, save_model

BAS = torch.tensor(bars_and_stripes(4))


def model(**kwargs):
    settings = dict(max_epochs=200, batch_size=8, lr=0.02, seed=7, device="cpu")
    settings.update(kwargs)
    return rkm.RKM("ck", 16, 10, **settings)


def test_save_points_are_written_at_the_documented_updates(tmp_path):
    m = model()
    m.train(BAS, model_state_path=str(tmp_path))
    expected = sorted(set(np.round(np.logspace(0, np.log10(200), 50)).astype(int).tolist()))
    assert [u for u, _ in list_savepoints(tmp_path, "ck")] == expected == m.t_to_save
    assert expected[0] == 1 and expected[-1] == 200 and len(expected) < 50


def test_load_model_returns_the_latest_state(tmp_path):
    m = model(optimizer="Adam", train_algo="PCD")
    m.train(BAS, model_state_path=str(tmp_path) + "/")
    found, loaded = rkm.load_model("ck", model_state_path=str(tmp_path) + "/")
    assert found and isinstance(loaded, rkm.RKM)
    assert loaded.epoch == 200
    for name in ("W", "v_bias", "h_bias", "m_dW", "v_dW", "persistent_chains", "energy"):
        torch.testing.assert_close(getattr(loaded, name), getattr(m, name), rtol=0, atol=0)
    assert (loaded.optimizer, loaded.train_algo, loaded.seed) == ("Adam", "PCD", 7)
    assert rkm.load_model("nobody", model_state_path=str(tmp_path)) == (False, [])


def test_delete_previous_keeps_only_the_latest(tmp_path):
    m = model(max_epochs=20)
    m.train(BAS, model_state_path=str(tmp_path))
    rkm.load_model("ck", delete_previous=True, model_state_path=str(tmp_path))
    assert [u for u, _ in list_savepoints(tmp_path, "ck")] == [20]


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_in_place_of_a_save_point_is_refused_and_never_run(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(Exploit(str(marker)))
    (tmp_path / "ck_t5.safetensors").write_bytes(payload)
    with pytest.raises(CheckpointError, match="pickle"):
        rkm.load_model("ck", model_state_path=str(tmp_path))
    assert not marker.exists()


def test_pyrkm_pickles_are_refused_with_a_clear_error(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "ck_t5.pkl").write_bytes(pickle.dumps(Exploit(str(marker))))
    with pytest.raises(CheckpointError, match="never unpickles"):
        rkm.load_model("ck", model_state_path=str(tmp_path))
    with pytest.raises(CheckpointError, match="never unpickles"):
        model().pretrain("ck", model_state_path=str(tmp_path))
    assert not marker.exists()


@pytest.mark.parametrize("cut", [5, 60, -3])
def test_a_truncated_save_point_is_detected(tmp_path, cut):
    m = model(max_epochs=3)
    m.train(BAS, model_state_path=str(tmp_path))
    path = list_savepoints(tmp_path, "ck")[-1][1]
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError):
        read_savepoint(path)


def test_a_flipped_bit_is_detected(tmp_path):
    m = model(max_epochs=3)
    path = save_model(m, tmp_path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        read_savepoint(path)


def test_a_failed_write_leaves_the_previous_save_point_intact(tmp_path, monkeypatch):
    m = model()
    path = save_model(m, tmp_path)
    good = path.read_bytes()
    m.W = m.W + 1.0

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_model(m, tmp_path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


class Crash(Exception):
    pass


@pytest.mark.parametrize(
    "settings",
    [
        dict(train_algo="PCD", optimizer="Adam", centering=True, average_data=BAS.mean(0), regularization="l2"),
        dict(train_algo="vRDM", sampling="single-threshold"),
        dict(train_algo="hRDM", optimizer="Adam", sampling="multi-threshold", distribution="uniform"),
    ],
)
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, settings):
    full = model(**settings)
    full.train(BAS, model_state_path=str(tmp_path / "full"))

    broken = model(**settings)

    def stop(m):
        if m.epoch == 130:
            raise Crash

    with pytest.raises(Crash):
        broken.train(BAS, model_state_path=str(tmp_path / "part"), callback=stop)
    found, resumed = rkm.load_model("ck", model_state_path=str(tmp_path / "part"))
    assert found and 100 < resumed.epoch <= 130
    resumed.train(BAS, model_state_path=str(tmp_path / "part"))
    assert resumed.epoch == full.epoch == 200
    for name in ("W", "v_bias", "h_bias", "energy", "power_f", "power_b"):
        assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    for name in ("persistent_chains", "m_dW", "ov", "oh"):
        if isinstance(getattr(full, name, None), torch.Tensor):
            assert torch.equal(getattr(resumed, name), getattr(full, name)), name
    assert torch.equal(resumed.generator.get_state(), full.generator.get_state())


def test_pretrain_imports_parameters_from_the_latest_save_point(tmp_path):
    source = model(max_epochs=30)
    source.train(BAS, model_state_path=str(tmp_path))
    target = rkm.RKM("other", 16, 10, seed=1, device="cpu")
    assert target.pretrain("ck", model_state_path=str(tmp_path)) is True
    torch.testing.assert_close(target.W, source.W)
    torch.testing.assert_close(target.h_bias, source.h_bias)
    assert target.epoch == 0
    assert target.pretrain("missing", model_state_path=str(tmp_path)) is False
    wrong = rkm.RKM("wrong", 16, 11, device="cpu")
    with pytest.raises(rkm.DataError, match="same size"):
        wrong.pretrain("ck", model_state_path=str(tmp_path))


def test_rbm_round_trips_as_an_rbm(tmp_path):
    m = rkm.RBM("plain", 16, 6, max_epochs=5, batch_size=4, seed=0, device="cpu")
    m.train(BAS, model_state_path=str(tmp_path))
    found, loaded = rkm.load_model("plain", model_state_path=str(tmp_path))
    assert found and type(loaded) is rkm.RBM and loaded.energy_type == "hopfield"
