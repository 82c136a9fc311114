"""``rkm sweep`` on Dask distributed: run folders, results, resume, worker deaths, clusters.

Tiny bars-and-stripes runs; every cluster has two one-thread workers on 127.0.0.1.
"""

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from rkm.app import sweep
from rkm.app._cli import main
from rkm.app.config import resolve_config
from rkm.app.run import train_run
from rkm.errors import ConfigError
from rkm.io.savepoints import list_savepoints, read_savepoint, savepoint_path

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
log_every = 50
n_generate = 16
generate_k = 20
n_eval = 14
"""
GRID = ["--grid", "model.offset=0,0.5", "--grid", "model.sampling=bernoulli,multi-threshold", "--seeds", "2"]
QUALITY = ("aats_truth", "aats_syn", "entropy_measure", "covariance_error", "third_moment_error", "power_spectrum_error")


def base_file(folder: Path, max_epochs: int = 150) -> Path:
    path = folder / "base.toml"
    path.write_text(BASE.format(max_epochs=max_epochs))
    return path


def read_results(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def final_state(run_dir: Path) -> dict:
    update, path = list_savepoints(run_dir / "model_states", "bars")[-1]
    return {"update": update, **read_savepoint(path)[0]}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a["update"] == b["update"]
    for name in a:
        if name != "update":
            assert torch.equal(a[name], b[name]), name


def snapshot(folder: Path) -> dict:
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ the 2 x 2 x 2 sweep, embedded cluster
@pytest.fixture(scope="module")
def grid_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    base = base_file(folder)
    out = folder / "out"
    argv = ["sweep", "--config", str(base), *GRID, "--out", str(out), "--workers", "2", "--no-progress"]
    assert main(argv) == 0
    return base, out, argv


def test_grid_sweep_writes_a_folder_per_run_and_results_from_their_summaries(grid_sweep):
    _, out, _ = grid_sweep
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert names == sorted(
        f"offset={o}_sampling={s}_seed={seed}"
        for o in ("0.0", "0.5") for s in ("bernoulli", "multi-threshold") for seed in (0, 1)
    )
    rows = read_results(out)
    assert sorted(r["run"] for r in rows) == names
    for row in rows:
        run_dir = out / "runs" / row["run"]
        summary = json.loads((run_dir / "summary.json").read_text())
        config = resolve_config(config_file=run_dir / "config.toml")
        assert (row["status"], row["action"], row["error"]) == ("ok", "trained", "")
        assert float(row["model.offset"]) == config["model"]["offset"]
        assert row["model.sampling"] == config["model"]["sampling"]
        assert int(row["seed"]) == config["model"]["seed"]
        for key in sweep.SUMMARY_COLUMNS:
            assert float(row[key]) == summary[key], key
        for key in QUALITY:
            assert float(row[key]) == summary["sample_quality_vs_test"][key], key
        assert float(row["wall_s"]) > 0
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_run_equals_rkm_train_with_its_seed(grid_sweep, tmp_path):
    base, out, _ = grid_sweep
    for row in read_results(out):
        direct = tmp_path / row["run"]
        argv = ["train", "--config", str(base), "--offset", row["model.offset"], "--sampling", row["model.sampling"],
                "--seed", row["seed"], "--run-dir", str(direct), "--no-progress"]
        assert main(argv) == 0
        swept = out / "runs" / row["run"]
        assert resolve_config(config_file=direct / "config.toml") == resolve_config(config_file=swept / "config.toml")
        assert_same_state(final_state(swept), final_state(direct))


def test_rerun_skips_every_finished_run(grid_sweep):
    _, out, argv = grid_sweep
    before = snapshot(out / "runs")
    assert main(argv) == 0
    assert snapshot(out / "runs") == before  # no save point, metrics row or figure was written
    assert {r["action"] for r in read_results(out)} == {"skipped"}


def test_deleting_a_final_save_point_reruns_only_that_run(grid_sweep):
    _, out, argv = grid_sweep
    target = out / "runs" / "offset=0.5_sampling=bernoulli_seed=1"
    expected = final_state(target)
    savepoint_path(target / "model_states", "bars", 150).unlink()
    others = {p: v for p, v in snapshot(out / "runs").items() if target not in p.parents}
    assert main(argv) == 0
    assert {p: v for p, v in snapshot(out / "runs").items() if target not in p.parents} == others
    actions = {r["run"]: r["action"] for r in read_results(out)}
    assert actions.pop(target.name) == "resumed"
    assert set(actions.values()) == {"skipped"}
    assert_same_state(final_state(target), expected)


# ------------------------------------------------------------------ bad grids: one line, nothing started
@pytest.mark.parametrize(
    "grid, message",
    [
        (["--grid", "model.ofset=0,0.5"], "unknown config key model.ofset in the grid"),
        (["--grid", "model.offset=0,abc"], "bad grid value model.offset='abc'"),
        (["--grid", "model.sampling=bernoulli,bogus"], "model.sampling=bogus: sampling='bogus' is not supported"),
        (["--grid", "model.seed=1,2"], "list the seeds with --seeds"),
        (["--grid", "model.offset"], "--grid expects table.key=value1,value2"),
        (["--seeds", "two"], "--seeds takes a count"),
    ],
)
def test_bad_grid_keys_and_values_are_one_line_errors(grid, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", "--config", str(base_file(tmp_path)), *grid, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("rkm: error: ") and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_sweep_table_of_a_config_file(tmp_path, capsys):
    path = base_file(tmp_path)
    path.write_text(path.read_text() + '[sweep]\nseeds = [3, 5]\n[sweep.model]\noffset = [0, "high"]\n')
    assert main(["sweep", "--config", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "bad grid value model.offset='high'" in capsys.readouterr().err
    config, grid, seeds = sweep.load_sweep_config(path)
    assert grid == {"model.offset": [0, "high"]} and seeds == [3, 5] and config["model"]["n_hidden"] == 8


def test_grid_and_seed_parsing():
    assert sweep.parse_grid(["model.offset=0, 0.5,1", "data.size=3"]) == {
        "model.offset": ["0", "0.5", "1"], "data.size": ["3"]}
    assert sweep.parse_seeds("3") == [0, 1, 2] and sweep.parse_seeds("4,9") == [4, 9]
    for bad in (["model.offset=0,,1"], ["offset=0"], ["model.k=1", "model.k=2"]):
        with pytest.raises(ConfigError):
            sweep.parse_grid(bad)


def test_a_folder_of_another_configuration_is_refused(tmp_path):
    config = resolve_config(overrides={"model": {"max_epochs": 5}, "data": {"dataset": "bars-and-stripes"}})
    names = [r.name for r in sweep.plan(config, {"model.offset": [-0.5, 0.5], "data.path": ["a/b"]}, [0], tmp_path)]
    assert names == ["offset=-0.5_path=a-b_seed=0", "offset=0.5_path=a-b_seed=0"]
    run = sweep.plan(config, {"model.k": [1, 2]}, [0], tmp_path)[1]
    assert run.name == "k=2_seed=0" and run.path == tmp_path / "runs" / "k=2_seed=0"
    run.path.mkdir(parents=True)
    (run.path / "config.toml").write_text("[model]\nk = 2\nmax_epochs = 6\n")
    with pytest.raises(ConfigError, match="holds a run of another configuration"):
        sweep.plan(config, {"model.k": [1, 2]}, [0], tmp_path)


# ------------------------------------------------------------------ a LocalCluster the tests hold
@pytest.fixture(scope="module")
def cluster():
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0", env={"OMP_NUM_THREADS": "1"}) as local, Client(local) as client:
        yield client


def lock_holder(path: Path) -> int | None:
    """Process id holding the flock on ``path``, from /proc/locks (Linux)."""
    st = path.stat()
    where = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if fields[1] == "FLOCK" and fields[3] == "WRITE":
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == where:
                return int(fields[4])
    return None


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="finds the worker to kill through /proc/locks")
def test_a_killed_worker_has_its_run_resumed_elsewhere(cluster, tmp_path):
    base = resolve_config(config_file=base_file(tmp_path, max_epochs=1500))
    out = tmp_path / "out"
    target = out / "runs" / "offset=0.5_seed=0"
    workers = set(cluster.run(os.getpid).values())
    killed = []

    def kill_mid_run():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            points = list_savepoints(target / "model_states", "bars")
            if points and points[-1][0] >= 100 and not (target / "summary.json").exists():
                pid = lock_holder(target / sweep.LOCK_NAME)
                if pid in workers:  # the worker process training the run
                    os.kill(pid, signal.SIGKILL)
                    killed.append((points[-1][0], pid))
            time.sleep(0.01)

    killer = threading.Thread(target=kill_mid_run)
    killer.start()
    try:
        rows = sweep.run_sweep(base, {"model.offset": [0, 0.5]}, [0], out, client=cluster, progress=False)
    finally:
        killed.append(None)
        killer.join()
    assert killed[0] is not None, "the run finished before a worker could be killed"
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
    by_name = {r["run"]: r for r in rows}
    assert by_name[target.name]["status"] == "ok" and by_name[target.name]["action"] == "resumed"
    assert by_name["offset=0.0_seed=0"]["status"] == "ok"

    straight = tmp_path / "straight"
    config = resolve_config(config_file=target / "config.toml")
    summary = train_run(config, straight)
    assert_same_state(final_state(target), final_state(straight))
    resumed = json.loads((target / "summary.json").read_text())
    for key in ("test_reconstruction_error_k1", "energy", "power_f", "power_b", "sample_quality_vs_test"):
        assert resumed[key] == summary[key], key
    assert set(cluster.run(torch.get_num_threads).values()) == {1}


def test_a_failing_run_is_reported_and_the_others_finish(cluster, tmp_path, capsys):
    out = tmp_path / "out"
    # lr = 1e39 is a valid setting, but its float32 step overflows: the run fails on its own, mid-training
    argv = ["sweep", "--config", str(base_file(tmp_path)), "--grid", "model.lr=1e39,0.05", "--out", str(out),
            "--scheduler", cluster.scheduler_info()["address"], "--no-progress"]
    assert main(argv) == 1
    rows = {r["run"]: r for r in read_results(out)}
    failed, fine = rows["lr=1e+39_seed=0"], rows["lr=0.05_seed=0"]
    assert failed["status"] == "failed" and failed["error"].startswith("DataError")
    assert failed["test_reconstruction_error_k1"] == ""
    assert fine["status"] == "ok" and float(fine["test_reconstruction_error_k1"]) >= 0
    assert "failed lr=1e+39_seed=0: DataError" in capsys.readouterr().out


def test_a_bad_value_anywhere_in_the_grid_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--config", str(base_file(tmp_path)), "--grid", "run.log_every=50,0", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkm: error:") and "log_every" in err[0]
    assert not out.exists()


# ------------------------------------------------------------------ an external cluster: dask scheduler + dask worker
def test_sweep_on_an_external_dask_scheduler_and_two_workers(tmp_path):
    from distributed import Client

    dask = [sys.executable, "-m", "dask"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    info = tmp_path / "scheduler.json"
    local = ["--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    started = [subprocess.Popen([*dask, "scheduler", *local, "--port", "0", "--scheduler-file", str(info)],
                                env=env, cwd=tmp_path, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(2):
            started.append(subprocess.Popen(
                [*dask, "worker", "--scheduler-file", str(info), *local, "--nthreads", "1", "--no-nanny",
                 "--local-directory", str(tmp_path / f"w{i}")],
                env=env, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(info.read_text())["address"]
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
            out = tmp_path / "out"
            argv = ["sweep", "--config", str(base_file(tmp_path)), "--grid", "model.offset=0,0.5", "--out", str(out),
                    "--scheduler", address, "--no-progress"]
            assert main(argv) == 0
            assert [r["status"] for r in read_results(out)] == ["ok", "ok"]
            announced = {msg for topic, events in client.get_events().items() if topic.startswith("rkm-sweep-")
                         for _, msg in events}
            assert announced == {"offset=0.0_seed=0", "offset=0.5_seed=0"}
    finally:
        for process in reversed(started):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(started):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_summary_figure_of_equal_seeds_and_failed_runs(tmp_path):
    from rkm import plots

    rows = [{"run": f"r{i}", "model.offset": offset, "model.sampling": sampling, "seed": seed, "status": "ok",
             "test_reconstruction_error_k1": 0.1, "energy_j": 1.0 + seed}
            for i, (offset, sampling, seed) in enumerate(
                (o, s, seed) for o in (0.0, 0.5) for s in ("bernoulli", "multi-threshold") for seed in (0, 1, 2))]
    rows.append({"run": "bad", "model.offset": 1.0, "model.sampling": "bernoulli", "seed": 0, "status": "failed"})
    fig = sweep.summary_figure(rows, ["model.offset", "model.sampling"])
    assert [ax.get_ylabel() for ax in fig.axes] == ["error (fraction of pixels)", "energy (J)"]
    plots.save(fig, tmp_path / "summary.png")
    assert (tmp_path / "summary.png").stat().st_size > 0


def test_a_missing_summary_is_a_failed_row_not_a_crash(tmp_path):
    run = sweep.Run("k=1_seed=0", tmp_path / "runs" / "k=1_seed=0", {"model.k": 1}, 0, {})
    row = sweep.result_row(run, {"status": "ok", "action": "trained", "error": "", "wall_s": 1.0})
    assert row["status"] == "failed" and row["error"].startswith("DataError") and "does not exist" in row["error"]
    assert "share" in row["error"] and row["test_reconstruction_error_k1"] is None


def test_progress_counts_running_and_failed_runs():
    progress = sweep._Progress(3, 0, enabled=True)
    progress.started((0.0, "a"))
    progress.started((0.0, "b"))
    progress.finished("a", failed=True)
    progress.finished("c", failed=False)
    progress.started((0.0, "c"))  # a start event that arrives after the run's result
    assert (progress.bar.n, progress.running, progress.failed) == (2, {"b"}, 1)
    progress.close()
