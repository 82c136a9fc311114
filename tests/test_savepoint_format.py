"""Save points that cannot lie (formats 2 and 3, schema, format 1 still read) and safe file handling (issue 11, items 1-2)."""

import errno
import json
import multiprocessing
import os
import random
import resource
import secrets
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

import rkm
from rkm.errors import CheckpointError, StorageError
from rkm.io import savepoints
from rkm.io.datasets import bars_and_stripes
from rkm.io.savepoints import parse_savepoint, read_savepoint, save_model, write_savepoint
from rkm.machine import restore

BAS = torch.tensor(bars_and_stripes(4))
DATA = Path(__file__).parent / "data"


def small(**kwargs):
    """A model with every kind of state: PCD chains, Adam moments, centering offsets, the data mean."""
    settings = dict(k=1, lr=0.02, max_epochs=4, batch_size=4, optimizer="Adam", train_algo="PCD", centering=True,
                    average_data=BAS.mean(0), seed=5, device="cpu")
    settings.update(kwargs)
    model = rkm.RKM("bits", 16, 3, **settings)
    model.train(BAS, save=False)
    return model


def same_model(a, b):
    (ta, ha), (tb, hb) = a.savepoint(), b.savepoint()
    return ha == hb and ta.keys() == tb.keys() and all(
        ta[k].dtype == tb[k].dtype and ta[k].shape == tb[k].shape and torch.equal(ta[k], tb[k]) for k in ta)


def header_of(path):
    data = Path(path).read_bytes()
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n])["__metadata__"]


# ------------------------------------------------------------------ item 1
def test_format_3_covers_header_and_tensors(tmp_path):
    model = small()
    path = save_model(model, tmp_path)
    meta = header_of(path)
    assert meta["format_version"] == "3" and set(meta) == savepoints.METADATA_KEYS
    tensors, header = read_savepoint(path)
    assert header["format_version"] == 3
    assert same_model(restore(tensors, header, device="cpu"), model)


def test_every_single_bit_flip_is_refused_or_harmless(tmp_path):
    """All 8 bits of every header byte, and sampled bytes of the tensor data: a CheckpointError or the same model."""
    model = small()
    good = bytearray(save_model(model, tmp_path).read_bytes())
    n_header = 8 + int.from_bytes(good[:8], "little")
    rng = random.Random(0)
    positions = [(i, bit) for i in range(n_header) for bit in range(8)]
    positions += [(rng.randrange(n_header, len(good)), rng.randrange(8)) for _ in range(400)]
    refused = harmless = 0
    for i, bit in positions:
        data = bytearray(good)
        data[i] ^= 1 << bit
        try:
            loaded = restore(*parse_savepoint(bytes(data)), device="cpu")
        except CheckpointError:
            refused += 1
            continue
        assert same_model(loaded, model), f"byte {i} bit {bit} loaded a different model"
        harmless += 1
    assert refused + harmless == len(positions) and refused > 0.99 * len(positions)
    assert n_header > 1000  # the whole header was flipped, not a stub


@pytest.mark.parametrize("field,value", [("lr", 0.5), ("max_epochs", 40000), ("model_beta", 2.0), ("seed", 1),
                                         ("epoch", 3)])
def test_an_altered_header_value_is_refused_naming_the_file(tmp_path, field, value):
    """The attacks that loaded silently before: a valid header value changed, the file rebuilt around it."""
    path = save_model(small(), tmp_path)
    meta = header_of(path)
    part = "state" if field in ("seed", "epoch") else "config"
    values = json.loads(meta[part])
    values[field] = value
    meta[part] = json.dumps(values)
    tensors = savepoints.st_load(path.read_bytes())
    path.write_bytes(st_save(tensors, metadata=meta))
    with pytest.raises(CheckpointError, match=rf"{path}.*altered"):
        rkm.load_model("bits", model_state_path=tmp_path)


