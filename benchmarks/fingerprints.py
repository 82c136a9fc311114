"""Fingerprints of training runs: SHA-256 of the final state of many small runs from fixed seeds.

    python -m benchmarks.fingerprints --out fingerprints.json       # on one checkout
    python -m benchmarks.fingerprints --compare a.json b.json       # bit-identical or not, run by run

Two checkouts that train bit-identically give identical files. The runs use only the public
API (the seed constructor, ``train``, ``W``/``v_bias``/``h_bias``, ``energy``, ``power_f``,
``power_b``, the generator's state), so any two versions of rkm can be compared. They cover
every negative phase, both optimisers, L1/L2, centering, every comparator, offsets, both
energies, float32 with the fast products at the demo's shapes, and the ``rkm.app.run`` machinery
(learning-rate annealing, the metrics log) on the demo preset of 2026-11 (``DEMO_PRESET_2026_11``)
shortened to 300 updates.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ALGOS = ("CD", "PCD", "RDM", "vRDM", "hRDM")


def _runs() -> dict[str, dict]:
    runs: dict[str, dict] = {}
    for algo in ALGOS:
        runs[f"{algo}-sgd"] = {"train_algo": algo}
        runs[f"{algo}-adam-l1l2"] = {"train_algo": algo, "optimizer": "Adam", "regularization": True, "l1_factor": 1e-4}
    runs["PCD-centering"] = {"train_algo": "PCD", "centering": True}
    runs["PCD-sgd-l2-k3"] = {"train_algo": "PCD", "regularization": "l2", "k": 3}
    for sampling in ("multi-threshold", "single-threshold"):
        for distribution in ("gaussian", "uniform"):
            runs[f"{sampling}-{distribution}"] = {"sampling": sampling, "distribution": distribution}
    runs["single-threshold-batch"] = {"sampling": "single-threshold", "threshold_sharing": "batch"}
    runs["offset-0.7-unscaled"] = {"offset": 0.7, "layer_scaled": False}
    runs["hopfield"] = {"energy_type": "hopfield"}
    runs["deterministic"] = {"model_beta": 2000.0, "train_algo": "CD"}
    runs["float64"] = {"mytype": torch.float64, "train_algo": "PCD", "offset": 0.3}
    return runs


def _digest(model) -> str:
    h = hashlib.sha256()
    for tensor in (model.W, model.v_bias, model.h_bias, model.energy, model.power_f, model.power_b,
                   model.generator.get_state()):
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(model.epoch).encode())
    return h.hexdigest()


def fingerprints() -> dict[str, str]:
    """Digest of the final state of every run (CPU, one thread)."""
    import rkm
    from rkm.io.datasets import load_dataset

    torch.set_num_threads(1)
    digits = load_dataset("digits").train[:512].astype(np.float32)
    out: dict[str, str] = {}
    for name, settings in _runs().items():
        settings = dict(settings)
        dtype = settings.pop("mytype", torch.float32)
        data = torch.tensor(digits, dtype=dtype)
        centred = settings.get("centering", False)
        model = rkm.RKM(name, 64, 40, lr=0.02, batch_size=32, max_epochs=120, seed=7, device="cpu", mytype=dtype,
                        average_data=data.mean(0) if centred else None, **{"k": 2, **settings})
        model.train(data, save=False)
        out[name] = _digest(model)
    mnist = torch.tensor(load_dataset("mnist-5k").train[:1024], dtype=torch.float32)
    model = rkm.RKM("demo-shapes", 784, 1000, lr=0.01, batch_size=64, train_algo="PCD", model_beta=0.2,
                    max_epochs=40, seed=0, device="cpu")
    model.train(mnist, save=False)
    out["demo-shapes-fast"] = _digest(model)
    out["demo-preset-300"] = _demo_run()
    return out


DEMO_PRESET_2026_11 = {
    "model": {"n_hidden": 1000, "k": 1, "lr": 0.01, "max_epochs": 20000, "batch_size": 64, "train_algo": "PCD",
              "model_beta": 0.2, "optimizer": "SGD", "seed": 0},
    "data": {"dataset": "mnist-5k"},
    "run": {"name": "demo", "log_every": 500, "generate_k": 1000, "lr_final": 0.001, "anneal_start": 0.7},
}
"""The demo preset these fingerprints were first recorded with (``PRESETS['demo']`` has moved on)."""


def _demo_run() -> str:
    from rkm import load_model
    from rkm.app.config import resolve_config
    from rkm.app.run import train_run

    old = DEMO_PRESET_2026_11
    config = resolve_config(overrides={"model": {**old["model"], "max_epochs": 300}, "data": old["data"],
                                       "run": {**old["run"], "progress": False, "log_every": 100, "n_generate": 16,
                                               "generate_k": 10, "n_eval": 50}})
    with tempfile.TemporaryDirectory() as tmp:
        train_run(config, Path(tmp) / "run")
        found, model = load_model("demo", model_state_path=Path(tmp) / "run" / "model_states")
        assert found
        return _digest(model)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the fingerprints to this JSON file")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="compare two fingerprint files")
    args = parser.parse_args(argv)
    if args.compare:
        a, b = (json.loads(p.read_text()) for p in args.compare)
        differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        print(f"{len(set(a) | set(b)) - len(differ)} runs identical, {len(differ)} differ" +
              (": " + ", ".join(differ) if differ else ""))
        return 1 if differ else 0
    result = fingerprints()
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
