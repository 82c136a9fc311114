"""Sample quality of the demo preset over many seeds, with and without the fast products.

    python -m benchmarks.demo_seeds --seeds 20 --jobs 2 --out runs/demo-seeds

Trains ``rkm train --preset demo --seed S`` for every seed and each ``fast_matmul``
setting (``auto`` and ``false``), one torch thread per process, ``--jobs`` processes at
a time; runs whose ``summary.json`` exists are kept, so an interrupted study resumes.
Then it samples every final model again with the other setting (same random stream as
the run's own evaluation) and prints, per setting, the FID and reconstruction error
spread, the paired Wilcoxon and Mann-Whitney tests, and how much the sampling setting
alone moves the FID. About 70 s (auto) and 130 s (false) of training per run on one
core of the development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SETTINGS = ("auto", "false")


def train(out: Path, setting: str, seed: int) -> Path:
    run = out / f"{setting}_{seed}"
    if not (run / "summary.json").is_file():
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "rkm", "train", "--preset", "demo", "--seed", str(seed), "--run-dir", str(run),
               "--no-progress", "--fast-matmul", setting]
        with open(out / f"{setting}_{seed}.log", "w") as log:
            subprocess.run(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return run


def resample_fid(run: Path, setting: str) -> float:
    """FID of the run's final model sampled with ``setting``, as the run's own evaluation draws."""
    import torch

    from rkm.app.run import load_run
    from rkm.evaluation import metrics
    from rkm.hyperparams import fast_matmul_setting
    from rkm.training import evaluation_rng

    torch.set_num_threads(1)
    config, dataset, model = load_run(run)
    model.fast_matmul = fast_matmul_setting(setting)
    r = config["run"]
    n_eval = min(r["n_eval"], len(dataset.test))
    with evaluation_rng(model):
        samples = model.generate(max(r["n_generate"], n_eval), r["generate_k"])
    return metrics.evaluate_samples(dataset.test[:n_eval], samples[:n_eval], dataset.image_shape, include_fid=True)["fid"]


def _resample(run: Path, setting: str) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    code = f"from benchmarks.demo_seeds import resample_fid; print(resample_fid({str(run)!r}, {setting!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def spread(values: list[float], fmt: str) -> str:
    q1, _, q3 = statistics.quantiles(values, n=4)
    return (f"median {statistics.median(values):{fmt}}, quartiles {q1:{fmt}} to {q3:{fmt}}, "
            f"range {min(values):{fmt}} to {max(values):{fmt}}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.demo_seeds", description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 (default 20)")
    p.add_argument("--jobs", type=int, default=2, help="training processes at a time (default 2)")
    p.add_argument("--out", type=Path, default=Path("runs/demo-seeds"))
    a = p.parse_args(argv)
    if a.seeds < 2 or a.jobs < 1:
        p.error("--seeds must be >= 2 and --jobs >= 1")
    from scipy import stats

    a.out.mkdir(parents=True, exist_ok=True)
    tasks = [(s, seed) for s in SETTINGS for seed in range(a.seeds)]
    with ThreadPoolExecutor(a.jobs) as pool:
        runs = dict(zip(tasks, pool.map(lambda t: train(a.out, *t), tasks)))
    summary = {t: json.loads((run / "summary.json").read_text()) for t, run in runs.items()}
    fid = {s: [summary[s, i]["sample_quality_vs_test"]["fid"] for i in range(a.seeds)] for s in SETTINGS}
    recon = {s: [summary[s, i]["test_reconstruction_error_k1"] for i in range(a.seeds)] for s in SETTINGS}
    other = dict(zip(SETTINGS, SETTINGS[::-1]))
    with ThreadPoolExecutor(a.jobs) as pool:
        cross = dict(zip(tasks, pool.map(lambda t: _resample(runs[t], other[t[0]]), tasks)))

    print(f"demo preset, seeds 0 to {a.seeds - 1}, one thread per run ({a.out})")
    for s in SETTINGS:
        print(f"fast_matmul={s}: FID {spread(fid[s], '.0f')}; reconstruction {spread(recon[s], '.4f')}")
    higher = sum(x > y for x, y in zip(fid["auto"], fid["false"]))
    print(f"paired by seed: auto gave the higher FID in {higher} of {a.seeds}; "
          f"Wilcoxon p = {stats.wilcoxon(fid['auto'], fid['false']).pvalue:.3f}; "
          f"Mann-Whitney p = {stats.mannwhitneyu(fid['auto'], fid['false']).pvalue:.3f}; "
          f"reconstruction Wilcoxon p = {stats.wilcoxon(recon['auto'], recon['false']).pvalue:.3f}")
    moves = [abs(cross[s, i] - fid[s][i]) / fid[s][i] for s in SETTINGS for i in range(a.seeds)]
    print(f"sampling a trained model with the other setting moves its FID by {spread(moves, '.1%')}")
    resampled = {s: [cross[s, i] for i in range(a.seeds)] for s in SETTINGS}
    print("trained with auto, sampled with false: FID " + spread(resampled["auto"], ".0f"))
    print("trained with false, sampled with auto: FID " + spread(resampled["false"], ".0f"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
