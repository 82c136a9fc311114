"""The CUDA path: the same code on a GPU (skipped without one)."""

import numpy as np
import pytest
import torch

import rkm
from rkm.circuits.netlist import solve_pass
from rkm.evaluation.metrics import reconstruction_error
from rkm.io.datasets import bars_and_stripes

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
BAS = torch.tensor(bars_and_stripes(4))


def test_every_tensor_and_the_generator_live_on_the_gpu():
    model = rkm.RKM("gpu", 16, 8, train_algo="PCD", optimizer="Adam", batch_size=4, seed=0, device="cuda")
    assert model.W.is_cuda and model.persistent_chains.is_cuda and model.m_dW.is_cuda
    assert model.generator.device.type == "cuda"
    p, h = model.v_to_h(BAS[:3])
    assert p.is_cuda and h.is_cuda
    assert isinstance(model.generate(5, 3), np.ndarray)


def test_gpu_physics_matches_the_circuit():
    model = rkm.RKM("gpu", 16, 8, offset=0.5, mytype=torch.float64, seed=0, device="cuda")
    v = BAS[:5].double()
    solved = solve_pass(model.W, model.v_bias, model.h_bias, v, g_v=model.g_v, g_h=model.g_h, offset=0.5)
    np.testing.assert_allclose(model.power_forward(v).cpu().numpy(), solved.power, atol=1e-10)
    np.testing.assert_allclose(model.delta_eh(v).cpu().numpy() / 16, solved.voltages, atol=1e-10)


def test_gpu_training_learns_saves_and_resumes_exactly(tmp_path):
    def make():
        return rkm.RKM("gpu", 16, 32, k=3, lr=0.05, max_epochs=300, batch_size=16, train_algo="PCD", seed=0,
                       device="cuda")

    full = make()
    full.train(BAS, model_state_path=str(tmp_path / "a"))
    part = make()
    part.max_epochs = 150
    part.train(BAS, model_state_path=str(tmp_path / "b"))
    _, resumed = rkm.load_model("gpu", model_state_path=str(tmp_path / "b"), device="cuda")
    resumed.max_epochs = 300
    resumed.train(BAS, model_state_path=str(tmp_path / "b"))
    torch.testing.assert_close(resumed.W, full.W)
    assert reconstruction_error(full, BAS) < 0.25


def test_moving_a_model_between_devices():
    model = rkm.RKM("mv", 16, 8, seed=0, device="cpu")
    model.to("cuda")
    assert model.W.is_cuda and model.generator.device.type == "cuda"
    model.to("cpu")
    assert not model.W.is_cuda and model.generator.device.type == "cpu"
