"""A physicist's first hour (issue 24, points 1, 2, 7, 8, 12, 15) and a run that finishes whatever the shape of its
data (issue 22, item 1), replayed through the ``rkm`` command and the API on tiny budgets.

Time is never measured here: where a test is about time, the run's clock reads a fake ``time`` module
that advances by a fixed amount per update and per end-of-run generation.
"""

import csv
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import rkm
from rkm import plots
from rkm.app import metrics_log
from rkm.app import run as app_run
from rkm.app._cli import main
from rkm.app._warmstart import warm_start
from rkm.app.config import resolve_config
from rkm.circuits import energy
from rkm.io.savepoints import list_savepoints
from rkm.training import evaluation_rng

TINY = ["--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8", "--lr", "0.05",
        "--train-algo", "PCD", "--seed", "3", "--log-every", "10", "--generate-k", "7", "--n-generate", "12",
        "--n-eval", "8", "--name", "tiny", "--no-progress"]
ROOT = Path(__file__).resolve().parents[1]


def one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error: "), err
    return err[0]


def snapshot(run):
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def rows_of(run):
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def latest(run, name="tiny"):
    return list_savepoints(run / "model_states", name)[-1][1]


def warnings_of(caplog):
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    run = tmp_path_factory.mktemp("first") / "tiny"
    assert main(["train", *TINY, "--max-epochs", "20", "--run-dir", str(run)]) == 0
    return run


@pytest.fixture
def titles(monkeypatch):
    """The titles of every figure ``plots.save`` writes, by file name."""
    seen = {}
    real = plots.save

    def save(fig, path):
        seen[Path(path).name] = [fig._suptitle.get_text() if fig._suptitle else ""] + [a.get_title() for a in fig.axes]
        real(fig, path)

    monkeypatch.setattr(plots, "save", save)
    return seen


# ------------------------------------------------------------------ 1: the run folder is the source of truth
def test_1_generate_defaults_to_the_runs_generate_k_n_and_seed_and_says_so(tiny, tmp_path, capsys, titles):
    capsys.readouterr()
    assert main(["generate", str(tiny), "-o", str(tmp_path / "g.npy")]) == 0
    out = capsys.readouterr().out
    _, _, model = app_run.load_run(tiny)
    with evaluation_rng(model):
        expected = model.generate(12, 7)
    assert np.array_equal(np.load(tmp_path / "g.npy"), expected)
    assert "k = 7 (the run's generate_k)" in out and "12 (the run's n_generate)" in out
    assert "seed 3 (the run's seed)" in out and "update 20" in out
    assert main(["generate", str(tiny), "-k", "2", "-n", "5", "--seed", "9", "-o", str(tmp_path / "h.png")]) == 0
    out = capsys.readouterr().out
    assert "k = 2 (-k)" in out and "5 (-n)" in out and "seed 9 (--seed)" in out
    title = titles["h.png"][1]
    assert "k = 2 (-k)" in title and "seed 9 (--seed)" in title and "update 20" in title


