"""The device study (``benchmarks.nonideal``) runs, resumes and writes what docs/nonideal.md reads.

A tiny machine (4 hidden units, 3 updates) in one worker process, so the study cannot rot; the
measured study itself is in docs/nonideal.md.
"""

import math
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import nonideal  # noqa: E402

TINY = nonideal.Settings(n_hidden=4, updates=3, samples=10, gibbs=1)


def test_the_sweeps_and_the_grid():
    sweeps = nonideal.points((2, 8, None), (0.0, 0.1), grid=False)
    assert [(p.kind, p.levels_label, p.variability) for p in sweeps] == [
        ("ideal", "none", 0.0), ("range", "none", 0.0), ("levels", "2", 0.0), ("levels", "8", 0.0),
        ("variability", "none", 0.1)]
    grid = nonideal.points((2, None), (0.0, 0.1), grid=True)
    assert len(grid) == 1 + 4 and {p.kind for p in grid[1:]} == {"grid"}


def test_label_entropy_in_bits():
    assert nonideal.label_entropy([0, 1, 2, 3]) == pytest.approx(2.0)
    assert nonideal.label_entropy(list(range(10)) * 3) == pytest.approx(math.log2(10))
    single = nonideal.label_entropy([5, 5, 5])
    assert single == 0.0 and math.copysign(1.0, single) == 1.0


def test_a_tiny_study_runs_resumes_and_plots(tmp_path):
    todo = nonideal.points((2,), (0.1,), grid=False)[1:3]  # the range alone and 2 levels
    rows = nonideal.run_study(TINY, todo, seeds=1, out=tmp_path, jobs=1)
    assert sorted((r["kind"], r["conductance_levels"], r["seed"]) for r in rows) == [("levels", "2", 0),
                                                                                      ("range", "none", 0)]
    for r in rows:
        assert 0 <= r["test_error"] <= 1 and r["fid"] >= 0 and 0 <= r["label_entropy_bits"] <= math.log2(10)
        assert r["energy"] > 0
    # done rows are not run again
    assert nonideal.run_study(TINY, todo, seeds=1, out=tmp_path, jobs=1) == rows
    summary = nonideal.summarise(rows)
    assert [e["kind"] for e in summary] == ["range", "levels"]
    table = nonideal.markdown(summary)
    assert "| range | none | 0 | 1 |" in table and "| levels | 2 | 0 | 1 |" in table and "model.energy" in table
    assert nonideal.plot(rows, tmp_path / "nonideal.png", TINY).stat().st_size > 10_000
    with pytest.raises(SystemExit, match="other settings"):
        nonideal.run_study(nonideal.Settings(n_hidden=5, updates=3), todo, seeds=1, out=tmp_path, jobs=1)


def test_trends_are_rank_correlations_over_the_runs():
    rows = [{"kind": "range", "conductance_levels": "none", "variability": 0.0, "seed": 0, "test_error": 0.05,
             "fid": 100.0, "label_entropy_bits": 2.0, "energy": 1.0}]
    rows += [{"kind": "levels", "conductance_levels": str(L), "variability": 0.0, "seed": 0, "test_error": 0.05 + i,
              "fid": 500.0 - 50 * i, "label_entropy_bits": 0.5 * i, "energy": 9.0 - i} for i, L in enumerate((2, 4, 8))]
    lines = nonideal.trends(rows)
    assert "fid against levels: Spearman rho -1.00" in lines[1] and "(4 runs)" in lines[1]
    assert "label_entropy_bits against levels: Spearman rho +1.00" in lines[2]
    assert not any("variability" in line for line in lines)  # one spread only: no trend to measure
