"""Bars-and-stripes 4x4: the exact KL(data || stationary law) of an RKM trained by benchmarks/configs/bars-kl.toml.

    python -m benchmarks.bars_kl                       # 5 seeds, one after the other
    python -m benchmarks.bars_kl --seeds 0 1 --jobs 2  # two seeds, two processes

Each seed trains the configuration (``rkm.app.run.train_run``, its ``model.seed`` replaced) into
``--out/seed-N`` and evaluates the exact ``KL(empirical training data || stationary law of the
Gibbs chain)`` in nats (``rkm.evaluation.exact.kl_divergence``; the 30 patterns, so a uniform model scores
log(65536 / 30) = 7.69). Prints one line per seed and the median; docs/likelihood.md records the
measured numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

CONFIG = Path(__file__).with_name("configs") / "bars-kl.toml"


def run_seed(config_file: Path, out: Path, seed: int) -> tuple[int, float, float]:
    """Train one seed and return ``(seed, KL in nats, training seconds)``."""
    import torch

    torch.set_num_threads(1)
    from rkm.app.config import resolve_config
    from rkm.app.run import load_run, train_run
    from rkm.evaluation import exact

    config = resolve_config(config_file=config_file, overrides={"model": {"seed": seed}, "run": {"progress": False}})
    run_dir = out / f"seed-{seed}"
    start = time.perf_counter()
    train_run(config, run_dir)
    seconds = time.perf_counter() - start
    _, dataset, model = load_run(run_dir)
    return seed, exact.kl_divergence(model, dataset.train), seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", type=Path, default=CONFIG, help=f"TOML configuration (default {CONFIG})")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds (default 0..4)")
    parser.add_argument("--out", type=Path, default=Path("runs/bars-kl"), help="folder of the run folders")
    parser.add_argument("--jobs", type=int, default=1, help="processes at a time (default 1)")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run_seed, [args.config] * len(args.seeds), [args.out] * len(args.seeds), args.seeds))
    for seed, kl, seconds in results:
        print(f"seed {seed}: KL(data || stationary law) = {kl:.4f} nats   (training {seconds:.1f} s)")
    print(f"median over {len(results)} seeds: {statistics.median(kl for _, kl, _ in results):.4f} nats")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
