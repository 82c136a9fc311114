"""Quality from noise in every run record (issue 12, item 3): the quality columns of metrics.csv."""

import csv
import json

import numpy as np
import pytest

import rkm
from rkm import plots
from rkm.app._cli import main
from rkm.app._runfolder import RunFolder
from rkm.app.metrics_log import METRIC_COLUMNS, QUALITY_COLUMNS, read_metrics
from rkm.evaluation import exact, metrics
from rkm.io.datasets import load_dataset
from rkm.io.savepoints import list_savepoints, read_savepoint
from rkm.machine import restore
from rkm.training import evaluation_rng

DIGITS = ["--dataset", "mnist-5k", "--n-hidden", "8", "--batch-size", "16", "--lr", "0.05", "--train-algo", "PCD",
          "--seed", "1", "--log-every", "10", "--generate-k", "3", "--n-generate", "4", "--n-eval", "40",
          "--n-quality", "40", "--name", "dig", "--no-progress"]
QUALITY = ("label_entropy", "classes_covered", "fid", "exact_kl")


def raw_rows(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    every, last = root / "every", root / "last"
    assert main(["train", *DIGITS, "--max-epochs", "30", "--quality-every", "10", "--run-dir", str(every)]) == 0
    assert main(["train", *DIGITS, "--max-epochs", "30", "--run-dir", str(last)]) == 0
    return every, last


def test_the_quality_columns_are_the_one_list_metrics_csv_extends():
    assert tuple(c.name for c in QUALITY_COLUMNS) == QUALITY
    assert METRIC_COLUMNS[-len(QUALITY):] == QUALITY


def test_every_quality_row_holds_the_quality_of_samples_from_noise_of_its_save_point(runs):
    every, _ = runs
    rows = read_metrics(every / "metrics.csv")
    assert [r["update"] for r in rows] == [10, 20, 30]
    test = load_dataset("mnist-5k").test[:40]
    points = dict(list_savepoints(every / "model_states", "dig"))
    for row in rows:
        model = restore(*read_savepoint(points[int(row["update"])]), device="cpu")
        with evaluation_rng(model):
            samples = model.generate(40, 3)
        labels = metrics.label_quality(samples)
        assert row["label_entropy"] == pytest.approx(labels["label_entropy"], rel=1e-12)
        assert row["classes_covered"] == pytest.approx(labels["classes_covered"], rel=1e-12)
        assert row["fid"] == pytest.approx(metrics.fid(test, samples), rel=1e-9)
        assert 0 <= row["label_entropy"] <= np.log(10) + 1e-12 and 0 <= row["classes_covered"] <= 1


def test_quality_rows_leave_the_training_trajectory_unchanged(runs):
    every, last = runs
    a = read_savepoint(list_savepoints(every / "model_states", "dig")[-1][1])[0]
    b = read_savepoint(list_savepoints(last / "model_states", "dig")[-1][1])[0]
    assert set(a) == set(b) and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    rows = raw_rows(last)
    assert [all(r[c] == "" for c in QUALITY) for r in rows] == [True, True, False]  # 0: the last row only
    assert [rows[-1][c] for c in QUALITY] == [raw_rows(every)[-1][c] for c in QUALITY]
    for r in rows:
        assert r["swap_acceptance"] == ""


def test_the_summary_holds_the_last_rows_label_quality(runs):
    every, _ = runs
    summary = json.loads((every / "summary.json").read_text())["sample_quality_vs_test"]
    final = read_metrics(every / "metrics.csv")[-1]
    assert summary["label_entropy"] == final["label_entropy"]
    assert summary["classes_covered"] == final["classes_covered"]
    assert summary["fid"] == final["fid"]  # n_eval = n_quality: the same samples


def test_a_resumed_run_records_the_same_quality_as_an_uninterrupted_one(runs, tmp_path):
    every, _ = runs
    run = tmp_path / "resumed"
    assert main(["train", *DIGITS, "--max-epochs", "20", "--quality-every", "10", "--run-dir", str(run)]) == 0
    assert main(["train", "--resume", str(run), "--max-epochs", "30", "--no-progress"]) == 0
    straight, resumed = read_metrics(every / "metrics.csv"), read_metrics(run / "metrics.csv")
    assert [r["update"] for r in resumed] == [10, 20, 30]
    for a, b in zip(straight, resumed):
        assert a.keys() == b.keys()
        for key in ("train_error", "test_error", "energy", "energy_j", "label_entropy", "classes_covered", "fid"):
            assert a[key] == b[key], (a["update"], key)


def test_quality_columns_that_do_not_apply_stay_empty(tmp_path):
    run = tmp_path / "bars"
    argv = ["train", "--preset", "bars", "--max-epochs", "20", "--log-every", "10", "--quality-every", "10",
            "--no-progress", "--run-dir", str(run)]
    assert main(argv) == 0
    rows = raw_rows(run)
    assert len(rows) == 2 and all(r[c] == "" for r in rows for c in QUALITY)
    assert "label_entropy" not in json.loads((run / "summary.json").read_text())["sample_quality_vs_test"]


def test_a_tiny_machine_records_the_exact_kl_of_each_quality_row(tmp_path):
    run = tmp_path / "tiny"
    argv = ["train", "--preset", "bars", "--n-hidden", "6", "--max-epochs", "20", "--log-every", "10",
            "--quality-every", "10", "--no-progress", "--run-dir", str(run)]
    assert main(argv) == 0
    rows = read_metrics(run / "metrics.csv")
    train = load_dataset("bars-and-stripes", size=4).train
    points = dict(list_savepoints(run / "model_states", "bars"))
    for row in rows:
        model = restore(*read_savepoint(points[int(row["update"])]), device="cpu")
        assert row["exact_kl"] == pytest.approx(exact.kl_divergence(model, train), rel=1e-12)
        assert row["exact_kl"] > 0 and "label_entropy" not in row
    assert [r["update"] for r in rows] == [10, 20]


def test_a_log_of_older_columns_keeps_its_values_on_resume(tmp_path):
    old = [c for c in METRIC_COLUMNS if c not in ("swap_acceptance", *QUALITY)]
    lines = [",".join(old)] + [",".join([str(u)] + ["0.5"] * (len(old) - 1)) for u in (10, 20, 30)]
    (tmp_path / "metrics.csv").write_text("\r\n".join(lines) + "\r\n")
    RunFolder(tmp_path, "m").truncate_metrics(20, METRIC_COLUMNS)
    rows = raw_rows(tmp_path)
    assert list(rows[0]) == list(METRIC_COLUMNS) and [r["update"] for r in rows] == ["10", "20"]
    assert all(r["energy_j"] == "0.5" and r["fid"] == "" for r in rows)


def test_generate_k_may_be_the_models_k(tmp_path, capsys):
    run = tmp_path / "k"
    argv = ["train", "--preset", "bars", "--max-epochs", "10", "--k", "4", "--generate-k", "k", "--no-progress",
            "--run-dir", str(run)]
    assert main(argv) == 0
    assert json.loads((run / "summary.json").read_text())["generate_k"] == 4
    assert rkm.app.config.resolve_config(overrides={"run": {"generate_k": "7"}})["run"]["generate_k"] == 7
    assert main(["train", "--preset", "bars", "--generate-k", "x", "--run-dir", str(tmp_path / "x")]) == 2
    assert "k (the model's k)" in capsys.readouterr().err


def test_the_training_curves_show_quality_against_energy(runs):
    fig = plots.training_curves(read_metrics(runs[0] / "metrics.csv"))
    panel = next(ax for ax in fig.axes if ax.get_xlabel() == "cumulative energy (J)")
    assert len(panel.get_lines()[0].get_xdata()) == 3
    assert any(ax.get_ylabel().startswith("FID") for ax in fig.axes)


def test_the_train_command_prints_the_label_quality_of_its_digits(runs, capsys):
    from rkm.app._cli import _print_summary

    summary = json.loads((runs[0] / "summary.json").read_text())
    _print_summary(summary)
    out = capsys.readouterr().out
    q = summary["sample_quality_vs_test"]
    assert f"label entropy {q['label_entropy']:.3f} nats" in out
    assert f"rarest class {q['min_class_fraction']:.1%}" in out
