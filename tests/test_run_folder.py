"""Run folders that cannot be broken (issue 11, item 3): the lock, checked resumes, restarts, kill -9, full disks."""

import csv
import errno
import multiprocessing
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import rkm
from rkm.app._cli import main
from rkm.app._runfolder import RunFolder
from rkm.app.metrics_log import METRIC_COLUMNS, read_metrics
from rkm.io.datasets import bars_and_stripes
from rkm.io.savepoints import read_savepoint
from rkm.machine import restore

TINY = ["--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8", "--lr", "0.05",
        "--train-algo", "PCD", "--seed", "1", "--log-every", "10", "--generate-k", "5", "--n-generate", "4",
        "--n-eval", "8", "--name", "tiny", "--no-progress"]


def one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error: "), err
    return err[0]


def updates(run):
    with open(run / "metrics.csv", newline="") as fh:
        return [int(row["update"]) for row in csv.DictReader(fh)]


def snapshot(run):
    """Every file of a run folder and its bytes, the lock file aside (a refused command writes its PID there)."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def _cli_child(argv, log):
    """Run ``rkm`` in a forked process (no interpreter start-up), its output to ``log``."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    torch.set_num_threads(1)
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    os._exit(code)


def fork_cli(argv, log):
    proc = multiprocessing.get_context("fork").Process(target=_cli_child, args=(argv, str(log)))
    proc.start()
    return proc


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("runs") / "done"
    assert main(["train", *TINY, "--max-epochs", "40", "--run-dir", str(run)]) == 0
    return run


# ------------------------------------------------------------------ the lock
def test_a_second_train_of_a_running_folder_is_refused_naming_its_pid(tmp_path, capsys):
    run = tmp_path / "busy"
    holder = fork_cli(["train", *TINY, "--max-epochs", "100000000", "--run-dir", str(run)], tmp_path / "a.log")
    folder = RunFolder(run, "tiny")
    deadline = time.time() + 120
    while time.time() < deadline and (folder.latest() is None or not (run / "metrics.csv").exists()):
        time.sleep(0.05)
    try:
        assert folder.latest() is not None, (tmp_path / "a.log").read_text()
        for argv in (["train", *TINY, "--run-dir", str(run)], ["train", "--resume", str(run), "--no-progress"],
                     ["train", "--restart", str(run), "--no-progress"]):
            assert main(argv) == 2
            line = one_line(capsys)
            assert f"in use: process {holder.pid} (rkm train) holds its lock" in line, line
        assert main(["generate", str(run), "-n", "3", "-k", "2", "-o", str(tmp_path / "g.npy")]) == 0
        assert np.load(tmp_path / "g.npy").shape == (3, 9)
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.join()
    update = folder.latest()[0]  # the OS released the lock of the killed process
    assert main(["train", "--resume", str(run), "--max-epochs", str(update + 3), "--no-progress"]) == 0
    assert updates(run) == sorted(set(updates(run)))