def test_1_evaluate_prints_each_measures_ideal_and_on_digits_the_label_quality(tiny, tmp_path, capsys):
    assert main(["evaluate", str(tiny)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["aats_truth"].endswith("(ideal none: no held-out set)") and lines["covariance_error"].endswith(
        "(ideal 0)") and "label_entropy" not in lines
    digits = tmp_path / "digits"
    assert main(["train", "--dataset", "mnist-5k", "--n-hidden", "8", "--max-epochs", "2", "--quick", "--n-eval", "40",
                 "--run-dir", str(digits), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(digits), "-n", "40", "-k", "2", "--no-fid", "--json", str(tmp_path / "d.json")]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert lines["aats_truth"].endswith("(ideal 0.5)") and "(ideal 2.303, ten balanced classes)" in lines["label_entropy"]
    assert {"label_entropy", "classes_covered", "min_class_fraction"} <= set(json.loads((tmp_path / "d.json").read_text()))


def test_1_evaluate_and_reconstruct_default_to_the_run_and_record_what_they_used(tiny, tmp_path, capsys, titles):
    assert main(["evaluate", str(tiny), "--json", str(tmp_path / "e.json")]) == 0
    e = json.loads((tmp_path / "e.json").read_text())
    assert (e["update"], e["generate_k"], e["n_samples"], e["seed"]) == (20, 7, 8, 3)
    assert e["settings"] == {"seed": "3 (the run's seed)", "n_samples": "8 (the run's n_eval)",
                             "generate_k": "7 (the run's generate_k)", "beta": "1.0 (the model's)"}
    assert main(["evaluate", str(tiny), "-k", "3", "--beta", "2", "--json", str(tmp_path / "f.json")]) == 0
    f = json.loads((tmp_path / "f.json").read_text())
    assert (f["generate_k"], f["beta"], f["settings"]["generate_k"]) == (3, 2.0, "3 (-k)")
    assert e["aats_truth"] != f["aats_truth"] or e["covariance_error"] != f["covariance_error"]
    capsys.readouterr()
    assert main(["reconstruct", str(tiny), "-o", str(tmp_path / "r.png")]) == 0
    out = capsys.readouterr().out
    assert "8 (the run's figure) training rows (no held-out set), k = 1, seed 3" in out
    assert any("k = 1" in title for title in titles["r.png"])


def test_1_energy_model_takes_the_runs_k_and_batch_size_and_a_flag_overrides_it(tiny, tmp_path, capsys):
    args = ["energy", "--model", str(tiny), "--no-progress", "--min-time", "0.01", "--energy-window", "0.01",
            "--idle", "0.01", "--operations", "pass", "--samples", "4", "--devices", "cpu"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    rows = energy.read_csv(tmp_path / "a" / "energy.csv")
    assert {r["k"] for r in rows} == {"1"} and {r["batch"] for r in rows if r["system"] != energy.CIRCUIT} == {"1", "8"}
    assert "k = 1 (the model's)" in out and "1,8 (1 and the run's batch_size)" in out
    assert main([*args, "--k", "4", "--batches", "2", "--out", str(tmp_path / "b")]) == 0
    rows = energy.read_csv(tmp_path / "b" / "energy.csv")
    assert {r["k"] for r in rows} == {"4"} and {r["batch"] for r in rows if r["system"] != energy.CIRCUIT} == {"2"}
    assert "k = 4 (--k)" in capsys.readouterr().out


# ------------------------------------------------------------------ 2: time told truthfully
class FakeTime:
    """``time`` for the run's clock: stands still, except where the test moves it."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self):
        return self.now


@pytest.fixture
def fake_time(monkeypatch):
    """A second of training per update, 100 s per generation of the end-of-run samples."""
    clock = FakeTime()
    monkeypatch.setattr(metrics_log, "time", clock)
    real_rate, real_samples = metrics_log.learning_rate, metrics_log.noise_samples

    def learning_rate(config, update):
        clock.now += 1.0
        return real_rate(config, update)

    def noise_samples(model, n, k, progress=None):
        clock.now += 100.0
        return real_samples(model, n, k, progress)

    monkeypatch.setattr(metrics_log, "learning_rate", learning_rate)
    monkeypatch.setattr(metrics_log, "noise_samples", noise_samples)
    return clock


def test_2_training_and_evaluation_time_are_told_apart_and_continue_across_a_resume(tmp_path, capsys, fake_time):
    run = tmp_path / "timed"
    assert main(["train", *TINY, "--max-epochs", "20", "--run-dir", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["train_seconds"] == 20.0 and summary["eval_seconds"] == 100.0
    assert "training time: 20.0 s   evaluation time: 100.0 s" in capsys.readouterr().out
    rows = rows_of(run)
    assert [(r["update"], r["train_s"], r["eval_s"], r["elapsed_s"], r["updates_per_s"]) for r in rows] == [
        ("10", "10.0", "0.0", "10.0", "1.0"), ("20", "20.0", "100.0", "120.0", "1.0")]
    assert main(["train", "--resume", str(run), "--max-epochs", "40", "--no-progress"]) == 0
    rows = rows_of(run)
    assert [(r["update"], r["train_s"], r["eval_s"], r["elapsed_s"]) for r in rows] == [
        ("10", "10.0", "0.0", "10.0"), ("20", "20.0", "100.0", "120.0"), ("30", "30.0", "100.0", "130.0"),
        ("40", "40.0", "200.0", "240.0")]
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["train_seconds"], summary["eval_seconds"]) == (40.0, 200.0)


def test_2_quick_makes_the_end_of_run_evaluation_small_and_says_so(tmp_path, capsys):
    run = tmp_path / "quick"
    argv = ["train", *TINY, "--max-epochs", "10", "--generate-k", "500", "--n-quality", "300", "--n-generate", "200",
            "--quick", "--run-dir", str(run)]
    assert main(argv) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert (summary["quick"], summary["generate_k"], summary["generated_samples"]) == (True, 100, 100)
    assert "--quick: a smoke run's evaluation" in capsys.readouterr().out
    assert resolve_config(config_file=run / "config.toml")["run"]["quick"] is True


def test_2_a_long_end_of_run_evaluation_is_announced_first(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(app_run, "LONG_EVALUATION_S", -1.0)  # every evaluation counts as long
    with caplog.at_level(logging.WARNING, logger="rkm.app.run"):
        assert main(["train", *TINY, "--max-epochs", "10", "--n-quality", "10", "--run-dir", str(tmp_path / "a")]) == 0
    said = [m for m in warnings_of(caplog) if m.startswith("end-of-run evaluation")]
    assert len(said) == 1 and "12 samples x 7 Gibbs steps from noise" in said[0] and "--quick" in said[0]


def test_2_generation_with_a_progress_bar_draws_the_same_samples():
    model = rkm.RKM("m", 9, 5, seed=2)
    plain = metrics_log.noise_samples(model, 20, 250)
    assert np.array_equal(metrics_log.noise_samples(model, 20, 250, progress="end-of-run evaluation"), plain)


# ------------------------------------------------------------------ 7: honest resume
def test_7_a_resume_of_a_finished_run_trains_nothing_says_which_flag_extends_it_and_changes_nothing(tiny, tmp_path,
                                                                                                    caplog, capsys):
    run = tmp_path / "done"
    shutil.copytree(tiny, run)
    before = snapshot(run)
    with caplog.at_level(logging.WARNING, logger="rkm.app.run"):
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    said = warnings_of(caplog)
    assert len(said) == 1 and "nothing to train" in said[0] and "--max-epochs N, N > 20" in said[0]
    assert snapshot(run) == before
    summary = json.loads((run / "summary.json").read_text())
    assert f"training time: {summary['train_seconds']} s" in capsys.readouterr().out


def test_7_resume_with_run_dir_is_refused(tiny, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", "--resume", str(tiny), "--run-dir", str(other), "--no-progress"]) == 2
    err = one_line(capsys)
    assert f"drop --run-dir {other}" in err and f"--init-from {tiny}" in err
    assert not other.exists()


# ------------------------------------------------------------------ 8: warm start
def test_8_init_from_starts_a_new_run_from_the_trained_parameters_with_new_settings(tiny, tmp_path, capsys):
    new = tmp_path / "finetune"
    assert main(["train", "--init-from", str(tiny), "--lr", "0.01", "--max-epochs", "10", "--run-dir", str(new),
                 "--no-progress"]) == 0
    source = latest(tiny)
    config = resolve_config(config_file=new / "config.toml")
    assert config["run"]["init_from"] == str(source.resolve()) and config["model"]["lr"] == 0.01
    assert (config["model"]["n_hidden"], config["data"]["size"], config["run"]["generate_k"]) == (6, 3, 7)
    summary = json.loads((new / "summary.json").read_text())
    assert summary["updates"] == 10 and summary["init_from"] == str(source.resolve())
    assert f"started from: {source.resolve()}" in capsys.readouterr().out
    # the run is the source's parameters trained on with the new settings
    dataset = app_run.load_data(config)
    model = app_run.build_model(config, dataset)
    warm_start(model, str(source), device_state=False)
    trained = rkm.load_model("tiny", model_state_path=tiny / "model_states")[1]
    assert torch.equal(model.W, trained.W) and torch.equal(model.h_bias, trained.h_bias)
    model.train(torch.as_tensor(dataset.train), model_state_path=str(tmp_path / "x"), save=False)
    assert torch.equal(model.W, rkm.load_model("tiny", model_state_path=new / "model_states")[1].W)


def test_8_init_from_takes_the_device_state_only_when_asked(tmp_path):
    source = tmp_path / "chip"
    assert main(["train", *TINY, "--variability", "0.3", "--max-epochs", "10", "--run-dir", str(source)]) == 0
    spread = rkm.load_model("tiny", model_state_path=source / "model_states")[1].devices.spread
    for flag, same in (("true", True), ("false", False)):
        run = tmp_path / flag
        assert main(["train", "--init-from", str(source), "--init-device-state", flag, "--seed", "5",
                     "--max-epochs", "10", "--run-dir", str(run), "--no-progress"]) == 0
        mine = rkm.load_model("tiny", model_state_path=run / "model_states")[1].devices.spread
        assert all(torch.equal(a, b) for a, b in zip(spread, mine)) is same


def test_8_an_ideally_trained_machine_goes_on_nonideal_devices_and_trains_on(tiny, tmp_path):
    run = tmp_path / "levels"
    assert main(["train", "--init-from", str(latest(tiny)), "--conductance-range", "0.01,10", "--conductance-levels",
                 "8", "--max-epochs", "10", "--run-dir", str(run), "--no-progress"]) == 0
    model = rkm.load_model("tiny", model_state_path=run / "model_states")[1]
    assert (model.conductance_levels, model.epoch) == (8, 10)


def test_8_a_warm_start_says_when_the_devices_do_not_fit_the_trained_weights(tiny, tmp_path, caplog):
    """8 linear levels in (0.01, 10) are 1.4 apart: every trained |W| (all below 1) lands on 0.01 or 1.44."""
    collapsed = {}
    for name, devices in (("linear", ["--conductance-range", "0.01,10", "--conductance-levels", "8"]),
                          ("fitting", ["--conductance-range", "0.0001,10", "--conductance-levels", "256",
                                       "--level-spacing", "log"])):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rkm"):
            assert main(["train", "--init-from", str(tiny), *devices, "--max-epochs", "2", "--run-dir",
                         str(tmp_path / name), "--no-progress"]) == 0
        collapsed[name] = [r.getMessage() for r in caplog.records if "far from their values" in r.getMessage()]
    assert len(collapsed["linear"]) == 1 and "--conductance-range" in collapsed["linear"][0]
    assert "conductance_range" not in collapsed["linear"][0] and collapsed["fitting"] == []


@pytest.mark.parametrize("argv,said", [
    (["--init-device-state", "true"], "holds no device state"),
    (["--n-hidden", "7"], "--n-hidden 6"),
    (["--run-dir", "SOURCE"], "give the new run its own folder with --run-dir NEW"),
    (["--resume", "SOURCE"], "--init-from starts a new run"),
])
def test_8_a_warm_start_that_cannot_be_made_is_one_line(tiny, tmp_path, capsys, argv, said):
    argv = [str(tiny) if a == "SOURCE" else a for a in argv]
    run_dir = [] if "--run-dir" in argv or "--resume" in argv else ["--run-dir", str(tmp_path / "n")]
    assert main(["train", "--init-from", str(tiny), *argv, *run_dir, "--max-epochs", "5", "--no-progress"]) == 2
    assert said in one_line(capsys)
    assert not (tmp_path / "n").exists()


# ------------------------------------------------------------------ 12: held-out only where it exists
def test_12_held_out_is_said_only_where_a_held_out_set_exists(tiny, tmp_path, capsys):
    capsys.readouterr()
    assert main(["train", "--resume", str(tiny), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("held-out") == 2 and "bars-and-stripes has no held-out set" in out  # no other claim
    assert "training data (no held-out set: no ideal)" in out
    assert json.loads((tiny / "summary.json").read_text())["held_out"] is False
    assert all(r["test_error"] == "" for r in rows_of(tiny))
    digits = tmp_path / "digits"
    assert main(["train", "--dataset", "digits", "--n-hidden", "6", "--max-epochs", "10", "--log-every", "5",
                 "--generate-k", "2", "--n-generate", "4", "--n-eval", "20", "--run-dir", str(digits),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "held-out reconstruction error (k=1, 20 held-out test rows)" in out and "(ideal 0.5, 0.5)" in out
    assert json.loads((digits / "summary.json").read_text())["held_out"] is True
    assert all(float(r["test_error"]) >= 0 for r in rows_of(digits))


def test_12_an_array_file_without_a_test_array_has_no_held_out_set(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, (np.random.default_rng(0).random((30, 9)) > 0.5).astype(np.float32))
    assert main(["train", "--dataset", str(data), "--n-hidden", "4", "--max-epochs", "10", "--generate-k", "2",
                 "--n-eval", "10", "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("held-out") == 2 and "rows.npy has no held-out set" in out


# ------------------------------------------------------------------ 15: smaller things
def test_15_plot_weights_needs_no_update_and_a_plain_savefig_has_narrow_margins(tmp_path):
    model = rkm.RKM("m", 16, 6, seed=0)
    assert model.plot_weights().axes[0].get_title().endswith(", update 0")
    assert model.plot_weights(5).axes[0].get_title().endswith(", update 5")  # pyrkm's positional t
    assert model.plot_visible_bias().axes[0].get_title() == "Visible bias, update 0"
    assert model.plot_bias().axes[0].get_title() == "Hidden bias, update 0"
    for n_visible, n_hidden in ((16, 6), (784, 100)):
        fig = rkm.RKM("m", n_visible, n_hidden, seed=0).plot_weights()
        fig.savefig(tmp_path / "w.png")
        with Image.open(tmp_path / "w.png") as image:
            ink = np.asarray(image.convert("L")) < 250
        rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
        margins = (rows[0] / ink.shape[0], 1 - rows[-1] / ink.shape[0], cols[0] / ink.shape[1],
                   1 - cols[-1] / ink.shape[1])
        assert max(margins) < 0.08, margins


def test_15_make_demo_sets_its_threads_and_says_how_to_change_them():
    out = subprocess.run(["make", "-n", "demo"], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "3"}).stdout
    assert "OMP_NUM_THREADS=3 .venv/bin/rkm train --preset demo" in out and "OMP_NUM_THREADS=N make demo" in out


def test_15_the_summary_says_how_many_torch_threads_trained(tiny):
    assert json.loads((tiny / "summary.json").read_text())["torch_threads"] == torch.get_num_threads()


# ------------------------------------------------------------------ issue 22, item 1: finishing never depends on plotting
@pytest.mark.parametrize("columns,shape", [(7, "7x1"), (785, "5x157")])
def test_data_without_a_square_shape_trains_saves_summarises_resumes_and_plots(tmp_path, capsys, columns, shape):
    data = tmp_path / "rows.npy"
    np.save(data, (np.random.default_rng(1).random((40, columns)) > 0.5).astype(np.float32))
    run = tmp_path / "run"
    assert main(["train", "--dataset", str(data), "--n-hidden", "3", "--max-epochs", "20", "--log-every", "10",
                 "--generate-k", "3", "--n-generate", "4", "--n-eval", "8", "--n-quality", "8", "--run-dir", str(run),
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["updates"] == 20 and latest(run, "rkm").name == "rkm_t20.safetensors"
    assert sorted(p.name for p in (run / "figures").iterdir()) == ["biases.png", "training_curves.png"]
    assert len(summary["figure_notes"]) == 1 and "--image-shape HEIGHTxWIDTH" in summary["figure_notes"][0]
    assert summary["figure_notes"][0] in out
    assert main(["train", "--resume", str(run), "--max-epochs", "30", "--no-progress"]) == 0
    assert main(["plot", str(run)]) == 0
    assert "--image-shape" in capsys.readouterr().out
    assert main(["plot", str(run), "--image-shape", shape]) == 0
    assert {"samples.png", "weights.png", "reconstructions.png"} <= {p.name for p in (run / "figures").iterdir()}
    assert main(["train", "--resume", str(run), "--max-epochs", "40", "--image-shape", shape, "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["figure_notes"] == []
    assert main(["generate", str(run), "-o", str(tmp_path / "g.png")]) == 0


def test_rows_of_400000_values_train_save_and_summarise(tmp_path, monkeypatch):
    from rkm.evaluation import metrics

    # the entropy measure gzips the rows (pyrkm's definition): at this width that alone is minutes (docs/runs.md)
    monkeypatch.setattr(metrics, "entropy_measure", lambda real, synthetic: 0.0)
    data = tmp_path / "wide.npy"
    np.save(data, (np.random.default_rng(2).random((4, 400_000)) > 0.5).astype(np.float32))
    run = tmp_path / "wide"
    assert main(["train", "--dataset", str(data), "--n-hidden", "2", "--batch-size", "2", "--max-epochs", "6",
                 "--log-every", "3", "--generate-k", "2", "--n-generate", "2", "--run-dir", str(run),
                 "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["updates"] == 6 and {"covariance_error", "third_moment_error"} <= set(summary["sample_quality_vs_test"])
    assert "rows of 400000 values have no image shape" in summary["figure_notes"][0]


def test_an_image_shape_that_does_not_fit_the_rows_is_one_line(tmp_path, capsys):
    assert main(["train", *TINY, "--image-shape", "2x4", "--run-dir", str(tmp_path / "r")]) == 2
    assert "image shape 2x4 (--image-shape, data.image_shape) has 8 pixels, but the rows of bars-and-stripes have 9 " \
           "values" in one_line(capsys)
    assert main(["train", *TINY, "--image-shape", "3by3", "--run-dir", str(tmp_path / "r")]) == 2
    assert "written like 28x28" in one_line(capsys)


def test_a_finished_run_without_its_summary_gets_it_on_resume(tiny, tmp_path, caplog):
    run = tmp_path / "broken"
    shutil.copytree(tiny, run)
    (run / "summary.json").unlink()
    shutil.rmtree(run / "figures")
    with caplog.at_level(logging.WARNING, logger="rkm.app.run"):
        assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert any("no summary of update 20" in m for m in warnings_of(caplog))
    assert json.loads((run / "summary.json").read_text())["updates"] == 20
    assert [r["update"] for r in rows_of(run)] == [r["update"] for r in rows_of(tiny)]


def test_a_run_stopped_between_its_summary_and_its_figures_gets_them_on_resume(tiny, tmp_path, capsys):
    run = tmp_path / "nofigures"
    shutil.copytree(tiny, run)
    shutil.rmtree(run / "figures")
    summary = json.loads((run / "summary.json").read_text())
    summary.update(figures=None, figure_notes=None, figures_seconds=None)  # as written before the figures
    (run / "summary.json").write_text(json.dumps(summary))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert [Path(p).name for p in summary["figures"]] == sorted(p.name for p in (tiny / "figures").iterdir())
    assert (run / "figures" / "samples.png").read_bytes() == (tiny / "figures" / "samples.png").read_bytes()
    assert f"{run}/figures/samples.png" in capsys.readouterr().out


def test_a_figure_that_fails_is_reported_after_the_results_are_safe(tmp_path, capsys, monkeypatch):
    def broken(rows):
        raise RuntimeError("the plotting broke")

    monkeypatch.setattr(plots, "training_curves", broken)
    run = tmp_path / "r"
    assert main(["train", *TINY, "--max-epochs", "10", "--run-dir", str(run)]) == 0
    summary = json.loads((run / "summary.json").read_text())
    note = "training_curves.png not drawn: RuntimeError: the plotting broke"
    assert summary["figure_notes"] == [note] and note in capsys.readouterr().out
    assert "samples.png" in {p.name for p in (run / "figures").iterdir()}
