"""Behaviour pyrkm scripts rely on: assigning W_t, list batches, seeding with torch.manual_seed."""

import numpy as np
import pytest
import torch

import rkm
from rkm.errors import DataError
from rkm.io._batches import batch_rows

G = torch.Generator().manual_seed(3)
DATA = (torch.rand(12, 6, generator=G) > 0.5).float()


def test_assigning_w_t_sets_w_to_its_transpose():
    model = rkm.RKM("m", 6, 4, seed=0, device="cpu")
    new = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    model.W_t = new
    torch.testing.assert_close(model.W, new.t())
    torch.testing.assert_close(model.W_t, new)
    model.W_t = model.W.t() * 2  # pyrkm's refresh idiom, here with a change
    torch.testing.assert_close(model.W, 2 * new.t())
    model.W_t = np.ones((6, 4))
    assert model.W.dtype == model.mytype and torch.equal(model.W, torch.ones(4, 6))
    with pytest.raises(DataError, match=r"W_t must have shape \(6, 4\)"):
        model.W_t = torch.ones(4, 6)


def test_batch_rows_reads_lists_rows_and_labelled_pairs():
    rows = list(DATA[:3])
    assert torch.equal(batch_rows(rows), DATA[:3])
    assert torch.equal(batch_rows(tuple(rows)), DATA[:3])
    np.testing.assert_array_equal(batch_rows(DATA[:3].tolist()), DATA[:3].numpy())
    np.testing.assert_array_equal(batch_rows([DATA[0].numpy(), DATA[1].tolist()]), DATA[:2].numpy())
    labels = torch.arange(3)
    assert torch.equal(batch_rows((DATA[:3], labels)), DATA[:3])
    assert torch.equal(batch_rows([DATA[:3]]), DATA[:3])
    assert torch.equal(batch_rows([DATA[0], 7]), DATA[:1])  # (row, label)
    assert torch.equal(batch_rows([DATA[0], DATA[1]]), DATA[:2])  # two rows, not (row, label)
    assert batch_rows(DATA) is DATA
    assert batch_rows([0.0, 1.0, 1.0]) == [0.0, 1.0, 1.0]  # one row of numbers


@pytest.mark.parametrize(
    "batch",
    [[], [DATA[0], DATA[1, :5]], [DATA[:2].tolist(), [1, 2]], [DATA[0], DATA[:2]], [DATA[0], "label"], [[0, 1], [0, [1]]]],
    ids=["empty", "ragged-rows", "nested-list-with-label", "row-and-batch", "row-and-text", "ragged-nested"],
)
def test_ambiguous_batches_are_data_errors(batch):
    with pytest.raises(DataError):
        batch_rows(batch)


def trained(data, algo="CD"):
    model = rkm.RKM("m", 6, 4, batch_size=3, train_algo=algo, max_epochs=4, seed=0, device="cpu")
    model.train(data, save=False)
    return model


def test_list_batches_train_like_tensor_batches():
    tensors = [DATA[i : i + 3] for i in range(0, 12, 3)]
    reference = trained(tensors)
    for data in ([list(b) for b in tensors], [b.tolist() for b in tensors], [(b, torch.zeros(3)) for b in tensors],
                 [[b] for b in tensors]):
        torch.testing.assert_close(trained(data).W, reference.W, rtol=0, atol=0)
    # the old reading took the first row of a list of rows as the whole batch, which trains differently
    assert not torch.equal(trained([b[:1] for b in tensors]).W, reference.W)


def test_seed_none_draws_from_torchs_global_generator():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(42)
        first = rkm.RKM("m", 6, 4, device="cpu")
        torch.manual_seed(42)
        second = rkm.RKM("m", 6, 4, device="cpu")
        other = rkm.RKM("m", 6, 4, device="cpu")  # the global generator moved on
        state = torch.get_rng_state()
        rkm.RKM("m", 6, 4, seed=5, device="cpu")
        untouched = torch.equal(state, torch.get_rng_state())
    assert first.seed == second.seed and isinstance(first.seed, int) and 0 <= first.seed < 2**63
    torch.testing.assert_close(first.W, second.W, rtol=0, atol=0)
    assert other.seed != first.seed
    assert untouched  # an explicit seed draws nothing from the global generator
    assert rkm.RKM("m", 6, 4, seed=first.seed, device="cpu").W.equal(first.W)  # model.seed repeats the model


def test_loading_the_fid_classifier_draws_nothing_from_the_global_generator():
    from rkm.evaluation import fid

    state = torch.get_rng_state()
    net = fid.load_classifier()
    assert torch.equal(state, torch.get_rng_state())
    assert net.conv1.weight.device.type == "cpu" and net.conv1.weight.dtype == torch.float64