def rewritten(tmp_path, change_config=None, change_state=None, change_tensors=None, cls="RKM"):
    """A save point whose content is changed and whose digest is recomputed (as a buggy or hostile writer would)."""
    tensors, header = small().savepoint()
    header = {"class": cls, "config": dict(header["config"]), "state": dict(header["state"])}
    if change_config:
        change_config(header["config"])
    if change_state:
        change_state(header["state"])
    if change_tensors:
        change_tensors(tensors)
    return write_savepoint(tmp_path / "bits_t4.safetensors", tensors, header)


def _without(key):
    return lambda d: d.pop(key)


def _set(key, value):
    return lambda d: d.update({key: value})


@pytest.mark.parametrize("kwargs,match", [
    ({"change_config": _without("lr")}, r"missing keys \['lr'\]"),
    ({"change_config": _set("colour", "red")}, r"unexpected keys \['colour'\]"),
    ({"change_config": _set("lr", "0.01")}, r"config.lr = '0.01', not of its type"),
    ({"change_config": _set("k", 1.5)}, r"config.k = 1.5"),
    ({"change_config": _set("centering", "false")}, r"config.centering = 'false'"),
    ({"change_config": _set("mytype", "int8")}, r"invalid config.mytype"),
    ({"change_config": _set("n_hidden", -3)}, r"invalid config.n_hidden"),
    ({"change_config": _set("train_algo", "annealing")}, r"invalid config.train_algo"),
    ({"change_state": _set("epoch", -1)}, r"state.epoch = -1"),
    ({"change_state": _set("epoch", 2.5)}, r"state.epoch = 2.5"),
    ({"change_state": _set("epoch", True)}, r"state.epoch = True"),
    ({"change_state": _set("seed", 2**64)}, r"invalid state.seed"),
    ({"change_state": _set("rng_device", "tpu")}, r"rng_device"),
    ({"change_state": _without("rng_device")}, r"missing keys \['rng_device'\]"),
    ({"change_tensors": lambda t: t.update(rng_state=t["rng_state"][:100])}, r"generator state of 100 bytes"),
    ({"change_tensors": lambda t: t.update(m_dW=torch.zeros(2, 16))}, r"m_dW of shape \(2, 16\)"),
    ({"change_tensors": lambda t: t.update(persistent_chains=torch.zeros(5, 16))}, r"persistent_chains of shape"),
    ({"change_tensors": lambda t: t.update(W=t["W"].double())}, r"W of dtype torch.float64"),
    ({"change_tensors": lambda t: t.pop("v_dv")}, r"belong together"),
    ({"change_tensors": lambda t: t.pop("W")}, r"lacks the tensors \['W'\]"),
    ({"change_tensors": lambda t: t.update(extra=torch.zeros(3))}, r"tensors \['extra'\]"),
    ({"change_tensors": lambda t: t["W"].__setitem__((0, 0), float("nan"))}, r"NaN or inf in \['W'\]"),
    ({"cls": "Evil"}, r"names the class 'Evil'"),
])
def test_the_schema_refuses_inconsistent_save_points_with_a_message(tmp_path, kwargs, match):
    path = rewritten(tmp_path, **kwargs)
    with pytest.raises(CheckpointError, match=match) as info:
        rkm.load_model("bits", model_state_path=tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("version,match", [("4", r"format version '4' \(written by a newer rkm: upgrade rkm\); this "
                                                 r"rkm reads format versions 1, 2 and 3"),
                                           ("0", "reads format versions 1, 2 and 3"), ("two", "1, 2 and 3")])
def test_a_format_mismatch_says_which_versions_are_readable(tmp_path, version, match):
    path = save_model(small(), tmp_path)
    meta = header_of(path)
    meta["format_version"] = version
    path.write_bytes(st_save(savepoints.st_load(path.read_bytes()), metadata=meta))
    with pytest.raises(CheckpointError, match=match):
        read_savepoint(path)


def test_extra_or_missing_metadata_fields_are_refused(tmp_path):
    path = save_model(small(), tmp_path)
    tensors = savepoints.st_load(path.read_bytes())
    meta = header_of(path)
    path.write_bytes(st_save(tensors, metadata={**meta, "note": "x"}))
    with pytest.raises(CheckpointError, match=r"unexpected \['note'\]"):
        read_savepoint(path)
    del meta["state"]
    path.write_bytes(st_save(tensors, metadata=meta))
    with pytest.raises(CheckpointError, match=r"missing \['state'\]"):
        read_savepoint(path)


# Values printed by tests/data/format1.py when the files were written.
FORMAT_1 = {
    "format1_main_pcd_adam_centering": ("RKM", 5, 84.66209065914154, "Adam", "PCD"),
    "format1_main_rbm_vrdm": ("RBM", 4, 33.034609421451705, "SGD", "vRDM"),
    "format1_prerefactor_pcd_adam_centering": ("RKM", 5, 84.66209343075752, "Adam", "PCD"),
    "format1_prerefactor_rbm_vrdm": ("RBM", 4, 33.11444747695168, "SGD", "vRDM"),
}


@pytest.mark.parametrize("name", sorted(FORMAT_1))
def test_format_1_save_points_still_load_and_are_resaved_as_format_3(tmp_path, name):
    cls, epoch, energy, optimizer, algo = FORMAT_1[name]
    source = DATA / f"{name}.safetensors"
    tensors, header = read_savepoint(source)
    assert header["format_version"] == 1
    model = restore(tensors, header, device="cpu")
    assert (type(model).__name__, model.epoch, float(model.energy), model.optimizer, model.train_algo) == (
        cls, epoch, energy, optimizer, algo)
    assert torch.equal(model.W, tensors["W"]) and torch.equal(model.generator.get_state(), tensors["rng_state"])
    if algo == "PCD":
        assert torch.equal(model.persistent_chains, tensors["persistent_chains"])
        assert torch.equal(model.m_dW, tensors["m_dW"]) and torch.equal(model.ov, tensors["ov"])
    model.max_epochs = epoch + 2
    model.train(BAS, model_state_path=tmp_path)
    again = read_savepoint(tmp_path / f"{model.model_name}_t{epoch + 2}.safetensors")
    assert again[1]["format_version"] == 3


def test_format_1_header_checks_still_refuse_bad_values(tmp_path):
    """Version 1 has no header digest; its header is still held to the schema (docs: what it cannot guarantee)."""
    source = DATA / "format1_main_pcd_adam_centering.safetensors"
    meta = header_of(source)
    state = json.loads(meta["state"])
    state["epoch"] = -4
    meta["state"] = json.dumps(state)
    path = tmp_path / "f1_t5.safetensors"
    path.write_bytes(st_save(savepoints.st_load(source.read_bytes()), metadata=meta))
    with pytest.raises(CheckpointError, match="state.epoch = -4"):
        rkm.load_model("f1", model_state_path=tmp_path)


# ------------------------------------------------------------------ item 2: reading
def _read_in_child(path, conn):
    """Read ``path`` under a 512 MB address-space cap above what the process uses now; report what happened."""
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + 512 * 2**20, resource.RLIM_INFINITY))
    try:
        read_savepoint(path)
        conn.send("loaded")
    except CheckpointError as err:
        conn.send(f"CheckpointError: {err}")
    except BaseException as err:  # noqa: BLE001 - the test reports anything else
        conn.send(f"{type(err).__name__}: {err}")


