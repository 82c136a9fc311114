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
