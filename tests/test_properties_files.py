"""Property-based checks of every file reader and of grid and seed specifications (Hypothesis).

Each example is read in a forked child capped at 512 MB of address space above its size at the
fork (``tests/_capped.py``), so a hang or an allocation past that budget is a failure, as is any
outcome but success or one typed error (an ``RKMError``). The command-line cases run ``rkm`` under
``prlimit``-style limits (``RLIMIT_AS``) and must end in success or one line ``rkm: error: ...``.

In CI the examples are derandomised and bounded; ``HYPOTHESIS_PROFILE=long`` runs many more, with
fresh randomness, for a local search.
"""

import gzip
import io
import json
import os
import pickle
import resource
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import _capped
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rkm
from rkm.app._sweep_plan import parse_seeds, plan, split_sweep
from rkm.app.config import resolve_config
from rkm.errors import ConfigError
from rkm.io import savepoints
from rkm.io.datasets import load_array, read_idx

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
fuzz = settings(max_examples=1000 if LONG else 30, derandomize=not LONG, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
cli_fuzz = settings(fuzz, max_examples=60 if LONG else 3)


def held(result: str) -> None:
    assert result == "ok" or result.startswith("typed: "), result


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def write(folder, name: str, data: bytes):
    path = folder / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ .npy and .npz headers
DESCRS = ["<f4", ">f8", "|u1", "|b1", "<i8", "|O", "<U3", "|V0", "|S0", "<c16", "[('a', '<f4')]", "'<f4'", "x", ""]
dims = st.one_of(st.integers(0, 8), st.integers(0, 2**64), st.integers(-5, -1))
shapes = st.one_of(st.lists(dims, max_size=6).map(tuple), st.lists(st.just(1), min_size=60, max_size=300).map(tuple),
                   st.text(max_size=10))


def npy_bytes(descr: str, fortran: bool, shape, data: bytes, version: int) -> bytes:
    header = f"{{'descr': {descr!r}, 'fortran_order': {fortran}, 'shape': {shape!r}, }}".encode("latin1", "replace")
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    length = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + length + header + data


npy_files = st.builds(npy_bytes, st.sampled_from(DESCRS), st.booleans(), shapes, st.binary(max_size=96),
                      st.sampled_from([1, 2]))


@fuzz
@given(npy_files)
def test_any_npy_header_is_read_or_refused_with_a_typed_error(folder, data):
    held(_capped.capped(load_array, write(folder, "x.npy", data)))


@fuzz
@given(npy_files, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=4))
def test_any_npz_member_or_damaged_archive_is_read_or_refused(folder, member, flips):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("train.npy", member)
    data = bytearray(buffer.getvalue())
    for position, value in flips:
        data[position % len(data)] = value
    held(_capped.capped(load_array, write(folder, "x.npz", bytes(data))))


# ------------------------------------------------------------------ IDX headers
@fuzz
@given(st.integers(0, 255), st.integers(0, 255), st.lists(st.integers(0, 2**32 - 1), max_size=8),
       st.binary(max_size=64), st.booleans(), st.integers(0, 255))
def test_any_idx_header_is_read_or_refused(folder, code, ndim, dimensions, data, gzipped, count):
    raw = bytes([0, 0, code, ndim]) + b"".join(struct.pack(">I", d) for d in dimensions[:ndim]) + data
    if ndim > len(dimensions):  # as many dimensions as declared, of small sizes, so data can match
        raw = bytes([0, 0, code, ndim]) + struct.pack(f">{ndim}I", *([1] * ndim)) + data[: count % 9]
    held(_capped.capped(read_idx, write(folder, "images-idx3-ubyte", gzip.compress(raw) if gzipped else raw)))


# ------------------------------------------------------------------ CSV
@fuzz
@given(st.one_of(st.text(alphabet="01,.\n\r -e+nai", max_size=200).map(str.encode), st.binary(max_size=200)))
def test_any_csv_is_read_or_refused(folder, data):
    held(_capped.capped(load_array, write(folder, "x.csv", data)))


SPELLINGS = {0: ["0", "0.0", " 0", "-0", "0e3", "0.000"], 1: ["1", "1.0", "1e0", " 1 ", "+1", "10e-1"]}


@fuzz
@given(st.lists(st.lists(st.integers(0, 1), min_size=3, max_size=3), min_size=1, max_size=5), st.data(),
       st.booleans(), st.sampled_from(["", "a,b,c", "x0, x1, x2", ",,"]), st.sampled_from(["\n", "\r\n"]))
def test_a_csv_of_numbers_keeps_every_row_with_or_without_a_byte_order_mark_and_a_header(folder, rows, data, bom,
                                                                                         header, newline):
    lines = [",".join(data.draw(st.sampled_from(SPELLINGS[value])) for value in row) for row in rows]
    text = newline.join(([header] if header else []) + lines) + newline
    path = write(folder, "rows.csv", (b"\xef\xbb\xbf" if bom else b"") + text.encode())
    assert load_array(path).tolist() == rows