def read_capped(path, timeout=30):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_read_in_child, args=(str(path), child))
    proc.start()
    ready = parent.poll(timeout)
    if not ready:
        proc.kill()
    proc.join(5)
    assert ready, f"reading {path} did not finish within {timeout} s"
    return parent.recv()


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "dev-null"])
def test_anything_but_a_regular_file_is_refused_without_reading(tmp_path, kind):
    path = tmp_path / "m_t1.safetensors"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/null")
    result = read_capped(path)
    expected = {"fifo": "a FIFO", "dev-zero": "a character device", "directory": "a folder",
                "dev-null": "a character device"}[kind]
    assert result.startswith("CheckpointError") and expected in result, result
    with pytest.raises(CheckpointError):
        rkm.load_model("m", model_state_path=tmp_path)


def test_a_file_longer_than_its_header_announces_is_refused(tmp_path):
    path = save_model(small(), tmp_path)
    with open(path, "ab") as fh:
        fh.write(b"\0" * 64)
    with pytest.raises(CheckpointError, match="larger than the"):
        read_savepoint(path)


def test_a_huge_announced_header_is_refused_before_reading_it(tmp_path):
    path = tmp_path / "m_t1.safetensors"
    path.write_bytes((2**40).to_bytes(8, "little") + b"{" + b" " * 100)
    assert "truncated" in read_capped(path) or "announces" in read_capped(path)
    path.write_bytes((200_000_000).to_bytes(8, "little") + b"{" + b" " * 100)
    with pytest.raises(CheckpointError, match="announces a 200000000-byte header"):
        read_savepoint(path)


