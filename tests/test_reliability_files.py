"""Regression tests for the breaks of the file surfaces (issue 22, items 2, 3, 5, 6, 7): each reader
refuses a FIFO at once, declared sizes are held against the file, save points are bound to their
place, one OUT holds one sweep, Dask's failures are one line, a converted file always loads."""
# ruff: noqa: F811 - the tests take the fixture imported from test_legacy as an argument

import collections
import io
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import _capped
import numpy as np
import pytest
import safetensors.torch
import torch
from test_legacy import stand_in_pyrkm  # noqa: F401  (the fixture that writes pyrkm-like pickles)

import rkm
import rkm.io.datasets
import rkm.io.savepoints
from rkm.app._cli import main
from rkm.compat.pickles import convert_each, convert_pyrkm, read_pyrkm_savepoint, unpickle
from rkm.errors import CheckpointError


class Reduces:
    """An object that pickles as ``function(*args)``."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("rkm: error: ") and err.count("\n") == 1, err
    return err


# ------------------------------------------------------------------ pickles and convert-pyrkm
def rebuilt_past_storage():
    """A pickled tensor of 4 x 6 elements over a storage of one element."""
    storage = torch.zeros(1).untyped_storage()
    typed = torch.TypedStorage(wrap_storage=storage, dtype=torch.float32, _internal=True)
    return Reduces(torch._utils._rebuild_tensor_v2, typed, 0, (4, 6), (6, 1), False, collections.OrderedDict())


HOSTILE_DATA = {
    "an unknown codec": lambda: pickle.dumps(Reduces(__import__("codecs").encode, "abc", "rot13"), protocol=2),
    "a count of 10**13 bytes": lambda: pickle.dumps(Reduces(bytes, 10**13), protocol=2),
    "a bytearray of 10**13": lambda: pickle.dumps(Reduces(bytearray, 10**13), protocol=2),
    "a frame of 2**62 bytes": lambda: b"\x80\x04\x95" + struct.pack("<Q", 2**62) + b"N.",
    "bytes8 of 2**62 bytes": lambda: b"\x80\x04\x8e" + struct.pack("<Q", 2**62) + b"xx.",
    "bytearray8 of 2**62 bytes": lambda: b"\x80\x05\x96" + struct.pack("<Q", 2**62) + b".",
    "a string decoded by an unknown codec": lambda: pickle.dumps(Reduces(str, b"abc", "rot13"), protocol=2),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DATA))
def test_unpickle_refuses_hostile_sizes_and_codecs_with_one_typed_error(tmp_path, case):
    path = tmp_path / "data.pkl"
    path.write_bytes(HOSTILE_DATA[case]())
    with pytest.raises(CheckpointError, match=str(path)):
        unpickle(path)


def test_a_fifo_named_like_a_pyrkm_save_point_is_reported_not_waited_on(tmp_path, stand_in_pyrkm):
    stand_in_pyrkm(tmp_path, "RKM", 3)
    os.mkfifo(tmp_path / "old_t9.pkl")
    with pytest.raises(CheckpointError, match="FIFO"):
        unpickle(tmp_path / "old_t9.pkl")
    done = {c.source.name: c for c in convert_each(tmp_path)}
    assert done["old_t3.pkl"].target == tmp_path / "old_t3.safetensors"
    assert done["old_t9.pkl"].target is None and "is a FIFO" in done["old_t9.pkl"].error


BAD_MODELS = {
    "epoch 'abc'": ({"epoch": "abc"}, "not an update count"),
    "epoch NaN": ({"epoch": float("nan")}, "not an update count"),
    "epoch [1]": ({"epoch": [1]}, "not an update count"),
    "epoch 10**30": ({"epoch": 10**30}, "not an update count"),
    "epoch -5": ({"epoch": -5}, "not an update count"),
    "a 3-element energy": ({"energy": torch.ones(3)}, "'energy' has 3 values"),
    "an object array for W": ({"W": np.array([[None] * 6] * 4, dtype=object)}, "array of object"),
    "chains of the wrong shape": ({"persistent_chains": torch.zeros(7, 3)}, "persistent_chains"),
    "an Adam moment of the wrong shape": ({"m_dW": torch.zeros(2, 2)}, "m_dW"),
    "W beyond max_W": ({"W": torch.full((4, 6), 50.0)}, "max_W"),
    "a view past its storage": ({"W": "past storage"}, "reaches past its storage"),
}


@pytest.mark.parametrize("case", sorted(BAD_MODELS))
def test_convert_pyrkm_writes_only_what_load_model_will_load(tmp_path, stand_in_pyrkm, case, capsys):
    changes, reason = BAD_MODELS[case]
    if isinstance(changes.get("W"), str):
        changes = {"W": rebuilt_past_storage()}
    stand_in_pyrkm(tmp_path, "RKM", 2)
    stand_in_pyrkm(tmp_path, "RKM", 5, **changes)
    assert main(["convert-pyrkm", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"converted {tmp_path / 'old_t2.pkl'} -> {tmp_path / 'old_t2.safetensors'}"
    assert out[1].startswith(f"not converted: {tmp_path / 'old_t5.pkl'}") and reason in out[1], out[1]
    assert out[2] == "1 of 2 pyrkm save points converted"
    assert sorted(p.name for p in tmp_path.glob("*.safetensors")) == ["old_t2.safetensors"]
    found, model = rkm.load_model("old", model_state_path=tmp_path)
    assert found and model.epoch == 2
    with pytest.raises(CheckpointError, match="1 of the 2"):
        convert_pyrkm(tmp_path, strict=True)


def test_convert_pyrkm_exits_non_zero_when_nothing_converted(tmp_path, stand_in_pyrkm, capsys):
    stand_in_pyrkm(tmp_path, "RKM", 4, epoch=-5)
    (tmp_path / "cut_t7.pkl").write_bytes(pickle.dumps({"a": 1})[:5])
    assert main(["convert-pyrkm", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"rkm: error: none of the 2 pyrkm save points in {tmp_path} could be converted (each reason is above).\n"
    assert not list(tmp_path.glob("*.safetensors"))


# ------------------------------------------------------------------ a FIFO in each reader
def _config_file(path):
    from rkm.app.config import read_config_file

    read_config_file(path)


def _metrics(path):
    from rkm.app.metrics_log import read_metrics

    read_metrics(path)


def _summary(path):
    from rkm.io import _files

    _files.read_json(path, "summary", rkm.errors.DataError)


def _scheduler(path):
    from rkm.app._sweep_cluster import scheduler_address

    scheduler_address(str(path))


def _data_record(path):
    from rkm.app._runfolder import RunFolder

    RunFolder(path.parent, "x").check_data(None)


READERS = {
    "data.npy": rkm.io.datasets.load_array, "data.npz": rkm.io.datasets.load_array,
    "data.csv": rkm.io.datasets.load_array, "images-idx3-ubyte": rkm.io.datasets.read_idx,
    "config.toml": _config_file, "metrics.csv": _metrics, "summary.json": _summary, "data.json": _data_record,
    "m_t1.safetensors": rkm.io.savepoints.read_savepoint, "data.pkl": unpickle, "old_t1.pkl": read_pyrkm_savepoint,
    "scheduler.json": _scheduler,
}


@pytest.mark.parametrize("name", sorted(READERS))
def test_every_reader_refuses_a_fifo_at_once_with_one_typed_error(tmp_path, name):
    os.mkfifo(tmp_path / name)
    result = _capped.capped(READERS[name], tmp_path / name)
    assert result.startswith("typed: ") and "FIFO" in result and str(tmp_path / name) in result, result


def test_rkm_plot_and_sweep_survive_damaged_derived_files(tmp_path, capsys):
    from rkm.app._sweep_worker import is_finished, read_summary
    from rkm.app.config import resolve_config
    from rkm.app.metrics_log import read_metrics

    run = tmp_path / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "30", "--log-every", "10", "--run-dir", str(run),
                 "--no-progress"]) == 0
    capsys.readouterr()
    metrics = run / "metrics.csv"
    good = metrics.read_bytes()
    metrics.write_bytes(good + b"40,abc,1\n\xff\xfe junk \x00\n" + b"7" * 200_000 + b"\n")
    assert [int(r["update"]) for r in read_metrics(metrics)] == [10, 20, 30]
    assert main(["plot", str(run)]) == 0 and (run / "figures" / "training_curves.png").is_file()
    metrics.unlink()
    os.mkfifo(metrics)
    (run / "figures" / "training_curves.png").unlink()
    done = subprocess.run([sys.executable, "-m", "rkm", "plot", str(run)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0 and "training_curves.png not drawn: " in done.stdout, done.stdout + done.stderr
    assert (run / "figures" / "samples.png").is_file() and not (run / "figures" / "training_curves.png").exists()
    config = resolve_config(config_file=run / "config.toml")
    for damaged in (b"[1, 2]", b"3", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000, None):
        (run / "summary.json").unlink()
        if damaged is None:
            os.mkfifo(run / "summary.json")
        else:
            (run / "summary.json").write_bytes(damaged)
        assert read_summary(run) is None and not is_finished(run, config)


def test_declared_sizes_are_held_against_the_file_before_allocating(tmp_path):
    x = np.zeros((2, 4), np.float32)
    np.save(tmp_path / "a.npy", x)
    raw = (tmp_path / "a.npy").read_bytes()
    (tmp_path / "huge.npy").write_bytes(raw.replace(b"(2, 4)", b"(1000000, 1000000)"))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("train.npy", raw.replace(b"(2, 4)", b"(1000000, 1000000)"))
    (tmp_path / "huge.npz").write_bytes(buffer.getvalue())
    np.savez(tmp_path / "z.npz", train=np.ones((50, 16), np.float32))
    whole = (tmp_path / "z.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    flipped = bytearray(whole)
    flipped[whole.find(b"\x93NUMPY") + 200] ^= 1
    (tmp_path / "crc.npz").write_bytes(bytes(flipped))

    def idx(name, dims, code=8):
        (tmp_path / name).write_bytes(bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims))
        return tmp_path / name

    damaged = "not a complete .npz (zip) archive"
    cases = {"huge.npy": "truncated", "huge.npz": "truncated", "cut.npz": damaged, "crc.npz": damaged,
             idx("mnist", (60000, 100000, 100000)): "truncated", idx("wraps", (2**32 - 1,) * 3, 0x0E): "truncated",
             idx("many", (0,) * 255): "declares 255 dimensions; a data file has 1 to 3"}
    for name, reason in cases.items():
        path = tmp_path / name
        reader = rkm.io.datasets.read_idx if path.suffix == "" else rkm.io.datasets.load_array
        result = _capped.capped(reader, path)
        assert result.startswith("typed: DataError") and reason in result and str(path) in result, result


# ------------------------------------------------------------------ save points bound to their place
DATA = Path(__file__).parent / "data"
# Values printed by tests/data/format2.py when the files were written (update, energy, sum of W).
FORMAT_2 = {"format2_main_pcd_adam_centering": ("f2", 5, 84.66209065914154, -0.965188),
            "format2_main_rbm_vrdm": ("f2rbm", 4, 33.034609421451705, -0.2830406081955741)}


@pytest.fixture(scope="module")
def bars_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bars") / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "40", "--run-dir", str(run), "--no-progress"]) == 0
    return run


def copy_run(run, to):
    import shutil

    shutil.copytree(run, to)
    return to


def test_a_copied_or_rolled_back_save_point_is_refused_not_loaded(bars_run, tmp_path, capsys):
    run = copy_run(bars_run, tmp_path / "run")
    states = run / "model_states"
    (states / "bars_t99.safetensors").write_bytes((states / "bars_t10.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="holds the model 'bars' at update 10, not 'bars' at update 99"):
        rkm.load_model("bars", model_state_path=states)
    for argv in (["generate", str(run), "-n", "4", "-o", str(tmp_path / "x.npy")], ["evaluate", str(run)],
                 ["plot", str(run)], ["train", "--resume", str(run), "--max-epochs", "45", "--no-progress"]):
        assert main(argv) == 2
        assert "bars_t99.safetensors holds the model 'bars' at update 10" in one_error_line(capsys)
    (states / "bars_t99.safetensors").unlink()
    (states / "other_t40.safetensors").write_bytes((states / "bars_t40.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="holds the model 'bars' at update 40, not 'other' at update 40"):
        rkm.load_model("other", model_state_path=states)
    (states / "other_t40.safetensors").unlink()
    assert main(["train", "--resume", str(run), "--max-epochs", "45", "--no-progress"]) == 0
    assert rkm.load_model("bars", model_state_path=states)[1].epoch == 45


def test_a_save_point_of_another_run_is_refused_in_a_run_folder(bars_run, tmp_path, capsys):
    run = copy_run(bars_run, tmp_path / "run")
    other = tmp_path / "other"
    assert main(["train", "--preset", "bars", "--max-epochs", "40", "--seed", "3", "--run-dir", str(other),
                 "--no-progress"]) == 0
    capsys.readouterr()
    foreign = other / "model_states" / "bars_t40.safetensors"
    (run / "model_states" / "bars_t40.safetensors").write_bytes(foreign.read_bytes())
    for argv in (["generate", str(run), "-n", "4", "-o", str(tmp_path / "x.npy")],
                 ["train", "--resume", str(run), "--max-epochs", "45", "--no-progress"]):
        assert main(argv) == 2
        assert "belongs to another run" in one_error_line(capsys)
    assert rkm.load_model("bars", model_state_path=run / "model_states")[0]  # outside a run folder: no run to hold


def re_signed(path, change):
    """``path`` rewritten with ``change(tensors, header)`` applied and a valid digest (as anyone with rkm can)."""
    tensors, header = rkm.io.savepoints.read_savepoint(path)
    change(tensors, header)
    rkm.io.savepoints.write_savepoint(path, tensors, header)


@pytest.mark.parametrize("change,reason", [
    (lambda t, h: t["W"].fill_(1e30), r"W in \[1e\+30, 1e\+30\], outside \[min_W, max_W\]"),
    (lambda t, h: t["energy"].fill_(-1.0), "energy = -1 < 0"),
    (lambda t, h: t["persistent_chains"].fill_(0.5), "persistent_chains with values other than 0 and 1"),
    (lambda t, h: t["energy_settled_since"].fill_(10**6), "energy_settled_since = 1000000"),
    (lambda t, h: t["rng_state"].copy_(torch.randint(0, 256, t["rng_state"].shape, dtype=torch.uint8,
                                                     generator=torch.Generator().manual_seed(1))),
     "random generator state that torch refuses"),
    (lambda t, h: h["state"].update(run="not-a-run"), "state.run = 'not-a-run'"),
])
def test_re_signed_values_the_model_cannot_have_are_refused(bars_run, tmp_path, change, reason):
    states = copy_run(bars_run, tmp_path / "run") / "model_states"
    re_signed(states / "bars_t40.safetensors", change)
    with pytest.raises(CheckpointError, match=reason):
        rkm.load_model("bars", model_state_path=states)


def test_a_state_the_loader_would_refuse_is_never_written(tmp_path):
    model = rkm.RKM("m", 6, 4, seed=0)
    model.max_W = 0.5
    model.W = torch.full((4, 6), 0.75)
    with pytest.raises(rkm.errors.DataError, match=r"W in \[0.75, 0.75\], outside \[min_W, max_W\]"):
        rkm.save_model(model, tmp_path)
    assert not list(tmp_path.iterdir())
    model.network.clip()
    assert rkm.load_model("m", model_state_path=rkm.save_model(model, tmp_path).parent)[1].run_id is None


@pytest.mark.parametrize("name", sorted(FORMAT_2))
def test_format_2_save_points_still_load_and_resave_as_format_3(tmp_path, name):
    model_name, update, energy, w_sum = FORMAT_2[name]
    tensors, header = rkm.io.savepoints.read_savepoint(DATA / f"{name}.safetensors")
    assert header["format_version"] == 2 and "run" not in header["state"]
    model = rkm.machine.restore(tensors, header, device="cpu")
    assert (model.model_name, model.epoch, float(model.energy), model.run_id) == (model_name, update, energy, None)
    assert float(model.W.double().sum()) == pytest.approx(w_sum, rel=1e-6)
    again = rkm.io.savepoints.read_savepoint(rkm.save_model(model, tmp_path))
    assert again[1]["format_version"] == 3 and again[1]["state"]["run"] is None


def test_a_run_of_format_2_save_points_resumes_and_binds_itself(bars_run, tmp_path, capsys):
    run = copy_run(bars_run, tmp_path / "run")
    (run / "run.json").unlink()
    for _, path in rkm.io.savepoints.list_savepoints(run / "model_states", "bars"):
        tensors, header = rkm.io.savepoints.read_savepoint(path)
        del header["state"]["run"]
        metadata = {"format": "rkm-savepoint", "format_version": "2", "class": header["class"],
                    "config": json.dumps(header["config"]), "state": json.dumps(header["state"])}
        metadata["sha256"] = rkm.io.savepoints._digest(metadata, tensors)
        path.write_bytes(safetensors.torch.save(tensors, metadata=metadata))
    assert main(["train", "--resume", str(run), "--max-epochs", "45", "--no-progress"]) == 0
    recorded = json.loads((run / "run.json").read_text())["run"]
    latest = rkm.io.savepoints.read_savepoint(run / "model_states" / "bars_t45.safetensors")[1]
    assert latest["format_version"] == 3 and latest["state"]["run"] == recorded
    assert main(["generate", str(run), "-n", "2", "-o", str(tmp_path / "x.npy")]) == 0


# ------------------------------------------------------------------ one OUT, one sweep; seeds and grids
SWEEP_BASE = {"model": {"n_hidden": 8, "lr": 0.05, "max_epochs": 20, "batch_size": 8},
              "data": {"dataset": "bars-and-stripes", "size": 3},
              "run": {"name": "bars", "log_every": 10, "n_generate": 4, "generate_k": 5, "n_eval": 14}}


@pytest.fixture(scope="module")
def thread_client():
    from distributed import Client

    with Client(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as client:
        yield client


def snapshot(folder):
    return {p: p.stat().st_mtime_ns for p in sorted(folder.rglob("*"))}


def test_two_different_sweeps_on_one_out_are_refused_before_anything_runs(tmp_path, thread_client, capsys):
    from rkm.app import sweep

    out = tmp_path / "out"
    rows = sweep.run_sweep(SWEEP_BASE, {"model.offset": [0, 0.5]}, [0], out, client=thread_client, progress=False)
    assert [r["status"] for r in (rows.to_dict("records") if hasattr(rows, "to_dict") else rows)] == ["ok", "ok"]
    before = snapshot(out)
    other = {**SWEEP_BASE, "model": {**SWEEP_BASE["model"], "lr": 0.07}}
    with pytest.raises(rkm.errors.ConfigError, match=r"holds a sweep of another base configuration \(model.lr "
                                                     r"\(0.05 -> 0.07\)\)"):
        sweep.run_sweep(other, {"model.offset": [0, 0.5]}, [0], out, client=thread_client, progress=False)
    with pytest.raises(rkm.errors.ConfigError, match="holds a sweep over model.offset, not over model.k"):
        sweep.run_sweep(SWEEP_BASE, {"model.k": [1, 2]}, [0], out, client=thread_client, progress=False)
    assert snapshot(out) == before
    (tmp_path / "base.toml").write_text("[model]\nn_hidden = 8\nlr = 0.07\nmax_epochs = 20\nbatch_size = 8\n"
                                        "[data]\ndataset = 'bars-and-stripes'\nsize = 3\n")
    assert main(["sweep", "--config", str(tmp_path / "base.toml"), "--grid", "model.offset=0,0.5", "--out", str(out),
                 "--no-progress"]) == 2
    assert "holds a sweep of another base configuration" in one_error_line(capsys)


def test_concurrent_claims_of_one_out_agree_or_one_is_refused(tmp_path):
    import threading

    from rkm.app._sweep_record import claim
    from rkm.app.config import resolve_config

    base = resolve_config(overrides=SWEEP_BASE)
    other = resolve_config(overrides={**SWEEP_BASE, "model": {**SWEEP_BASE["model"], "lr": 0.07}})
    outcomes = []

    def claim_as(config):
        try:
            claim(tmp_path, config, {"model.offset": ["0", "0.5"]}, [0])
            outcomes.append("claimed")
        except rkm.errors.ConfigError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim_as, args=(c,)) for c in (base, base, base, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    recorded = json.loads((tmp_path / "sweep.json").read_text())["base"]["model"]["lr"]
    if recorded == 0.05:  # a base claim came first: the other configuration's was refused
        assert sorted(outcomes) == ["claimed"] * 3 + ["refused"]
    else:  # the other configuration came first: every base claim was refused
        assert sorted(outcomes) == ["claimed"] + ["refused"] * 3


@pytest.mark.parametrize("argv,message", [
    (["--seeds", "1e20"], "--seeds takes a count"),
    (["--seeds", str(10**20)], "--seeds N needs N from 1 to 10000"),
    (["--seeds", f"0,{2**63}"], "seeds must be integers from 0 to 9223372036854775807"),
    (["--seeds", "0,0"], "list a seed twice"),
    (["--grid", "model.offset=" + ",".join(str(i / 1000) for i in range(1000)), "--grid",
      "model.k=" + ",".join(str(i) for i in range(1, 1001))], "the sweep would have 1000000 runs"),
])
def test_seed_and_grid_sizes_are_bounded_with_one_line(tmp_path, capsys, argv, message):
    (tmp_path / "base.toml").write_text("[data]\ndataset = 'bars-and-stripes'\n")
    assert main(["sweep", "--config", str(tmp_path / "base.toml"), *argv, "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert message in one_error_line(capsys)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("table,message", [
    ("[sweep]\nseeds = 9223372036854775807\n", "--seeds N needs N from 1 to 10000"),
    ("[[sweep]]\nseeds = 2\n", "sweep in"),
    ("sweep = 'offset'\n", "sweep in"),
    ("[sweep]\nseeds = [1, 'a']\n", "seeds must be integers"),
    ("[sweep.model]\noffset = 0.5\n", "must be a list of values"),
    ("[sweep.other]\noffset = [0.5]\n", "unknown table [sweep.other]"),
])
def test_malformed_sweep_tables_are_one_line(tmp_path, capsys, table, message):
    (tmp_path / "base.toml").write_text("[data]\ndataset = 'bars-and-stripes'\n" + table)
    assert main(["sweep", "--config", str(tmp_path / "base.toml"), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert message in one_error_line(capsys)


@pytest.fixture
def web_server():
    """An HTTP server on 127.0.0.1 (it answers, but not as Dask)."""
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_bad_scheduler_addresses_are_one_line_each(tmp_path, capsys, web_server):
    import dask

    (tmp_path / "base.toml").write_text("[data]\ndataset = 'bars-and-stripes'\n[model]\nmax_epochs = 5\n")
    (tmp_path / "wrong.json").write_text('{"addr": "tcp://x:1"}')
    (tmp_path / "list.json").write_text("[1, 2]")
    cases = {"nonsense": "neither an address", "": "names no scheduler", "/dev/null": "a character device",
             f"http://127.0.0.1:{web_server}": "the scheme 'http'", str(tmp_path / "wrong.json"): 'no "address"',
             str(tmp_path / "list.json"): "is not a scheduler file", "tcp://[::1": "invalid address",
             f"tcp://127.0.0.1:{web_server}": "no Dask scheduler answered"}
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):
        for scheduler, message in cases.items():
            out = tmp_path / "o"
            assert main(["sweep", "--config", str(tmp_path / "base.toml"), "--out", str(out), "--scheduler", scheduler,
                         "--no-progress"]) == 2
            assert message in one_error_line(capsys), scheduler
            assert not (out / "sweep.json").exists()


def test_a_finished_run_whose_summary_is_a_fifo_resumes_and_writes_it_anew(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "20", "--log-every", "10", "--run-dir", str(run),
                 "--no-progress"]) == 0
    (run / "summary.json").unlink()
    os.mkfifo(run / "summary.json")
    done = subprocess.run([sys.executable, "-m", "rkm", "train", "--resume", str(run), "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "is a FIFO, not a regular file" in done.stderr and (run / "summary.json").is_file()
    assert json.loads((run / "summary.json").read_text())["updates"] == 20


def test_an_output_path_that_is_not_a_regular_file_is_refused_before_any_work(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "10", "--log-every", "10", "--run-dir", str(run),
                 "--no-progress"]) == 0
    fifo = tmp_path / "x.npy"
    os.mkfifo(fifo)
    capsys.readouterr()
    for argv in (["generate", str(run), "-o", str(fifo)], ["reconstruct", str(run), "-o", str(fifo)],
                 ["evaluate", str(run), "--json", str(fifo)]):
        assert main(argv) == 2
        assert "is a FIFO, not a regular file; give a new file name." in capsys.readouterr().err
