"""One training update never forms a (batch, n_hidden, n_visible) tensor.

The reference (pyrkm 0.1.0) computed per-sample gradients with
``einsum('ij,ik->ijk', h, v)``: at batch 256, 1000 hidden and 784 visible units that is
an 803 MB tensor per phase. rkm computes the same statistics with matrix products, so the
largest single allocation of an update should be a parameter-sized matrix (the W
gradient, n_hidden x n_visible floats). The torch profiler's memory records list every
CPU allocation made through torch's allocator; the test checks the largest one.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import rkm

B, NV, NH = 256, 784, 1000
FLOAT = 4  # bytes per float32
PER_SAMPLE_OUTER = B * NV * NH * FLOAT  # one (B, NH, NV) float32 tensor
PARAMETER = NH * NV * FLOAT  # one W-sized float32 matrix
LIMIT = PER_SAMPLE_OUTER // 64  # "well below": 12.5 MB here, 4x a parameter matrix
ALGOS = ("CD", "PCD", "RDM", "vRDM", "hRDM")


@pytest.fixture(autouse=True)
def one_thread():
    """Keep the test fast on busy machines (oversubscribed OpenMP threads spin)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def allocation_sizes(fn) -> list[int]:
    """Bytes of every CPU allocation made through torch's allocator while ``fn()`` runs."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = prof.profiler.kineto_results.events()
    return [e.nbytes() for e in events if e.name() == "[memory]" and e.nbytes() > 0]


def batches(n: int, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(B, NV, generator=g) < 0.3).float() for _ in range(n)]


def test_the_profiler_sees_a_per_sample_outer_product():
    """Positive control: the detector catches the reference's einsum (at a smaller size)."""
    g = torch.Generator().manual_seed(0)
    h, v = torch.rand(32, 100, generator=g), torch.rand(32, NV, generator=g)
    sizes = allocation_sizes(lambda: torch.einsum("ij,ik->ijk", h, v))
    assert max(sizes) == 32 * 100 * NV * FLOAT


@pytest.mark.parametrize("algo", ALGOS)
def test_an_update_allocates_nothing_batch_by_weights_sized(algo, record_property):
    data = batches(3)
    model = rkm.RKM("mem", NV, NH, k=2, lr=1e-3, max_epochs=1, batch_size=B, train_algo=algo, seed=0, device="cpu")

    def train_three_updates():
        model.max_epochs = model.epoch + 3
        model.train(data, save=False, print_every=10**9)

    sizes = allocation_sizes(train_three_updates)
    assert model.epoch == 3
    largest = max(sizes)
    record_property("largest_allocation_bytes", largest)
    print(f"{algo}: largest single allocation {largest} bytes = {largest / PARAMETER:.2f} x n_hidden*n_visible*4")
    assert largest < LIMIT, (
        f"{algo}: an update allocated {largest} bytes at once; a (batch, n_hidden, n_visible) float32 tensor "
        f"is {PER_SAMPLE_OUTER} bytes and the update should need at most a W-sized {PARAMETER}"
    )
    # The W gradient is allocated every update: if it is missing, the profiler saw nothing.
    assert largest >= PARAMETER, f"{algo}: largest allocation {largest} < the W gradient ({PARAMETER} bytes)"
