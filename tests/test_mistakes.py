"""Every mistake is one line (CLI) or a typed RKMError (API): issue 11, item 4."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import rkm
from rkm.app import run as rkm_run
from rkm.app._cli import main
from rkm.errors import CheckpointError, ConfigError, DataError, RKMError
from rkm.io.datasets import bars_and_stripes
from rkm.io.savepoints import list_savepoints

BAS = torch.tensor(bars_and_stripes(3))
TINY = ["--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8", "--max-epochs", "20",
        "--log-every", "10", "--generate-k", "5", "--n-generate", "4", "--n-eval", "8", "--name", "tiny",
        "--no-progress"]


def one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error: "), err
    return err[0]


def run_cli(argv):
    """``main(argv)``; argparse's own errors exit through SystemExit, with the same one-line message."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("mistakes") / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    return run


# ------------------------------------------------------------------ the command line
@pytest.mark.parametrize("flags,message", [
    (["--log-every", "0"], "--log-every must be an integer >= 1"),
    (["--n-generate", "0"], "--n-generate must be an integer >= 1"),
    (["--lr-final", "0"], "--lr-final must be > 0"),
    (["--lr-final", "-1"], "--lr-final must be > 0"),
    (["--lr", "0.01", "--lr-final", "0.1"], "--lr-final (0.1) must not exceed --lr (0.01)"),
    (["--anneal-start", "1.5"], "--anneal-start must lie in [0.0, 1.0]"),
    (["--anneal-start", "-0.1"], "--anneal-start must lie in [0.0, 1.0]"),
    (["--log-every", "many"], "argument --log-every: invalid int value"),
    (["--layer-scaled", "maybe"], "--layer-scaled must be true or false"),
])
def test_bad_training_flags_are_one_line(tmp_path, capsys, flags, message):
    assert run_cli(["train", *TINY, *flags, "--run-dir", str(tmp_path / "r")]) == 2
    assert message in one_line(capsys)
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("content,message", [
    (b"[run]\nlog_every = 0\n", "must be an integer >= 1"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not UTF-8 text"),
    ("[model]\nn_hidden = 5 # caf\u00e9\n".encode("latin-1"), "is not UTF-8 text"),
    (b"[model]\nlr = [1, 2]\n", "model.lr"),
    (b"[model\nlr = 1\n", "is not valid TOML"),
])
def test_bad_config_files_are_one_line(tmp_path, capsys, content, message):
    config = tmp_path / "c.toml"
    config.write_bytes(content)
    assert run_cli(["train", "--config", str(config), "--run-dir", str(tmp_path / "r"), "--no-progress"]) == 2
    assert message in one_line(capsys)


def test_a_binary_config_in_a_run_folder_is_one_line_on_resume(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    (run / "config.toml").write_bytes(b"\xff\xfe\x00binary")
    assert run_cli(["train", "--resume", str(run), "--no-progress"]) == 2
    assert "is not UTF-8 text" in one_line(capsys)


@pytest.mark.parametrize("argv,message", [
    (["reconstruct", "{run}", "-n", "0", "-o", "{tmp}/r.png"], "argument -n/--n-samples: must be an integer >= 1"),
    (["reconstruct", "{run}", "-n", "-3", "-o", "{tmp}/r.png"], "must be an integer >= 1, got '-3'"),
    (["generate", "{run}", "-n", "0", "-o", "{tmp}/g.npy"], "must be an integer >= 1"),
    (["generate", "{run}", "-k", "-1", "-o", "{tmp}/g.npy"], "argument -k: must be an integer >= 0"),
    (["evaluate", "{run}", "-n", "-5"], "must be an integer >= 1"),
    (["generate", "{run}"], "the following arguments are required: -o/--out"),
    (["generate", "{run}", "-o", "{tmp}/g.gif"], "--out must end in .png or .npy"),
    (["generate", "{run}", "-o", "/proc/nope/g.npy"], "No such file or directory"),
])
def test_bad_sampling_arguments_are_one_line(trained, tmp_path, capsys, argv, message):
    argv = [a.format(run=trained, tmp=tmp_path) for a in argv]
    assert run_cli(argv) == 2
    assert message in one_line(capsys)


def test_a_save_point_with_an_altered_header_is_one_line(trained, tmp_path, capsys):
    import shutil

    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    _, path = list_savepoints(run / "model_states", "tiny")[-1]
    data = bytearray(path.read_bytes())
    at = data.index(b'"lr')
    data[at + 9] ^= 1  # a digit of the learning rate
    path.write_bytes(bytes(data))
    for argv in (["generate", str(run), "-o", str(tmp_path / "g.npy")], ["evaluate", str(run), "-n", "5"],
                 ["train", "--resume", str(run), "--no-progress"]):
        assert run_cli(argv) == 2
        line = one_line(capsys)
        assert str(path) in line and ("SHA-256" in line or "unreadable" in line), line


def test_ctrl_c_during_start_up_exits_130_quietly(tmp_path, capsys, monkeypatch):
    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(rkm_run, "load_data", interrupted)
    assert main(["train", *TINY, "--run-dir", str(tmp_path / "r")]) == 130
    assert capsys.readouterr().err == ""
    assert not (tmp_path / "r").exists()  # the folder it had just made is gone again


def test_ctrl_c_while_the_command_is_still_importing_exits_130_quietly(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "rkm", "train", *TINY, "--run-dir", str(tmp_path / "r")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    maps = f"/proc/{proc.pid}/maps"
    deadline = time.time() + 60
    while time.time() < deadline and "libtorch" not in open(maps).read():  # torch is being imported
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, err) == (130, ""), err


# ------------------------------------------------------------------ the Python API
def small(**kwargs):
    return rkm.RKM("m", 9, 4, seed=0, device="cpu", batch_size=4, max_epochs=3, **kwargs)


@pytest.mark.parametrize("data,match", [
    (np.zeros((0, 9)), "has no rows"),
    ([], "yielded no batches"),
    (np.array([[object()] * 9]), "must be numeric"),
    (np.array([["a"] * 9]), "must be numeric"),
    ({"train": BAS}, "got dict"),
    ("data.npy", "got str"),
    (torch.zeros(3, 9, dtype=torch.complex64), "real-valued"),
])
def test_bad_training_data_is_a_data_error(data, match):
    with pytest.raises(DataError, match=match):
        small().train(data, save=False)


@pytest.mark.parametrize("kwargs,match", [
    ({"layer_scaled": "maybe"}, "layer_scaled must be true or false"),
    ({"centering": "yes please"}, "centering must be true or false"),
    ({"layer_scaled": 2}, "layer_scaled must be true or false"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 2**63}, "seed must be an integer <= 9223372036854775807"),
    ({"seed": 1.5}, "seed must be an integer"),
])
def test_bad_settings_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        rkm.RKM("m", 9, 4, device="cpu", **kwargs)


def test_booleans_given_as_text_are_parsed_never_truthy():
    assert small(layer_scaled="False").layer_scaled is False
    assert small(layer_scaled="true").layer_scaled is True
    model = small()
    with pytest.raises(ConfigError, match="save must be true or false"):
        model.train(BAS, save="sometimes")
    with pytest.raises(ConfigError, match="from_visible must be true or false"):
        model.generate(2, 1, from_visible="nope")


@pytest.mark.parametrize("average,error", [("abc", DataError), ({"a": 1}, DataError), ([1.0] * 5, DataError)])
def test_average_data_that_is_not_a_numeric_vector_is_refused(average, error):
    with pytest.raises(error, match="average_data"):
        rkm.RKM("m", 9, 4, average_data=average, device="cpu")


def test_a_model_or_generate_call_too_large_to_allocate_says_how_many_bytes_it_needs():
    with pytest.raises(ConfigError, match=r"needs about 16\.0 TB \(16000096065536 bytes\) of memory on cpu"):
        rkm.RKM("big", 10**6, 10**6, device="cpu")
    with pytest.raises(ConfigError, match=r"generate\(n_samples=100000000000\) needs about .* \(\d+ bytes\)"):
        small().generate(10**11, 1)


@pytest.mark.parametrize("lr,dtype,optimizer", [(1e39, torch.float32, "SGD"), (1e38, torch.float32, "Adam"),
                                                (1e5, torch.float16, "Adam")])
def test_a_learning_rate_whose_step_overflows_is_a_data_error(tmp_path, lr, dtype, optimizer):
    model = small(lr=lr, mytype=dtype, optimizer=optimizer)
    with pytest.raises(DataError, match=r"update 1 .*lower lr"):
        model.train(BAS, model_state_path=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_callback_print_every_and_model_state_path_are_checked_before_training(tmp_path):
    model = small()
    with pytest.raises(ConfigError, match="callback must be callable"):
        model.train(BAS, callback="print")
    with pytest.raises(ConfigError, match="print_every must be an integer"):
        model.train(BAS, print_every=2.5)
    for bad in (3, None, b"states", ["states"]):
        with pytest.raises(ConfigError, match="model_state_path must be a folder path"):
            model.train(BAS, model_state_path=bad)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        model.train(BAS, model_state_path=tmp_path / "file")
    with pytest.raises(ConfigError, match="without NUL"):
        rkm.load_model("m", model_state_path="a\0b")
    assert model.epoch == 0


@pytest.mark.parametrize("name", ["a\0b", "a" * 201, "", "a/b", 7])
def test_a_model_name_that_cannot_name_a_file_is_refused_at_construction(name):
    with pytest.raises(ConfigError, match="model_name"):
        rkm.RKM(name, 9, 4, device="cpu")


def test_every_api_error_above_is_an_rkm_error():
    for error in (ConfigError, DataError, CheckpointError, rkm.StorageError, rkm.RunInUseError):
        assert issubclass(error, RKMError)