# ------------------------------------------------------------------ TOML configurations
KEYS = {"model": ["n_hidden", "lr", "max_epochs", "batch_size", "train_algo", "offset", "seed", "k", "nope"],
        "data": ["dataset", "size", "threshold", "path"], "run": ["log_every", "name", "n_eval"], "other": ["x"]}
toml_values = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.booleans(),
                        st.text(max_size=8), st.lists(st.integers(-3, 3), max_size=3))


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value) if not isinstance(value, list) else "[" + ", ".join(map(str, value)) + "]"


@st.composite
def toml_files(draw):
    lines = []
    for table in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=3, unique=True)):
        lines.append(f"[{table}]")
        for key in draw(st.lists(st.sampled_from(KEYS[table]), max_size=3, unique=True)):
            lines.append(f"{key} = {toml_value(draw(toml_values))}")
    text = "\n".join(lines).encode()
    return draw(st.one_of(st.just(text), st.binary(max_size=60).map(lambda junk: text + junk)))


def resolve(path):
    resolve_config(config_file=path)


@fuzz
@given(toml_files())
def test_any_toml_configuration_is_resolved_or_refused(folder, data):
    held(_capped.capped(resolve, write(folder, "config.toml", data)))


# ------------------------------------------------------------------ safetensors save points
@pytest.fixture(scope="module")
def saved(folder):
    model = rkm.RKM("m", 6, 4, train_algo="PCD", batch_size=3, optimizer="Adam", max_epochs=3, seed=0)
    model.train(torch.ones(3, 6), save=False)
    return rkm.save_model(model, folder / "good").read_bytes()


def header_parts(data: bytes):
    length = int.from_bytes(data[:8], "little")
    return json.loads(data[8: 8 + length]), data[8 + length:]


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(),
                                     st.text(max_size=6)),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                      max_size=3), max_leaves=6)


def load_m(path):
    rkm.load_model("m", model_state_path=path.parent)


@fuzz
@given(st.sampled_from(["config", "state"]), st.data())
def test_any_re_signed_header_value_is_loaded_or_refused(folder, saved, part, data):
    """A value of the header changed and the digest made to match, as anyone with rkm could."""
    table, body = header_parts(saved)
    metadata = table["__metadata__"]
    values = json.loads(metadata[part])
    key = data.draw(st.sampled_from(sorted(values)))
    values[key] = data.draw(json_values)
    metadata[part] = json.dumps(values)
    tensors = savepoints.st_load(saved)
    metadata["sha256"] = savepoints._digest({k: v for k, v in metadata.items() if k != "sha256"}, tensors)
    target = folder / "resigned"
    target.mkdir(exist_ok=True)
    held(_capped.capped(load_m, write(target, "m_t1.safetensors", savepoints.st_save(tensors, metadata=metadata))))


@fuzz
@given(st.data())
def test_any_safetensors_header_entry_is_loaded_or_refused(folder, saved, data):
    table, body = header_parts(saved)
    name = data.draw(st.sampled_from(sorted(k for k in table if k != "__metadata__")))
    field = data.draw(st.sampled_from(["dtype", "shape", "data_offsets"]))
    table[name][field] = data.draw(st.one_of(json_values, st.lists(st.integers(-2**64, 2**64), max_size=4)))
    header = json.dumps(table).encode()
    target = folder / "entries"
    target.mkdir(exist_ok=True)
    held(_capped.capped(load_m, write(target, "m_t1.safetensors", len(header).to_bytes(8, "little") + header + body)))


def load_m_and_write_again(path):
    """Load; what loads must hold its declared ranges and be a state rkm would write."""
    model = rkm.load_model("m", model_state_path=path.parent)[1]
    assert 0 <= model.epoch <= rkm.hyperparams.MAX_COUNT, model.epoch
    sums = model.trainer.state_dict()
    assert all(float(sums[name]) >= 0 for name in COUNTERS[1:]), {name: float(sums[name]) for name in COUNTERS[1:]}
    assert int(sums["energy_settled_since"]) <= model.epoch and int(sums["pulsed_updates"]) <= model.epoch
    try:
        model.savepoint()
    except rkm.errors.DataError as err:
        raise AssertionError(f"loaded, but rkm would not write it: {err}") from None


COUNTERS = ("epoch", "energy", "power_f", "power_b", "energy_settled", "comparator_decisions", "energy_settled_since",
            "circuit_time", "sequential_time", "programming_pulses", "pulsed_updates")
"""The update (``state.epoch``) and the scalar sums of a save point."""


