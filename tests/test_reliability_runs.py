"""Regression tests for issue 22 (runs, sweeps, save points, convert-pyrkm): a conversion never overwrites
its own output, save-point headers hold declared ranges, damaged run files name the file that is wrong,
one OUT holds one sweep grid."""
# ruff: noqa: F811 - the tests take the fixture imported from test_legacy as an argument

import re

import pytest
import torch
from test_legacy import stand_in_pyrkm  # noqa: F401  (the fixture that writes pyrkm-like pickles)

import rkm
from rkm.app._cli import main
from rkm.compat.pickles import convert_each


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("rkm: error: ") and err.count("\n") == 1, err
    return err


# ------------------------------------------------------------------ convert-pyrkm
def test_two_pickles_of_one_update_never_overwrite_each_other(tmp_path, stand_in_pyrkm, capsys):
    _, first = stand_in_pyrkm(tmp_path, "RKM", 5)
    stand_in_pyrkm(tmp_path, "RKM", 6, epoch=5, W=torch.zeros(4, 6))
    assert main(["convert-pyrkm", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"converted {tmp_path / 'old_t5.pkl'} -> {tmp_path / 'old_t5.safetensors'}"
    assert out[1].startswith(f"not converted: {tmp_path / 'old_t6.pkl'}: its model 'old' at update 5 would be "
                             f"written as {tmp_path / 'old_t5.safetensors'}, which this conversion wrote from "
                             f"{tmp_path / 'old_t5.pkl'}; not overwritten."), out[1]
    assert out[2] == "1 of 2 pyrkm save points converted"
    model = rkm.load_model("old", model_state_path=tmp_path)[1]
    assert torch.equal(model.W.float(), first["W"].float())
    assert main(["convert-pyrkm", str(tmp_path), "--strict"]) == 2
    assert "1 of the 2 pyrkm save points" in one_error_line(capsys)


def _unframed(raw: bytes) -> bytes:
    """A protocol-4 pickle without its FRAME opcode (frames are optional), so that its bytes can be spliced."""
    assert raw[:3] == b"\x80\x04\x95"
    return raw[:2] + raw[11:]


@pytest.mark.parametrize("value,shown", [
    (b"]" * 200_000 + b"a" * 199_999, "is [[[[[...]]]]], not an update count"),
    (b"\x8b\x10\x27\x00\x00" + b"\x7f" * 10_000, "is an integer of 24083 digits, not an update count"),
])
def test_a_pyrkm_epoch_of_any_depth_or_size_is_described_briefly(tmp_path, stand_in_pyrkm, value, shown):
    path, _ = stand_in_pyrkm(tmp_path, "RKM", 7, epoch="EPOCH-SENTINEL")
    raw = _unframed(path.read_bytes())
    assert raw.count(b"\x8c\x0eEPOCH-SENTINEL") == 1
    path.write_bytes(raw.replace(b"\x8c\x0eEPOCH-SENTINEL", value))
    [done] = convert_each(tmp_path)
    assert done.target is None and shown in done.error and len(done.error) < 300, done.error


# ------------------------------------------------------------------ save-point headers within their ranges
@pytest.fixture(scope="module")
def bars_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("bars") / "run"
    assert main(["train", "--preset", "bars", "--max-epochs", "20", "--run-dir", str(run), "--no-progress"]) == 0
    return run


RE_SIGNED = {
    "epoch 2^63": (lambda t, h: h["state"].update(epoch=2**63),
                   "has state.epoch = 9223372036854775808; the update counter must be an integer from 0 to "
                   "9223372036854775807."),
    "programming_pulses -5": (lambda t, h: t["programming_pulses"].fill_(-5), "programming_pulses = -5 < 0"),
    "sequential_time -1": (lambda t, h: t["sequential_time"].fill_(-1), "sequential_time = -1 < 0"),
    "circuit_time -1": (lambda t, h: t["circuit_time"].fill_(-1), "circuit_time = -1 < 0"),
    "pulsed_updates past the update": (lambda t, h: t["pulsed_updates"].fill_(21),
                                       "pulsed_updates = 21, not an update from 0 to 20"),
}


@pytest.mark.parametrize("case", sorted(RE_SIGNED))
def test_re_signed_counters_outside_their_range_are_refused(bars_run, tmp_path, case):
    change, reason = RE_SIGNED[case]
    tensors, header = rkm.io.savepoints.read_savepoint(bars_run / "model_states" / "bars_t20.safetensors")
    change(tensors, header)
    rkm.io.savepoints.write_savepoint(tmp_path / f"bars_t{header['state']['epoch']}.safetensors", tensors, header)
    with pytest.raises(rkm.errors.CheckpointError, match=re.escape(reason)):
        rkm.load_model("bars", model_state_path=tmp_path)


def test_counters_outside_their_range_are_never_written(tmp_path):
    model = rkm.RKM("m", 6, 4, seed=0)
    model.trainer.pulses = -5
    with pytest.raises(rkm.errors.DataError, match="programming_pulses = -5 < 0"):
        rkm.save_model(model, tmp_path)
    model.trainer.pulses = 0
    model.trainer.epoch = 2**63
    with pytest.raises(rkm.errors.DataError, match="update 9223372036854775808, not from 0 to 9223372036854775807"):
        rkm.save_model(model, tmp_path)
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ sweeps: folders, grids, --out and --seeds
from test_reliability_files import SWEEP_BASE, snapshot, thread_client  # noqa: E402, F401


def _statuses(rows):
    return [(r["run"], r["status"]) for r in (rows.to_dict("records") if hasattr(rows, "to_dict") else rows)]


def test_a_rerun_may_extend_a_sweep_grid_but_not_leave_runs_out(tmp_path, thread_client, capsys):
    from rkm.app import sweep

    out = tmp_path / "out"
    sweep.run_sweep(SWEEP_BASE, {"model.offset": [0, 0.5]}, [0], out, client=thread_client, progress=False)
    before = snapshot(out)
    with pytest.raises(rkm.errors.ConfigError, match=re.escape(
            f"{out} holds a sweep that also ran offset=0.0_seed=0, offset=0.5_seed=0, which this one leaves out; a "
            "re-run may add grid values and seeds, not drop any, so that results.csv lists every run. Repeat its "
            "values (model.offset: 0, 0.5; seeds 0) and add yours, or use another --out.")):
        sweep.run_sweep(SWEEP_BASE, {"model.offset": [1]}, [0], out, client=thread_client, progress=False)
    with pytest.raises(rkm.errors.ConfigError, match="also ran offset=0.5_seed=0, which this one leaves out"):
        sweep.run_sweep(SWEEP_BASE, {"model.offset": [0, 1]}, [0, 1], out, client=thread_client, progress=False)
    assert snapshot(out) == before
    rows = sweep.run_sweep(SWEEP_BASE, {"model.offset": [0, 0.5, 1]}, [0, 1], out, client=thread_client,
                           progress=False)
    assert sorted(_statuses(rows)) == [(f"offset={o}_seed={s}", "ok") for o in ("0.0", "0.5", "1.0") for s in (0, 1)]
    (tmp_path / "base.toml").write_text("[model]\nn_hidden = 8\nlr = 0.05\nmax_epochs = 20\nbatch_size = 8\n"
                                        "[data]\ndataset = 'bars-and-stripes'\nsize = 3\n[run]\nname = 'bars'\n"
                                        "log_every = 10\nn_generate = 4\ngenerate_k = 5\nn_eval = 14\n")
    assert main(["sweep", "--config", str(tmp_path / "base.toml"), "--grid", "model.offset=0.5", "--seeds", "0,1",
                 "--out", str(out), "--no-progress"]) == 2
    assert "leaves out; a re-run may add grid values and seeds" in one_error_line(capsys)


def test_a_sweep_record_of_an_older_rkm_is_held_to_its_grid_and_seeds(tmp_path):
    import json

    from rkm.app._sweep_record import claim
    from rkm.app.config import resolve_config

    config = resolve_config()
    claim(tmp_path, config, {"model.offset": ["0", "0.5"]}, [0, 1], ["offset=0_seed=0"])
    record = json.loads((tmp_path / "sweep.json").read_text())
    del record["runs"]
    (tmp_path / "sweep.json").write_text(json.dumps(record))
    with pytest.raises(rkm.errors.ConfigError, match="also ran model.offset=0.5, seed=1, which this one leaves out"):
        claim(tmp_path, config, {"model.offset": ["0", "1"]}, [0], ["offset=0_seed=0", "offset=1_seed=0"])
    claim(tmp_path, config, {"model.offset": ["0", "0.5", "1"]}, [0, 1, 2], ["offset=0_seed=0"])


@pytest.mark.parametrize("in_the_way", ["out", "out/runs", "out/runs/offset=0.0_seed=0"])
def test_a_file_where_a_sweep_folder_goes_is_one_line_before_any_work(tmp_path, capsys, in_the_way):
    (tmp_path / in_the_way).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / in_the_way).write_text("not a folder")
    (tmp_path / "base.toml").write_text("[model]\nn_hidden = 8\nmax_epochs = 2\n[data]\ndataset = 'bars-and-stripes'\n"
                                        "size = 3\n")
    assert main(["sweep", "--config", str(tmp_path / "base.toml"), "--grid", "model.offset=0", "--seeds", "1",
                 "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = one_error_line(capsys)
    advice = "choose a folder" if in_the_way == "out" else "move it away, or use another --out"
    assert err.endswith(f"{in_the_way} is a file, not a folder; {advice}.\n"), err
    assert (tmp_path / in_the_way).read_text() == "not a folder"


def test_a_worker_finding_a_file_where_its_run_folder_goes_reports_one_line(tmp_path):
    from rkm.app._sweep_worker import train_one
    from rkm.app.config import resolve_config

    (tmp_path / "runs").write_text("not a folder")
    outcome = train_one(resolve_config("bars"), tmp_path / "runs" / "seed=0")
    assert outcome["status"] == "failed" and outcome["error"] == (
        f"cannot make the run folder {tmp_path / 'runs' / 'seed=0'}: a file is in the way; move it away, or use "
        "another --out.")


@pytest.mark.parametrize("argv,message", [
    (["--out", ""], "argument --out: is empty; name a folder, e.g. --out sweeps/NAME"),
    (["--out", "  "], "argument --out: is empty; name a folder, e.g. --out sweeps/NAME"),
    (["--out", "{out}", "--seeds", "1,,2"], "--seeds '1,,2' has an empty seed; separate the seeds by single commas"),
    (["--out", "{out}", "--seeds", "1,2,"], "--seeds '1,2,' has an empty seed"),
])
def test_an_empty_out_or_seed_is_one_line(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(out=tmp_path / "out") for a in argv]
    try:
        code = main(["sweep", "--preset", "bars", *argv, "--no-progress"])
    except SystemExit as stop:  # argparse's refusals exit
        code = stop.code
    assert code == 2 and message in one_error_line(capsys)
    assert not list(tmp_path.iterdir())


def test_run_sweep_refuses_an_empty_out(tmp_path, monkeypatch):
    from rkm.app import sweep

    monkeypatch.chdir(tmp_path)
    with pytest.raises(rkm.errors.ConfigError, match="out is empty; name the sweep folder"):
        sweep.run_sweep(SWEEP_BASE, {}, [0], "")
    assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ damaged run files name the file that is wrong
def _damaged(bars_run, tmp_path, damage):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(bars_run, run)
    damage(run)
    return run


READ_COMMANDS = (["generate", "{run}", "-n", "4", "-o", "{out}"], ["evaluate", "{run}"], ["plot", "{run}"],
                 ["reconstruct", "{run}", "-o", "{out}"])


def _edit_n_hidden(value):
    def edit(run):
        text = (run / "config.toml").read_text()
        (run / "config.toml").write_text(re.sub(r"(?m)^n_hidden = .*$", f"n_hidden = {value}", text))
    return edit


def _copy_run_json(tmp_path):
    def copy(run):
        other = tmp_path / "other"
        assert main(["train", "--preset", "bars", "--max-epochs", "2", "--run-dir", str(other), "--no-progress"]) == 0
        (run / "run.json").write_bytes((other / "run.json").read_bytes())
    return copy


@pytest.mark.parametrize("case", ["empty config", "n_hidden 1e10", "n_hidden 20", "run renamed", "run.json copied"])
def test_damaged_run_files_are_named_by_every_command_that_reads_the_run(bars_run, tmp_path, capsys, case):
    damage, expected = {
        "empty config": (lambda run: (run / "config.toml").write_text(""),
                         "run/config.toml is empty: it should hold the run's settings, as rkm train wrote them."),
        "n_hidden 1e10": (_edit_n_hidden("1e10"),
                          "run/config.toml holds settings the run cannot have: a model of model.n_hidden (config.toml) "
                          "10000000000"),
        "n_hidden 20": (_edit_n_hidden(20),
                        "run/config.toml does not match its save point"),
        "run renamed": (lambda run: (run / "config.toml").write_text(
                            (run / "config.toml").read_text().replace('name = "bars"', 'name = "other"')),
                        "run/config.toml names the run 'other', but"),
        "run.json copied": (_copy_run_json(tmp_path), "run/run.json names the run "),
    }[case]
    run = _damaged(bars_run, tmp_path, damage)
    capsys.readouterr()
    for argv in READ_COMMANDS:
        assert main([a.format(run=run, out=tmp_path / "x.npy") for a in argv]) == 2
        err = one_error_line(capsys)
        assert expected in err, err
        assert not any(flag in err for flag in ("--n-hidden", "--batch-size", "--ais-chains", "--n-chains")), err
    if case == "run.json copied":
        assert "was copied here from another run folder. Remove" in err and "Move it away" not in err


def test_a_damaged_data_record_says_so_on_resume(bars_run, tmp_path, capsys):
    run = _damaged(bars_run, tmp_path, lambda run: (run / "data.json").write_text('{"a": 1}'))
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--max-epochs", "25", "--no-progress"]) == 2
    assert one_error_line(capsys) == (
        f"rkm: error: {run / 'data.json'} is damaged: it records no dataset, SHA-256 and row count. Restore it from "
        "a copy of the run, or remove it (the data is then not compared with the run's).\n")
    (run / "data.json").unlink()
    assert main(["train", "--resume", str(run), "--max-epochs", "25", "--no-progress"]) == 0
