"""The estimators' defaults on the digits pipeline: test accuracy against ``model_beta`` over seeds.

    OMP_NUM_THREADS=1 python -m benchmarks.sklearn_defaults --seeds 5 --jobs 2

The pipeline of ``scripts/sklearn_digits.py``: scikit-learn's 1797 8x8 digits scaled to
[0, 1], split 75/25 (``train_test_split(random_state=0)``), features -> LogisticRegression
(``max_iter=2000``). The features are ``BernoulliRKM(model_beta=B, random_state=S)`` with
every other parameter at its default (or ``--set name=value``), for each ``B`` of ``--betas``
and each seed ``S``; ``RBMEstimator`` and scikit-learn's ``BernoulliRBM`` at their defaults
(same seeds; ``--set`` values of the parameters all three share, such as ``n_components``, too)
are the reference. One process per fit, ``--jobs`` at a time, one torch thread
each. Prints, per setting, the test accuracy (mean, standard deviation, minimum, maximum over
the seeds), the share of saturated P(h = 1 | v) (below 0.01 or above 0.99) on the training
digits and the mean fit time, as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def fit_one(spec: dict) -> dict:
    """Fit and score one pipeline (in this process); ``spec``: estimator, seed, parameters."""
    import torch
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import BernoulliRBM
    from sklearn.pipeline import Pipeline

    from rkm.sklearn import BernoulliRKM, RBMEstimator

    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    cls = {"BernoulliRKM": BernoulliRKM, "RBMEstimator": RBMEstimator, "BernoulliRBM": BernoulliRBM}[spec["estimator"]]
    features = cls(random_state=spec["seed"], **spec["params"])
    pipe = Pipeline([("features", features), ("logistic", LogisticRegression(max_iter=2000))])
    start = time.perf_counter()
    pipe.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    p = features.transform(X_train)
    return {**spec, "accuracy": float(pipe.score(X_test, y_test)), "seconds": seconds,
            "saturated": float(((p < 0.01) | (p > 0.99)).mean())}


def _run(spec: dict) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.sklearn_defaults", "--one", json.dumps(spec)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True,
                         env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def _value(text: str) -> object:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="random_state 0..N-1 (default 5)")
    parser.add_argument("--betas", default="0.02,0.05,0.1,0.2,0.5,1", help="model_beta values of BernoulliRKM")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="another BernoulliRKM parameter for every fit")
    parser.add_argument("--jobs", type=int, default=2, help="fits at a time (default 2)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit_one(json.loads(args.one))))
        return
    extra = {k: _value(v) for k, v in (item.split("=", 1) for item in args.set)}
    specs = [{"estimator": "BernoulliRKM", "params": {**extra, "model_beta": float(b)}, "seed": s}
             for b in args.betas.split(",") for s in range(args.seeds)]
    common = {k: v for k, v in extra.items() if k in ("n_components", "learning_rate", "batch_size", "n_iter")}
    specs += [{"estimator": name, "params": common, "seed": s} for name in ("RBMEstimator", "BernoulliRBM")
              for s in range(args.seeds)]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(_run, specs))
    groups: dict[str, list[dict]] = {}
    for r in results:
        label = r["estimator"] + "".join(f", {k}={v}" for k, v in r["params"].items())
        groups.setdefault(label, []).append(r)
    print(f"| features ({args.seeds} seeds) | test accuracy: mean | sd | min | max | saturated P(h given v) "
          "| fit seconds |\n|---|---:|---:|---:|---:|---:|---:|")
    for label, rs in groups.items():
        acc = [r["accuracy"] for r in rs]
        print(f"| {label} | {statistics.mean(acc):.3f} | {statistics.stdev(acc) if len(acc) > 1 else 0:.3f} | "
              f"{min(acc):.3f} | {max(acc):.3f} | {statistics.mean(r['saturated'] for r in rs):.1%} | "
              f"{statistics.mean(r['seconds'] for r in rs):.1f} |")


if __name__ == "__main__":
    main()