@fuzz
@given(st.sampled_from(COUNTERS), st.data())
def test_any_re_signed_update_or_sum_is_refused_or_within_its_range(folder, saved, name, data):
    """The update and every sum re-signed at any value: refused, or loaded within the range rkm writes."""
    table, body = header_parts(saved)
    metadata = table["__metadata__"]
    state = json.loads(metadata["state"])
    tensors = savepoints.st_load(saved)
    if name == "epoch":
        state["epoch"] = data.draw(st.integers(0, 2**70))
    elif tensors[name].dtype == torch.int64:
        tensors[name] = torch.tensor(data.draw(st.integers(-2**63, 2**63 - 1)))
    else:
        tensors[name] = torch.tensor(data.draw(st.floats(-1e300, 1e300)), dtype=tensors[name].dtype)
    metadata["state"] = json.dumps(state)
    metadata["sha256"] = savepoints._digest({k: v for k, v in metadata.items() if k != "sha256"}, tensors)
    target = Path(tempfile.mkdtemp(dir=folder, prefix=f"{name}-"))
    path = write(target, f"m_t{state['epoch']}.safetensors", savepoints.st_save(tensors, metadata=metadata))
    held(_capped.capped(load_m_and_write_again, path))


# ------------------------------------------------------------------ pickles
@fuzz
@given(st.one_of(st.binary(max_size=120).map(lambda b: b"\x80\x04" + b),
                 st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6)))
def test_any_pickle_is_converted_or_refused(folder, data):
    from rkm.compat.pickles import convert_each, unpickle

    if isinstance(data, list):
        source = bytearray(pickle.dumps({"W": np.ones((4, 6)), "epoch": 3, "name": "old"}, protocol=4))
        for position, value in data:
            source[position % len(source)] = value
        data = bytes(source)
    target = folder / "pickles"
    target.mkdir(exist_ok=True)
    path = write(target, "old_t3.pkl", data)
    held(_capped.capped(unpickle, path))
    held(_capped.capped(convert_each, target, folder / "converted"))


# ------------------------------------------------------------------ grids and seeds
@fuzz
@given(st.text(alphabet="0123456789,e-+ .x", max_size=30))
def test_any_seed_specification_is_parsed_or_refused(text):
    try:
        seeds = parse_seeds(text)
    except ConfigError:
        return
    assert 1 <= len(seeds) <= 10_000 and all(0 <= s < 2**63 for s in seeds)
    assert "," not in text or len(seeds) == text.count(",") + 1, (text, seeds)  # one seed between each two commas


sweep_values = st.one_of(st.integers(-2**64, 2**64), st.floats(), st.text(max_size=5), st.booleans(),
                         st.lists(st.integers(0, 3), max_size=2))


@st.composite
def sweep_tables(draw):
    table = {}
    if draw(st.booleans()):
        table["seeds"] = draw(st.one_of(st.integers(-3, 2**63), st.lists(st.integers(-3, 2**64), max_size=4),
                                        sweep_values))
    for part in draw(st.lists(st.sampled_from(["model", "run", "data", "bogus"]), max_size=2, unique=True)):
        keys = {"model": ["offset", "k", "lr", "seed"], "run": ["log_every"], "data": ["size"], "bogus": ["x"]}[part]
        table[part] = {key: draw(st.one_of(st.lists(sweep_values, max_size=3), sweep_values))
                       for key in draw(st.lists(st.sampled_from(keys), max_size=2, unique=True))}
    return draw(st.one_of(st.just(table), sweep_values, st.lists(st.just(table), max_size=2)))


def planned(table, out):
    base = {"model": {"n_hidden": 4, "max_epochs": 5}, "data": {"dataset": "bars-and-stripes", "size": 2},
            "sweep": table}
    config, grid, seeds = split_sweep(base, "the fuzzed table")
    plan(config, grid, seeds if seeds is not None else [0], out)


@fuzz
@given(sweep_tables())
def test_any_sweep_table_is_planned_or_refused(folder, table):
    held(_capped.capped(planned, table, folder / "plans"))


# ------------------------------------------------------------------ the command line, under an address-space limit
def limited():
    resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, resource.RLIM_INFINITY))


@cli_fuzz
@given(st.text(alphabet="0123456789,e-", min_size=1, max_size=24),
       st.lists(st.text(alphabet="0123456789.,-ab", min_size=1, max_size=12), min_size=1, max_size=3))
def test_rkm_sweep_with_any_seeds_and_grid_ends_in_success_or_one_line(folder, seeds, offsets):
    (folder / "base.toml").write_text("[model]\nn_hidden = 4\nmax_epochs = 1\n[data]\ndataset = 'bars-and-stripes'\n"
                                      "size = 2\n")
    argv = ["sweep", "--config", str(folder / "base.toml"), "--seeds", seeds, "--out", str(folder / "cli"),
            "--workers", "1", "--no-progress"]
    for i, values in enumerate(offsets):
        argv += ["--grid", f"{['model.offset', 'model.k', 'run.log_every'][i]}={values}"]
    done = subprocess.run([sys.executable, "-m", "rkm", *argv], capture_output=True, text=True, timeout=900,
                          preexec_fn=limited)
    assert done.returncode in (0, 1) or (done.returncode == 2 and done.stderr.startswith("rkm: error: ")
                                         and done.stderr.count("\n") == 1), done.stderr
