"""The learning-rule study (``benchmarks.learning_rule``) runs, resumes and writes what docs/learning-rule.md reads.

Tiny machines (4 hidden units, a few updates) in this process, so the study cannot rot; the measured
study itself is in docs/learning-rule.md.
"""

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import learning_rule as study  # noqa: E402

TINY = study.Settings(
    bars=study.Data(n_hidden=4, updates=20, lr=0.05, batch_size=8, k=1, train_algo="PCD", model_beta=3.0,
                    dead_zones=(0.0, 0.3), conductance_range=(0.01, 10.0)),
    mnist=study.Data(n_hidden=4, updates=10, lr=0.02, batch_size=64, k=2, train_algo="RDM", model_beta=0.2,
                     centering=True, dead_zones=(0.0,), conductance_range=(0.001, 1.0)),
    samples=10)


def test_the_configurations():
    names = list(study.configs(TINY.bars))
    assert names[:4] == ["sgd", "local", "sgd-levels", "local-levels"]
    assert names[4:] == [f"pulse-L{L}-dz{d}" for L in (8, 32, 128) for d in ("0", "0.3")]
    assert study.configs(TINY.bars)["pulse-L32-dz0.3"] == {"learning_rule": "local", "optimizer": "pulse",
                                                          "conductance_levels": 32, "pulse_dead_zone": 0.3}


def test_a_tiny_study_runs_resumes_and_plots(tmp_path):
    rows = study.run_study(TINY, seeds=1, out=tmp_path, jobs=1)
    assert len(rows) == 10 + 7
    by = {(r["dataset"], r["config"]): r for r in rows}
    # the two rules take the same steps on ideal comparators (float32: to rounding); pulses only where sent
    assert by[("bars", "sgd")]["exact_kl"] == pytest.approx(by[("bars", "local")]["exact_kl"], rel=1e-5)
    for r in rows:
        assert (r["pulses_per_device"] > 0) == r["config"].startswith("pulse")
        assert 0 <= r["pulses_per_device_last"] <= 1 and r["energy_per_update_j"] > 0 and r["time_per_update_s"] > 0
        if r["dataset"] == "bars":
            assert r["exact_kl"] > 0 and r["fid"] is None
        else:
            assert 0 <= r["test_error"] <= 1 and r["fid"] >= 0 and 0 <= r["label_entropy"] <= math.log(10)
    assert study.run_study(TINY, seeds=1, out=tmp_path, jobs=1) == rows  # done rows are not run again
    summary = study.summarise(rows, TINY)
    assert [e["config"] for e in summary["mnist"]][:2] == ["sgd", "local"]
    table = study.markdown(summary)
    assert "| bars | seeds | exact_kl |" in table and "| pulse-L8-dz0.3 | 1 |" in table
    assert study.plot(rows, TINY, tmp_path / "learning_rule.png").stat().st_size > 10_000
    with pytest.raises(SystemExit, match="other settings"):
        study.run_study(study.Settings(samples=11), seeds=1, out=tmp_path, jobs=1)


def test_the_two_rules_are_identical_in_float64():
    difference, kl_algorithmic, kl_local = study.identity(updates=20)
    assert difference < 1e-12 and kl_algorithmic == pytest.approx(kl_local, rel=1e-10)
