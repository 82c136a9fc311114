"""Write the format-2 save points of this folder with an rkm that writes format 2 (run once, by hand).

    PYTHONPATH=OLD_CHECKOUT/src python tests/data/format2.py PREFIX

``format2_main_*`` were written by commit d6b2696 (the main branch before save-point format 3, which
binds a save point to its run) with torch 2.13.0 on the CPU. tests/test_reliability_files.py loads
them and checks the values noted there.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import rkm
from rkm.io.datasets import bars_and_stripes

prefix = sys.argv[1]
here = Path(__file__).parent
data = torch.tensor(bars_and_stripes(4))
models = {
    "pcd_adam_centering": rkm.RKM("f2", 16, 6, k=2, lr=0.02, max_epochs=5, optimizer="Adam", regularization="l2",
                                  batch_size=8, train_algo="PCD", centering=True, average_data=data.mean(0),
                                  offset=0.5, seed=11, device="cpu"),
    "rbm_vrdm": rkm.RBM("f2rbm", 16, 6, lr=0.05, max_epochs=4, batch_size=4, mytype=torch.float64, seed=3,
                        device="cpu"),
}
for label, model in models.items():
    with tempfile.TemporaryDirectory() as folder:
        model.train(data, model_state_path=folder)
        latest = sorted(Path(folder).iterdir(), key=lambda p: int(p.stem.rsplit("_t", 1)[1]))[-1]
        (here / f"{prefix}_{label}.safetensors").write_bytes(latest.read_bytes())
    print(label, model.epoch, float(model.energy), np.asarray(model.W).sum())
