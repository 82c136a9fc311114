"""CPU time per training update of two or more checkouts of rkm, paired, in one run.

    python -m benchmarks.checkouts --src base=/path/old/src --src new=src --rounds 4

For every configuration of :data:`CONFIGS` and every round, each checkout trains a fresh
``rkm.RKM`` in its own process (one torch thread, ``PYTHONPATH`` set to its ``src``), in an
order that rotates between rounds; the CPU time of ``n + 20`` updates less that of 20
(``time.process_time``, so start-up, imports and warm-up drop out) gives the seconds per
update. It prints, per configuration, the median time of each checkout and the median (and
range) of its per-round ratio to the first checkout, then the median ratio over all
configurations and rounds. This is the paired check behind the architecture issue's "within
5% of the old update time" (``docs/architecture.md``); both sides run the same code from
this file, so only the library differs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = ((50, 64, "CD", 1, 600), (50, 64, "PCD", 1, 600), (50, 64, "vRDM", 1, 600), (500, 64, "PCD", 1, 200),
           (500, 64, "CD", 10, 40), (1000, 256, "PCD", 1, 40))
"""(n_hidden, batch_size, train_algo, k, timed updates) of 784-visible RKMs on random 0/1 data."""

WARMUP = 20
"""Updates subtracted from every measurement (first products, allocation)."""


def seconds_per_update(n_hidden: int, batch: int, algo: str, k: int, n: int) -> float:
    """CPU seconds per update of the ``rkm`` on the path (run in a worker process)."""
    import torch

    import rkm

    torch.set_num_threads(1)
    data = (torch.rand(4096, 784, generator=torch.Generator().manual_seed(0)) < 0.2).float()

    def cpu(updates: int) -> float:
        model = rkm.RKM(model_name="b", n_visible=784, n_hidden=n_hidden, k=k, lr=0.01, max_epochs=updates,
                        batch_size=batch, train_algo=algo, seed=0, device="cpu")
        start = time.process_time()
        model.train(data, save=False, print_every=10**12)
        return time.process_time() - start

    cpu(WARMUP)
    return (cpu(n + WARMUP) - cpu(WARMUP)) / n


def measure(src: Path, config: tuple) -> float:
    """One measurement of ``config`` with the checkout whose package folder is ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "benchmarks.checkouts", "--worker", json.dumps(config)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parent.parent)
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checkouts", description=__doc__.splitlines()[0])
    parser.add_argument("--src", action="append", default=[], metavar="NAME=PATH",
                        help="a checkout's src folder (at least two; the first is the reference)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds per configuration (default 4)")
    parser.add_argument("--quick", action="store_true", help="the first configuration only, 30 updates")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(seconds_per_update(*json.loads(args.worker)))
        return 0
    sides = [tuple(s.split("=", 1)) for s in args.src]
    if len(sides) < 2 or any(len(s) != 2 or not (Path(s[1]) / "rkm").is_dir() for s in sides):
        parser.error("give at least two --src NAME=PATH, each PATH a folder holding the rkm package")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    configs = [(*CONFIGS[0][:4], 30)] if args.quick else CONFIGS
    ratios: dict[str, list[float]] = {name: [] for name, _ in sides[1:]}
    for config in configs:
        times: dict[str, list[float]] = {name: [] for name, _ in sides}
        for r in range(args.rounds):
            for name, src in sides[r % len(sides):] + sides[: r % len(sides)]:
                times[name].append(measure(Path(src), config))
        reference = times[sides[0][0]]
        cells = [f"{name} {statistics.median(t) * 1e3:.3f} ms" for name, t in times.items()]
        for name in ratios:
            paired = [t / ref for t, ref in zip(times[name], reference)]
            ratios[name] += paired
            cells.append(f"{name}/{sides[0][0]} {statistics.median(paired):.3f} [{min(paired):.2f}, {max(paired):.2f}]")
        print(f"{config}: " + "; ".join(cells), flush=True)
    for name, values in ratios.items():
        print(f"median paired ratio {name}/{sides[0][0]} over {len(values)} measurements: "
              f"{statistics.median(values):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
