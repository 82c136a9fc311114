"""No silent NaN (issue 11, item 5) and what a resumed DataLoader can promise (item 6)."""

import warnings

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import rkm
from rkm.app._cli import main
from rkm.errors import DataError
from rkm.io.datasets import bars_and_stripes
from rkm.io.savepoints import list_savepoints

BAS = torch.tensor(bars_and_stripes(3))


def model(**kwargs):
    settings = dict(k=1, lr=0.05, batch_size=4, max_epochs=10, train_algo="PCD", seed=3, device="cpu")
    settings.update(kwargs)
    return rkm.RKM("nan", 9, 5, **settings)


def test_huge_data_stops_training_naming_the_update_and_keeps_the_last_good_save_point(tmp_path):
    m = model()
    m.train(BAS, model_state_path=tmp_path)
    last_good = list_savepoints(tmp_path, "nan")[-1]
    energy, W = m.energy.clone(), m.W.clone()
    seen = []
    m.max_epochs = 20
    with pytest.raises(DataError, match=r"update 11 produced NaN or inf in the energy of its forward passes"):
        m.train(BAS * 1e20, model_state_path=tmp_path, callback=lambda model: seen.append(model.epoch),
                values="any")  # the unchecked path: the NaN stop behind the data check
    assert seen == [] and m.epoch == 10 and torch.equal(m.energy, energy)  # no callback ran, nothing was counted
    assert list_savepoints(tmp_path, "nan")[-1] == last_good
    found, loaded = rkm.load_model("nan", model_state_path=tmp_path)
    assert found and loaded.epoch == 10 and torch.equal(loaded.W, W) and bool(torch.isfinite(loaded.energy))


def test_a_nan_chain_stops_training_at_the_next_update():
    m = model()
    m.train(BAS, save=False)
    chains = m.persistent_chains.clone()
    chains[0, 0] = float("nan")
    m.persistent_chains = chains
    m.max_epochs = 12
    with pytest.raises(DataError, match=r"update 11 produced NaN or inf in the energy"):
        m.train(BAS, save=False)
    assert bool(torch.isfinite(m.energy))


def test_an_overflowing_step_stops_before_its_update_is_saved(tmp_path):
    m = model(lr=1e5, mytype=torch.float16, optimizer="Adam")
    with pytest.raises(DataError, match=r"update 1 .*lower lr"):
        m.train(BAS, model_state_path=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_state_with_nan_is_never_written():
    m = model()
    m.W = torch.full_like(m.W, float("nan"))
    with pytest.raises(DataError, match=r"holds NaN or inf in \['W'\]; it is not saved"):
        rkm.save_model(m, "never")


def test_the_cli_stops_on_nan_in_one_line_naming_the_update(tmp_path, capsys):
    argv = ["train", "--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--max-epochs", "20",
            "--lr", "1e39", "--log-every", "5", "--no-progress", "--run-dir", str(tmp_path / "r")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error: ") and "update 1" in err[0], err
    assert "No save point had been written" in err[0]
    assert list_savepoints(tmp_path / "r" / "model_states", "rkm") == []


# ------------------------------------------------------------------ item 6
def resumed(data, tmp_path, **kwargs):
    """Train to 12 updates in one go and in two halves (save, load, continue) on ``data``; the two models."""
    full = model(max_epochs=12, **kwargs)
    full.train(data(), save=False)
    half = model(max_epochs=6, **kwargs)
    half.train(data(), model_state_path=tmp_path)
    loaded = rkm.load_model("nan", model_state_path=tmp_path)[1]
    loaded.max_epochs = 12
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded.train(data(), save=False)
    return full, loaded, [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_a_sequential_data_loader_resumes_bit_identically_without_a_warning(tmp_path):
    full, loaded, caught = resumed(lambda: DataLoader(TensorDataset(BAS), batch_size=4), tmp_path)
    assert caught == [] and torch.equal(full.W, loaded.W) and torch.equal(full.energy, loaded.energy)


def test_a_list_of_batches_resumes_bit_identically(tmp_path):
    full, loaded, caught = resumed(lambda: [BAS[:4], BAS[4:8], BAS[8:12]], tmp_path)
    assert caught == [] and torch.equal(full.W, loaded.W)


@pytest.mark.parametrize("source", ["shuffled", "generator"])
def test_a_data_source_whose_order_cannot_be_reproduced_warns_once_on_resume(tmp_path, source):
    def data():
        if source == "shuffled":
            return DataLoader(TensorDataset(BAS), batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(0))
        return (BAS[4 * (i % 3) : 4 * (i % 3) + 4] for i in range(100))

    _, loaded, caught = resumed(data, tmp_path)
    assert len(caught) == 1 and "resuming at update 6" in str(caught[0].message)
    assert loaded.epoch == 12