# ------------------------------------------------------------------ item 2: writing
def test_a_planted_symlink_at_the_temporary_name_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    states = tmp_path / "states"
    states.mkdir()
    model = small()
    target = f"{model.model_name}_t{model.epoch}.safetensors"
    planted = "0123456789abcdef"
    (states / f".{target}.{os.getpid()}-{planted}.tmp").symlink_to(victim)
    (states / f".{target}.{os.getpid()}.tmp").symlink_to(victim)  # the name rkm before format 2 used
    tokens = iter([planted, planted, "fedcba9876543210"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(tokens))
    path = save_model(model, states)
    assert victim.read_text() == "precious"
    assert same_model(restore(*read_savepoint(path), device="cpu"), model)
    leftovers = sorted(p.name for p in states.iterdir())
    assert leftovers == sorted([target, f".{target}.{os.getpid()}-{planted}.tmp", f".{target}.{os.getpid()}.tmp"])


def _fail_on_temporary(real, error):
    """``os.write`` that raises ``error`` for rkm's temporary files (found through /proc) and writes otherwise."""

    def write(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".tmp"):
            raise OSError(error, os.strerror(error))
        return real(fd, data)

    return write


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EROFS, errno.EIO])
def test_a_failed_write_removes_its_temporary_file_and_names_the_intact_save_point(tmp_path, monkeypatch, error):
    model = small()
    first = save_model(model, tmp_path)
    good = first.read_bytes()
    model.max_epochs = 6
    model.train(BAS, save=False)
    monkeypatch.setattr(os, "write", _fail_on_temporary(os.write, error))
    with pytest.raises(StorageError) as info:
        save_model(model, tmp_path)
    message = str(info.value)
    assert f"{tmp_path}/bits_t6.safetensors" in message and os.strerror(error) in message
    assert f"The last good save point, {first}, is intact" in message and info.value.errno == error
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.name] and first.read_bytes() == good


@pytest.mark.parametrize("where", ["fsync", "replace", "interrupt"])
def test_every_failure_path_of_a_write_cleans_up(tmp_path, monkeypatch, where):
    target = tmp_path / "x.bin"
    target.write_bytes(b"old")

    def boom(*args, **kwargs):
        raise KeyboardInterrupt if where == "interrupt" else OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync" if where != "replace" else "replace", boom)
    with pytest.raises(KeyboardInterrupt if where == "interrupt" else OSError) as info:
        savepoints.atomic_write(target, b"new")
    if where != "interrupt":
        assert info.value.filename == str(target)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_stale_temporaries_of_killed_writers_are_removed_on_the_next_save(tmp_path):
    import subprocess

    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = ended.pid
    stale = [tmp_path / f".bits_t2.safetensors.{dead}-{'a' * 16}.tmp", tmp_path / f".bits_t2.safetensors.{dead}.tmp"]
    live = tmp_path / f".bits_t3.safetensors.{os.getpid()}-{'b' * 16}.tmp"
    unrelated = tmp_path / f".notes.{dead}.tmp"
    for path in (*stale, live, unrelated):
        path.write_bytes(b"partial")
    save_model(small(), tmp_path)
    names = {p.name for p in tmp_path.iterdir()}
    assert not any(p.name in names for p in stale)
    assert {live.name, unrelated.name, "bits_t4.safetensors"} == names


def test_save_points_get_the_usual_file_mode(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    path = save_model(small(), tmp_path)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
