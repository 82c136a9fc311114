"""The ``rkm`` command end to end on bars and stripes, and its one-line errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from rkm.app._cli import main

FAST = ["--preset", "bars", "--max-epochs", "120", "--log-every", "40", "--generate-k", "20", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("cli") / "bars"
    assert main(["train", *FAST, "--run-dir", str(run)]) == 0
    return run


def test_train_writes_a_complete_run_folder(trained):
    names = {p.name for p in trained.iterdir()}
    assert {"config.toml", "metrics.csv", "summary.json", "model_states", "figures"} <= names
    with open(trained / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["update"]) for r in rows] == [40, 80, 120]
    for row in rows:
        for key in ("train_error", "power_f", "power_b", "energy", "relax_t_f_mean", "elapsed_s", "train_s", "eval_s"):
            assert np.isfinite(float(row[key])), key
        assert row["test_error"] == ""  # bars and stripes has no held-out set
    assert float(rows[-1]["energy"]) > float(rows[0]["energy"]) > 0
    figures = sorted(p.name for p in (trained / "figures").iterdir())
    assert figures == ["biases.png", "reconstructions.png", "samples.png", "training_curves.png", "weights.png"]
    for png in (trained / "figures").iterdir():
        with Image.open(png) as image:
            image.verify()
            assert image.format == "PNG"
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["updates"] == 120 and 0 <= summary["test_reconstruction_error_k1"] <= 1
    assert "aats_truth" in summary["sample_quality_vs_test"]


def test_resume_continues_from_the_last_save_point(trained, tmp_path):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    assert main(["train", "--resume", str(run), "--max-epochs", "160", "--no-progress"]) == 0
    with open(run / "metrics.csv") as fh:
        updates = [int(r["update"]) for r in csv.DictReader(fh)]
    assert updates == [40, 80, 120, 160]
    assert json.loads((run / "summary.json").read_text())["updates"] == 160


def test_resumed_cli_run_equals_an_uninterrupted_one(tmp_path):
    from rkm import load_model

    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert main(["train", *FAST, "--run-dir", str(straight)]) == 0
    assert main(["train", *FAST, "--run-dir", str(broken), "--max-epochs", "64"]) == 0
    assert main(["train", "--resume", str(broken), "--max-epochs", "120", "--no-progress"]) == 0
    a = load_model("bars", model_state_path=straight / "model_states")[1]
    b = load_model("bars", model_state_path=broken / "model_states")[1]
    assert a.epoch == b.epoch == 120
    assert (a.W == b.W).all() and (a.energy == b.energy).all()


def test_generate_reconstruct_evaluate_plot(trained, tmp_path, capsys):
    assert main(["generate", str(trained), "-n", "12", "-k", "10", "-o", str(tmp_path / "g.npy")]) == 0
    samples = np.load(tmp_path / "g.npy")
    assert samples.shape == (12, 16) and set(np.unique(samples)) <= {0.0, 1.0}
    assert main(["generate", str(trained), "-n", "12", "-k", "10", "-o", str(tmp_path / "g.png")]) == 0
    assert main(["reconstruct", str(trained), "-n", "5", "-o", str(tmp_path / "r.png")]) == 0
    assert main(["evaluate", str(trained), "-n", "30", "-k", "10", "--json", str(tmp_path / "e.json")]) == 0
    results = json.loads((tmp_path / "e.json").read_text())
    assert {"reconstruction_error_k1", "aats_truth", "aats_syn", "covariance_error"} <= set(results)
    assert main(["plot", str(trained)]) == 0
    assert main(["datasets"]) == 0
    assert "mnist-5k" in capsys.readouterr().out


def test_config_file_and_flags(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[model]\nn_hidden = 6\nmax_epochs = 10\nk = 2\n[data]\ndataset = "bars-and-stripes"\nsize = 3\n'
                      '[run]\nname = "cfg"\nlog_every = 5\ngenerate_k = 5\nn_generate = 4\n')
    run = tmp_path / "run"
    assert main(["train", "--config", str(config), "--lr", "0.02", "--run-dir", str(run), "--no-progress"]) == 0
    text = (run / "config.toml").read_text()
    assert "n_hidden = 6" in text and "lr = 0.02" in text and "k = 2" in text


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "--dataset", "nonexistent", "--no-progress"], "unknown dataset"),
        (["train", "--dataset", "/nowhere/data.npy", "--no-progress"], "does not exist"),
        (["train", "--set", "model.n_hiden=5", "--no-progress"], "unknown config key model.n_hiden"),
        (["train", "--train-algo", "XYZ", "--dataset", "bars-and-stripes", "--no-progress"], "--train-algo xyz is not supported"),
        (["train", "--config", "/nowhere.toml"], "does not exist"),
        (["evaluate", "/nowhere-run"], "not a run folder"),
    ],
)
def test_user_errors_end_with_one_clear_line(argv, message, tmp_path, capsys):
    assert main([*argv, "--run-dir", str(tmp_path / "r")] if argv[0] == "train" else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error:") and message in err[0].lower(), err


def test_bad_array_files_are_one_line_errors(tmp_path, capsys):
    values = tmp_path / "gray.npy"
    np.save(values, np.random.default_rng(0).random((10, 16)))
    assert main(["train", "--dataset", str(values), "--run-dir", str(tmp_path / "a"), "--no-progress"]) == 2
    assert "threshold" in capsys.readouterr().err
    bad_shape = tmp_path / "odd.npy"
    np.save(bad_shape, np.zeros((4, 3, 5, 2)))
    assert main(["train", "--dataset", str(bad_shape), "--run-dir", str(tmp_path / "b"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error:")


def test_the_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "rkm", "train", "--help"], capture_output=True, text=True, check=True)
    for flag in ("--n-hidden", "--offset", "--sampling", "--layer-scaled", "--resume", "--preset", "--threshold-sharing"):
        assert flag in out.stdout


def test_ctrl_c_leaves_a_resumable_save_point(tmp_path):
    import signal
    import time

    from rkm.io.savepoints import list_savepoints

    run = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [sys.executable, "-m", "rkm", "train", "--preset", "bars", "--max-epochs", "10000000", "--log-every", "20",
         "--no-progress", "--run-dir", str(run)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 60
    metrics = run / "metrics.csv"
    while time.time() < deadline and not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"rkm train --resume {run}" in err
    update, _ = list_savepoints(run / "model_states", "bars")[-1]
    assert update >= 20
    assert f"Interrupted at update {update};" in err
    assert main(["train", "--resume", str(run), "--max-epochs", str(update + 10), "--no-progress"]) == 0
    assert json.loads((run / "summary.json").read_text())["updates"] == update + 10


def test_learning_rate_annealing_schedule():
    from rkm.app.config import learning_rate, resolve_config

    config = resolve_config("demo")
    lr, final, total = config["model"]["lr"], config["run"]["lr_final"], config["model"]["max_epochs"]
    start = int(config["run"]["anneal_start"] * total)
    assert learning_rate(config, 0) == learning_rate(config, start) == lr
    assert learning_rate(config, total) == pytest.approx(final)
    middle = learning_rate(config, (start + total) // 2)
    assert middle == pytest.approx((lr * final) ** 0.5, rel=1e-3)
    config["run"]["lr_final"] = None
    assert learning_rate(config, total) == lr
