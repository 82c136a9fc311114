"""A physicist's first hour with files (issue 24, points 9, 10 and 14), replayed through the command line."""

import gzip
import json
import pickle
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from test_legacy import stand_in_pyrkm  # noqa: F401  (the fixture that writes pyrkm-like pickles)

import rkm
from rkm.app._cli import main
from rkm.io.savepoints import list_savepoints, read_savepoint

# ruff: noqa: F811 - the tests take the fixture imported from test_legacy as an argument


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("rkm: error: ") and err.count("\n") == 1, err
    return err


def write_idx(path: Path, images: np.ndarray) -> None:
    header = bytes([0, 0, 8, images.ndim]) + struct.pack(f">{images.ndim}I", *images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes()))


# ------------------------------------------------------------------ 9: missing MNIST files, named one by one
def test_missing_mnist_files_are_named_one_by_one(tmp_path, capsys):
    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx(idx / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    train = ["train", "--dataset", "mnist", "--max-epochs", "1", "--run-dir", str(tmp_path / "run"), "--no-progress"]
    assert main([*train, "--data-path", str(idx)]) == 2
    err = error_line(capsys)
    assert "is incomplete: missing the test images (t10k-images-idx3-ubyte[.gz]" in err
    assert "the training images" not in err  # it is there
    assert main([*train, "--data-path", str(tmp_path / "idx_missing")]) == 2
    assert f"the MNIST directory '{tmp_path / 'idx_missing'}' does not exist" in error_line(capsys)
    assert main([*train, "--data-path", str(idx / "train-images-idx3-ubyte.gz")]) == 2
    err = error_line(capsys)
    assert "is a file, not the MNIST directory" in err and f"(here perhaps '{idx}')" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*train, "--data-path", str(empty)]) == 2
    err = error_line(capsys)
    assert "missing the training images (train-images-idx3-ubyte[.gz]" in err and "and the test images" in err


# ------------------------------------------------------------------ 10: convert what can be converted
def test_convert_pyrkm_converts_the_good_files_and_reports_the_truncated_one(tmp_path, stand_in_pyrkm, capsys):
    for update in (1, 2, 5):
        stand_in_pyrkm(tmp_path, "RKM", update)
    last = tmp_path / "old_t9.pkl"
    stand_in_pyrkm(tmp_path, "RKM", 9)
    last.write_bytes(last.read_bytes()[:-200])  # the save point a killed job was writing
    assert main(["convert-pyrkm", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[:3] == [f"converted {tmp_path / f'old_t{u}.pkl'} -> {tmp_path / f'old_t{u}.safetensors'}"
                         for u in (1, 2, 5)]
    assert lines[3].startswith(f"not converted: {last} is not a readable pickle") and lines[4] == (
        "3 of 4 pyrkm save points converted")
    assert captured.err == ""
    found, model = rkm.load_model("old", model_state_path=tmp_path)
    assert found and model.epoch == 5
    assert main(["convert-pyrkm", str(tmp_path), "--strict", "-o", str(tmp_path / "again")]) == 2
    assert "1 of the 4 pyrkm save points" in error_line(capsys)
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == [f"old_t{u}.safetensors" for u in (1, 2, 5)]
    (tmp_path / "junk_t3.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    for update in (1, 2, 5, 9):
        (tmp_path / f"old_t{update}.pkl").unlink()
    assert main(["convert-pyrkm", str(tmp_path)]) == 2
    assert "none of the 1 pyrkm save points" in error_line(capsys)


# ------------------------------------------------------------------ 14: a sweep extended by a larger max_epochs
BASE = """\
[model]
n_hidden = 8
lr = 0.05
max_epochs = {max_epochs}
batch_size = 8
[data]
dataset = "bars-and-stripes"
size = 3
[run]
name = "bars"
log_every = 10
n_generate = 4
generate_k = 5
n_eval = 14
"""


def rkm_command(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rkm", *argv], capture_output=True, text=True, timeout=900)


def test_a_sweep_rerun_with_more_updates_extends_its_runs_and_prints_no_dask_noise(tmp_path):
    base, out = tmp_path / "base.toml", tmp_path / "out"
    base.write_text(BASE.format(max_epochs=30))
    sweep = ["sweep", "--config", str(base), "--grid", "model.offset=0,0.5", "--out", str(out), "--workers", "1",
             "--no-progress"]
    first = rkm_command(*sweep)
    assert first.returncode == 0 and first.stderr == "", first.stderr
    assert "2 runs: 2 ok (2 trained, 0 resumed, 0 already finished), 0 failed" in first.stdout
    base.write_text(BASE.format(max_epochs=45))
    second = rkm_command(*sweep)
    assert second.returncode == 0 and second.stderr == "", second.stderr
    assert "2 runs: 2 ok (0 trained, 2 resumed, 0 already finished), 0 failed" in second.stdout
    run = out / "runs" / "offset=0.5_seed=0"
    assert json.loads((run / "summary.json").read_text())["updates"] == 45
    assert json.loads((out / "sweep.json").read_text())["base"]["model"]["max_epochs"] == 45

    # the same as `rkm train` to 30 updates, then `rkm train --resume --max-epochs 45`
    direct = tmp_path / "direct"
    assert main(["train", "--config", str(run / "config.toml"), "--max-epochs", "30", "--run-dir", str(direct),
                 "--no-progress"]) == 0
    assert main(["train", "--resume", str(direct), "--max-epochs", "45", "--no-progress"]) == 0
    swept, straight = (read_savepoint(list_savepoints(r / "model_states", "bars")[-1][1])[0] for r in (run, direct))
    assert swept.keys() == straight.keys()
    assert all(torch.equal(swept[name], straight[name]) for name in swept)

    base.write_text(BASE.format(max_epochs=40))
    shorter = rkm_command(*sweep)
    assert shorter.returncode == 2 and shorter.stderr.count("\n") == 1
    assert "can extend them (a larger model.max_epochs), not shorten them to 40" in shorter.stderr