def test_the_lock_is_an_os_lock_released_by_a_killed_process(tmp_path):
    folder = RunFolder(tmp_path / "r", "x")
    code = ("import os, sys, time; from rkm.app._runfolder import RunFolder; f = RunFolder(sys.argv[1], 'x');\n"
            "with f.session():\n    (f.path / 'config.toml').write_text('');print('locked', flush=True);time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder.path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(rkm.RunInUseError, match=f"process {proc.pid}"):
            with folder.session():
                pass
    finally:
        proc.kill()
        proc.wait()
    with folder.session():
        assert (folder.path / ".lock").read_text().strip() == str(os.getpid())


# ------------------------------------------------------------------ resume
@pytest.mark.parametrize("flags,named", [
    (["--dataset", "digits"], "data.dataset"), (["--n-hidden", "9"], "model.n_hidden"),
    (["--lr", "0.5"], "model.lr"), (["--seed", "3"], "model.seed"), (["--train-algo", "CD"], "model.train_algo"),
    (["--size", "4"], "data.size"), (["--fast-matmul", "false"], "model.fast_matmul"),
    (["--set", "run.n_eval=3"], "run.n_eval"), (["--layer-scaled", "false"], "model.layer_scaled"),
    (["--lr-final", "0.01"], "run.lr_final"),
])
def test_a_refused_resume_writes_nothing(finished, tmp_path, capsys, flags, named):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    before = snapshot(run)
    assert main(["train", "--resume", str(run), *flags, "--no-progress"]) == 2
    line = one_line(capsys)
    assert f"a resume cannot change {named}" in line, line
    assert snapshot(run) == before


def test_a_resume_records_the_settings_it_may_change(finished, tmp_path):
    run = tmp_path / "copy"
    shutil.copytree(finished, run)
    (run / "data.json").unlink()  # as in a run folder of an older rkm
    assert main(["train", "--resume", str(run), "--max-epochs", "60", "--log-every", "20", "--no-progress"]) == 0
    assert (run / "data.json").read_bytes() == (finished / "data.json").read_bytes()
    text = (run / "config.toml").read_text()
    assert "max_epochs = 60" in text and "log_every = 20" in text
    assert updates(run) == [10, 20, 30, 40, 60]


def test_a_resume_refuses_changed_data_and_a_config_that_no_longer_fits_its_save_point(tmp_path, capsys):
    data = tmp_path / "rows.npy"
    np.save(data, bars_and_stripes(3))
    run = tmp_path / "run"
    base = [str(data) if a == "bars-and-stripes" else a for a in TINY]
    assert main(["train", *base, "--max-epochs", "20", "--run-dir", str(run)]) == 0
    before = snapshot(run)
    rows = bars_and_stripes(3)
    rows[0] = 1 - rows[0]
    np.save(data, rows)
    assert main(["train", "--resume", str(run), "--max-epochs", "30", "--no-progress"]) == 2
    assert "the data of" in one_line(capsys) and snapshot(run) == before
    np.save(data, bars_and_stripes(3))
    config = (run / "config.toml").read_text()  # what an older rkm did on a refused --resume: rewrite it
    (run / "config.toml").write_text(config.replace("n_hidden = 6", "n_hidden = 7"))
    before = snapshot(run)
    assert main(["train", "--resume", str(run), "--max-epochs", "30", "--no-progress"]) == 2
    line = one_line(capsys)
    assert "does not match its save point" in line and "model.n_hidden = 7 there, 6 in the save point" in line
    assert snapshot(run) == before


def test_metrics_rows_past_the_save_point_and_cut_rows_are_dropped(tmp_path):
    folder = RunFolder(tmp_path, "m")
    header = ",".join(METRIC_COLUMNS)
    row = lambda u: ",".join([str(u)] + ["0.5"] * (len(METRIC_COLUMNS) - 1))  # noqa: E731
    body = [header, row(10), row(20), row(20), row(15), row(30), row(40), row(50)]
    (tmp_path / "metrics.csv").write_bytes(("\r\n".join(body) + "\r\n" + row(60)[:7]).encode())
    folder.truncate_metrics(40, METRIC_COLUMNS)
    assert [int(r["update"]) for r in read_metrics(tmp_path / "metrics.csv")] == [10, 20, 30, 40]
    (tmp_path / "metrics.csv").write_bytes((header + "\r\n" + row(10) + "\r\n" + row(20)).encode())  # 20 cut short
    folder.truncate_metrics(40, METRIC_COLUMNS)
    assert [int(r["update"]) for r in read_metrics(tmp_path / "metrics.csv")] == [10]


# ------------------------------------------------------------------ restart
def command_in(message):
    found = re.findall(r"`rkm train (--\w+) (\S+)`", message)
    assert len(found) == 1, message
    return found[0]


def test_a_run_without_save_points_is_restarted_and_the_two_messages_never_point_at_each_other(tmp_path, capsys):
    run = tmp_path / "early"
    assert main(["train", *TINY, "--max-epochs", "20", "--run-dir", str(run)]) == 0
    shutil.rmtree(run / "model_states")  # as if killed before its first save point
    (run / "metrics.csv").write_bytes((run / "metrics.csv").read_bytes()[:-5])
    assert main(["train", *TINY, "--max-epochs", "20", "--run-dir", str(run)]) == 2
    assert command_in(one_line(capsys)) == ("--restart", str(run))
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert command_in(one_line(capsys)) == ("--restart", str(run))
    assert main(["train", "--restart", str(run), "--no-progress"]) == 0
    assert updates(run) == [10, 20]
    assert main(["train", *TINY, "--max-epochs", "20", "--run-dir", str(run)]) == 2
    assert command_in(one_line(capsys)) == ("--resume", str(run))
    assert main(["train", "--restart", str(run), "--no-progress"]) == 2
    assert command_in(one_line(capsys)) == ("--resume", str(run))
    assert main(["train", "--resume", str(run), "--max-epochs", "30", "--no-progress"]) == 0


def test_resume_and_restart_of_a_folder_without_a_run_point_at_a_plain_train(tmp_path, capsys):
    for flag in ("--resume", "--restart"):
        assert main(["train", flag, str(tmp_path / "none"), "--no-progress"]) == 2
        assert "`rkm train --run-dir" in one_line(capsys)
    assert not (tmp_path / "none").exists()


# ------------------------------------------------------------------ kill -9
def test_kill_9_at_random_moments_then_resume_gives_the_uninterrupted_run(tmp_path):
    argv = [*TINY, "--max-epochs", "300"]
    straight, run, log = tmp_path / "straight", tmp_path / "killed", tmp_path / "child.log"
    assert main(["train", *argv, "--run-dir", str(straight)]) == 0
    folder, rng, kills = RunFolder(run, "tiny"), random.Random(2026), 0
    while kills < 12:
        latest = folder.latest()
        if latest is not None:
            command = ["train", "--resume", str(run), "--no-progress"]
        elif (run / "config.toml").exists():
            command = ["train", "--restart", str(run), "--no-progress"]
        else:
            command = ["train", *argv, "--run-dir", str(run)]
        child = fork_cli(command, log)
        time.sleep(rng.uniform(0.0, 0.4))
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
            kills += 1
        child.join()
        assert child.exitcode in (0, -signal.SIGKILL), log.read_text()
        if folder.latest() is not None:  # the folder loads after every kill
            restore(*read_savepoint(folder.latest()[1]), device="cpu")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    a = rkm.load_model("tiny", model_state_path=straight / "model_states")[1]
    b = rkm.load_model("tiny", model_state_path=run / "model_states")[1]
    assert a.epoch == b.epoch == 300
    for name in ("W", "v_bias", "h_bias", "energy", "power_f", "power_b", "persistent_chains"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    rows_a, rows_b = read_metrics(straight / "metrics.csv"), read_metrics(run / "metrics.csv")
    assert [r["update"] for r in rows_b] == [r["update"] for r in rows_a] == list(range(10, 301, 10))
    for ra, rb in zip(rows_a, rows_b):
        for key in ("train_error", "power_f", "power_b", "energy", "relax_t_f_mean"):
            assert ra[key] == rb[key], (ra["update"], key)
        assert "test_error" not in ra and "test_error" not in rb  # bars and stripes has no held-out set
    assert [p.name for p in (run / "model_states").iterdir() if p.name.endswith(".tmp")] == []


# ------------------------------------------------------------------ full disk, read-only file system, paths
def _failing(real_open, real_write, error, after):
    """``os.write`` failing with ``error`` on save-point temporaries once ``after`` of them were written."""
    count = {"n": 0}

    def write(fd, data):
        name = os.readlink(f"/proc/self/fd/{fd}")
        if ".safetensors." in name and name.endswith(".tmp"):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(error, os.strerror(error))
        return real_write(fd, data)

    return write


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS])
def test_a_full_disk_or_read_only_file_system_is_one_line_naming_the_intact_save_point(tmp_path, capsys, monkeypatch,
                                                                                       error):
    run = tmp_path / "full"
    monkeypatch.setattr(os, "write", _failing(os.open, os.write, error, after=5))
    assert main(["train", *TINY, "--max-epochs", "40", "--run-dir", str(run)]) == 2
    line = one_line(capsys)
    monkeypatch.undo()
    latest = RunFolder(run, "tiny").latest()
    assert latest is not None and os.strerror(error) in line
    assert f"The last good save point, {latest[1]}, is intact" in line, line
    restore(*read_savepoint(latest[1]), device="cpu")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0


def test_a_read_only_run_folder_at_start_is_one_line(tmp_path, capsys, monkeypatch):
    real = os.open

    def read_only(path, flags, *args, **kwargs):
        if str(path).startswith(str(tmp_path)) and ".tmp" in str(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert main(["train", *TINY, "--max-epochs", "5", "--run-dir", str(tmp_path / "ro")]) == 2
    line = one_line(capsys)
    assert "Read-only file system" in line and "No save point had been written" in line


@pytest.mark.parametrize("where", ["file", "under"])
def test_a_run_dir_that_is_a_file_or_under_one_is_one_line(tmp_path, capsys, where):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    run = blocker if where == "file" else blocker / "sub" / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 2
    line = one_line(capsys)
    assert ("is a file" if where == "file" else f"lies under the file {blocker}") in line
    assert blocker.read_text() == "x"
