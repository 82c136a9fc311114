"""Digits features from rkm.sklearn in a Pipeline with LogisticRegression, beside scikit-learn's BernoulliRBM.

Usage (from the repository root)::

    OMP_NUM_THREADS=1 python scripts/sklearn_digits.py

scikit-learn's 1797 8x8 digits scaled to [0, 1], split 75/25 with
``train_test_split(random_state=0)``; every feature extractor has 100 hidden units,
learning rate 0.06, 20 passes and ``random_state=0``. Prints the test accuracy and the
fit time of each pipeline, then how saturated each machine's features are on the
training digits (the share of P(h = 1 | v) below 0.01 or above 0.99, and the number of
distinct hidden patterns [P > 0.5]). ``docs/sklearn.md`` has the same pipeline over five seeds
and a range of ``model_beta`` (``python -m benchmarks.sklearn_defaults``).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM
from sklearn.pipeline import Pipeline

from rkm.sklearn import BernoulliRKM, RBMEstimator


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0)
    common = dict(n_components=100, learning_rate=0.06, n_iter=20, random_state=0)
    rows = [
        ("pixels (no features)", None),
        ("sklearn BernoulliRBM", BernoulliRBM(**common)),
        ("rkm RBMEstimator", RBMEstimator(**common)),
        ("rkm BernoulliRKM (model_beta=0.2, its default)", BernoulliRKM(**common)),
        ("rkm BernoulliRKM, model_beta=1 (pyrkm's default)", BernoulliRKM(**common, model_beta=1.0)),
    ]
    print("| features | test accuracy | fit seconds |\n|---|---:|---:|")
    for name, features in rows:
        logistic = LogisticRegression(max_iter=2000)
        model = logistic if features is None else Pipeline([("features", features), ("logistic", logistic)])
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        print(f"| {name} | {model.score(X_test, y_test):.3f} | {seconds:.1f} |")
    for name, features in rows[1:]:
        p = features.transform(X_train)
        saturated = float(((p < 0.01) | (p > 0.99)).mean())
        patterns = len(np.unique(p > 0.5, axis=0))
        print(f"{name}: {saturated:.1%} of P(h=1|v) saturated, {patterns} distinct hidden patterns")


if __name__ == "__main__":
    main()
