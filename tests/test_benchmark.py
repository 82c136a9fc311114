"""The training-step benchmark runs and writes parseable results (so it cannot rot).

Runs ``benchmarks.train_step`` in ``--quick`` mode (one tiny rkm configuration, a few
updates, one thread) into a temporary folder. pyrkm is optional: the test that needs it
is skipped when it is not installed (``bash benchmarks/setup.sh`` installs it).
"""

import csv
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `benchmarks` is a folder of the repository, not an installed package
    sys.path.insert(0, str(REPO))

from benchmarks import train_step  # noqa: E402


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def markdown_table(path: Path, first_header: str = "n_hidden") -> list[dict]:
    """The per-update table of the Markdown report as a list of {header: cell}."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    assert set(lines[start + 1].replace("|", "").replace("-", "").replace(":", "")) <= {""}, lines[start + 1]
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells)))
    return rows


def run_quick(tmp_path, *extra):
    code = train_step.main(["--quick", "--threads", "1", "--out", str(tmp_path), *extra])
    assert code == 0
    return read_csv(tmp_path / "train_step.csv"), tmp_path / "train_step.md"


def test_quick_run_writes_csv_and_markdown(tmp_path):
    rows, md = run_quick(tmp_path)
    assert {r["lib"] for r in rows} == {"rkm", "rkm-noacct"}
    for r in rows:
        assert r["status"] == "ok", r
        assert (int(r["n_hidden"]), int(r["batch"]), r["algo"], int(r["k"])) == (50, 64, "PCD", 1)
        for field in ("ms_median", "ms_min", "ms_max", "ms_q1", "ms_q3", "updates_per_s", "samples_per_s", "gflops",
                      "gemm_gflops", "gemm_fraction"):
            value = float(r[field])
            assert math.isfinite(value) and value > 0, (field, r[field])
        assert float(r["ms_min"]) <= float(r["ms_median"]) <= float(r["ms_max"])
        assert int(r["repeats"]) == 2 and int(r["updates_per_repeat"]) >= 1
        assert r["dtype"] == "float32"
    rkm_row = next(r for r in rows if r["lib"] == "rkm")
    assert float(rkm_row["peak_rss_mib"]) >= 0
    assert -1 < float(rkm_row["accounting_share"]) < 1
    assert float(rkm_row["samples_per_s"]) == pytest.approx(64 * float(rkm_row["updates_per_s"]), rel=1e-4)

    table = markdown_table(md)
    assert [t["library"] for t in table] == ["rkm", "rkm-noacct"]
    assert all(float(t["ms/update"]) > 0 for t in table)
    text = md.read_text()
    assert "## Summary" in text and "Energy accounting share" in text
    raw = json.loads((tmp_path / "raw.json").read_text())
    (worker,) = raw["workers"]  # quick: one rkm worker, which also timed the same-shape GEMM
    assert worker["ok"] and worker["spec"]["gemm"] and worker["gemm"]["gflops"] > 0
    assert float(rkm_row["gemm_gflops"]) == pytest.approx(worker["gemm"]["gflops"], rel=1e-4)
    assert "| 64x784x50 | 1 |" in text

    from benchmarks.plot import plot

    png = plot(tmp_path / "train_step.csv", tmp_path / "train_step.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_library_that_is_not_importable_is_skipped_with_a_note(tmp_path, monkeypatch):
    real = train_step.library_available
    monkeypatch.setattr(
        train_step, "library_available",
        lambda lib: (False, "pyrkm is not importable here: skipped") if lib == "pyrkm" else real(lib),
    )
    rows, md = run_quick(tmp_path, "--libs", "pyrkm")  # nothing left to time
    assert rows == []
    text = md.read_text()
    assert "pyrkm is not importable here: skipped" in text
    assert "n/a (pyrkm not measured)" in text


@pytest.mark.skipif(importlib.util.find_spec("pyrkm") is None, reason="pyrkm not installed (bash benchmarks/setup.sh)")
def test_every_library_side_by_side(tmp_path):
    rows, md = run_quick(tmp_path, "--libs", "rkm", "pyrkm", "sklearn")
    libs = {r["lib"]: r for r in rows}
    assert set(libs) == {"rkm", "rkm-noacct", "pyrkm", "sklearn", "sklearn-fit32"}
    assert all(r["status"] == "ok" and float(r["ms_median"]) > 0 for r in rows), rows
    rkm_row = libs["rkm"]
    for field in ("speedup_vs_pyrkm", "speedup_vs_sklearn", "speedup_vs_sklearn_fit32"):
        assert float(rkm_row[field]) > 0
    assert float(rkm_row["speedup_vs_pyrkm"]) == pytest.approx(
        float(libs["pyrkm"]["ms_median"]) / float(rkm_row["ms_median"]), rel=1e-3)
    assert libs["sklearn"]["dtype"] == "float64" and libs["sklearn-fit32"]["dtype"] == "float32"
    assert "Speedup of rkm over pyrkm" in md.read_text()


def test_the_torchvision_stub_imports_and_refuses_to_run():
    """In a fresh interpreter: torchvision.* imports as a stub whose functions raise."""
    code = (
        "from benchmarks.pyrkm_compat import install_torchvision_stub, TorchvisionStubError\n"
        "assert install_torchvision_stub()\n"
        "from torchvision.models import inception_v3\n"
        "import torchvision.transforms as T\n"
        "try:\n"
        "    inception_v3(pretrained=True)\n"
        "except TorchvisionStubError as e:\n"
        "    assert 'stub' in str(e)\n"
        "else:\n"
        "    raise SystemExit('the stub did not raise')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


def test_helpers():
    assert train_step.flops_per_update(256, 500, 1) == 2 * 3 * 256 * 784 * 500
    assert train_step.flops_per_update_all(256, 500, 10) == 2 * 23 * 256 * 784 * 500
    q = train_step.quantiles([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (q["min"], q["q1"], q["median"], q["q3"], q["max"]) == (1.0, 2.0, 3.0, 4.0, 5.0)

    window = train_step._Window(["a", "b", "c"])
    assert list(window.take(2)) == ["a", "b"] and len(window) == 2
    assert list(window.take(4)) == ["c", "a", "b", "c"]

    cfg = dict(n_hidden=500, batch=256, algo="PCD", k=1)
    rows = [
        train_step.make_row("rkm", cfg, 1, [10.0, 11.0, 9.0], [5, 5, 5], 2**20, gemm_gflops=100.0),
        train_step.make_row("rkm-noacct", cfg, 1, [9.0, 9.0, 9.0], [5, 5, 5], 2**20),
        train_step.make_row("pyrkm", cfg, 1, [500.0], [1], 2**30),
        train_step.make_row("sklearn", cfg, 1, [20.0], [1], 0),
    ]
    train_step.add_comparisons(rows)
    rkm_row = rows[0]
    assert rkm_row["speedup_vs_pyrkm"] == pytest.approx(50.0)
    assert rkm_row["speedup_vs_sklearn"] == pytest.approx(2.0)
    assert rkm_row["accounting_share"] == pytest.approx(0.1)
    assert rkm_row["gemm_fraction"] == pytest.approx(rkm_row["gflops"] / 100.0)
    assert rkm_row["peak_rss_mib"] == pytest.approx(1.0) and rows[1]["peak_rss_mib"] == ""
    summary = "\n".join(train_step.summarize(rows, {}, []))
    assert "median **50.0x**" in summary and "2.00x" in summary


def test_demo_seeds_arguments_and_spread():
    """The seed study trains for minutes per run (on demand only); its argument checks and summary line are tested here."""
    from benchmarks import demo_seeds

    with pytest.raises(SystemExit):
        demo_seeds.main(["--seeds", "1"])
    assert demo_seeds.spread([4.0, 1.0, 3.0, 2.0, 5.0], ".1f") == "median 3.0, quartiles 1.5 to 4.5, range 1.0 to 5.0"


def test_quality_study_trains_evaluates_resumes_and_reports(tmp_path, monkeypatch):
    """One tiny protocol through the whole quality study: a run folder, its evaluation (500 samples
    from noise labelled by the shipped classifier), the CSV, the plot and the median table; a
    second call keeps the finished run."""
    from benchmarks import quality

    with pytest.raises(SystemExit):
        quality.main(["--protocols", "no-such-protocol"])
    tiny = quality.Protocol("tiny", 10, "20 hidden, 6 updates", {
        "model.n_hidden": 20, "model.max_epochs": 6, "model.train_algo": "RDM", "model.k": 2,
        "model.centering": True, "run.generate_k": 2, "run.log_every": 3})
    assert "model.centering=true" in quality.command(tiny, 3, tmp_path / "r")
    assert "model.n_hidden=20" in quality.command(tiny, 3, tmp_path / "r")
    monkeypatch.setattr(quality, "PROTOCOLS", (tiny,))
    out, table = tmp_path / "runs", tmp_path / "q.csv"
    args = ["--protocols", "tiny", "--seeds", "1", "--jobs", "1", "--out", str(out), "--csv", str(table),
            "--png", str(tmp_path / "q.png")]
    assert quality.main(args) == 0
    (row,) = list(csv.DictReader(table.open()))
    assert row["protocol"] == "tiny" and row["updates"] == "6" and row["generate_k"] == "2"
    assert 0.0 <= float(row["label_entropy"]) <= math.log(10) + 1e-9 and float(row["fid"]) > 0
    assert float(row["energy_j"]) > 0 and (tmp_path / "q.png").stat().st_size > 0
    stamp = (out / "tiny_s0" / "quality.json").stat().st_mtime_ns
    assert quality.main(args) == 0
    assert (out / "tiny_s0" / "quality.json").stat().st_mtime_ns == stamp
    assert quality.table(quality.read_all(out)).splitlines()[2].startswith("| tiny | 1 |")
    again = quality.resample(out / "tiny_s0", [1, 2])
    assert [k for k, *_ in again] == [1, 2]
    assert again[1][3] == pytest.approx(float(row["fid"]))  # the same draw as the evaluation at generate_k


def test_checkouts_pairs_two_checkouts_and_reports_their_ratio():
    src = str(REPO / "src")
    done = subprocess.run([sys.executable, "-m", "benchmarks.checkouts", "--src", f"a={src}", "--src", f"b={src}",
                           "--quick", "--rounds", "2"], capture_output=True, text=True, cwd=REPO, check=True)
    row, total = done.stdout.strip().splitlines()
    assert row.startswith("(50, 64, 'CD', 1, 30): a ") and " b/a " in row
    ratio = float(total.rsplit(" ", 1)[1])
    assert total.startswith("median paired ratio b/a over 2 measurements") and 0 < ratio < 10
    refused = subprocess.run([sys.executable, "-m", "benchmarks.checkouts", "--src", f"a={src}"],
                             capture_output=True, text=True, cwd=REPO)
    assert refused.returncode == 2 and "at least two --src" in refused.stderr
