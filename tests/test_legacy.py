"""pyrkm's files: data pickles and model save points, read without running code, converted to rkm."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import torch

import rkm
from rkm.app._cli import main
from rkm.compat.pickles import PyrkmState, convert_pyrkm, read_pyrkm_savepoint, unpickle
from rkm.errors import CheckpointError, DatasetNotFoundError


class RunsCode:
    """A pickle whose loading would create ``marker`` (via os.system, or another callable)."""

    def __init__(self, marker, how="system"):
        self.marker, self.how = str(marker), how

    def __reduce__(self):
        if self.how == "system":
            return (os.system, (f"touch {self.marker}",))
        if self.how == "eval":
            return (eval, (f"open({self.marker!r}, 'w')",))
        return (open, (self.marker, "w"))


# -------------------------------------------------------------------- data files
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_unpickle_reads_plain_data(tmp_path, protocol):
    data = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [3, 1, 4], "names": ("a", "b"),
            "set": {1, 2}, "complex": 1 + 2j, "scalar": np.float32(2.5), "raw": b"\x00\xff", "none": None}
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps(data, protocol=protocol))
    out = unpickle(path)
    np.testing.assert_array_equal(out[b"data"], data[b"data"])
    assert out[b"data"].dtype == np.uint8
    assert {k: v for k, v in out.items() if k != b"data"} == {k: v for k, v in data.items() if k != b"data"}


def test_unpickle_reads_python2_strings_as_bytes_like_pyrkm(tmp_path):
    # {'data': 1} as Python 2 writes it (SHORT_BINSTRING key): the CIFAR batches' format
    (tmp_path / "py2").write_bytes(b"\x80\x02}q\x00U\x04dataq\x01K\x01s.")
    assert unpickle(tmp_path / "py2") == {b"data": 1}


@pytest.mark.parametrize("how", ["system", "eval", "open"])
def test_unpickle_refuses_code_without_running_it(tmp_path, how):
    marker = tmp_path / "pwned"
    (tmp_path / "evil").write_bytes(pickle.dumps({"x": [RunsCode(marker, how)]}))
    with pytest.raises(CheckpointError, match="refused to load .*restricted unpickler") as info:
        unpickle(tmp_path / "evil")
    assert {"system": "system", "eval": "builtins.eval", "open": "io.open"}[how] in str(info.value)
    assert not marker.exists()


def test_unpickle_refuses_tensors_and_models_in_data_files(tmp_path):
    (tmp_path / "t").write_bytes(pickle.dumps(torch.zeros(2)))
    with pytest.raises(CheckpointError, match="torch._utils._rebuild_tensor_v2"):
        unpickle(tmp_path / "t")


def test_unpickle_reports_missing_and_truncated_files(tmp_path):
    with pytest.raises(DatasetNotFoundError):
        unpickle(tmp_path / "absent")
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    (tmp_path / "cut").write_bytes(pickle.dumps({"a": list(range(100))})[:20])
    with pytest.raises(CheckpointError, match="truncated"):
        unpickle(tmp_path / "cut")


# -------------------------------------------------------------- pyrkm save points
def pyrkm_like_state(cls_name, epoch, seed=0):
    """The attributes a pickled pyrkm 0.1.0 model holds (see pyrkm's __post_init__ and train)."""
    g = torch.Generator().manual_seed(seed)
    nv, nh, batch = 6, 4, 5
    W = torch.randn(nh, nv, generator=g)
    state = dict(
        model_name="old", n_visible=nv, n_hidden=nh, k=2, lr=0.01, max_epochs=100, energy_type="hopfield",
        optimizer="Adam", regularization=False, l1_factor=0, l2_factor=0.001, g_v=0.5, g_h=0.4, batch_size=batch,
        train_algo="PCD", centering=False, average_data=None, model_beta=1, mytype=torch.float32, min_W=-10,
        max_W=10, device=torch.device("cpu"), epoch=epoch, W=W, W_t=W.t(), v_bias=torch.randn(nv, generator=g),
        h_bias=torch.randn(nh, generator=g), persistent_chains=(torch.rand(batch, nv, generator=g) > 0.5).float(),
        m_dW=torch.randn(nh, nv, generator=g), v_dW=torch.rand(nh, nv, generator=g), m_dv=torch.zeros(nv),
        v_dv=torch.zeros(nv), m_dh=torch.zeros(nh), v_dh=torch.zeros(nh), beta1=0.9, beta2=0.999, epsilon=1e-8,
        ov=0, oh=0, t_to_save=[1, 2, 5, 100], power_f=torch.tensor(1.5), power_b=torch.tensor(0.25),
        energy=torch.tensor(321.0), relax_t_f=torch.ones(nh), relax_t_b=torch.ones(nv),
    )
    if cls_name == "RKM":
        state.update(energy_type="RKM", offset=0.5, sampling="multi-threshold", distribution="uniform",
                     layer_scaled=False)
    return state


@pytest.fixture
def stand_in_pyrkm(monkeypatch):
    """Classes at pyrkm's module paths (pyrkm.rbm.RBM, pyrkm.rkm.RKM), only while the pickles are written."""
    modules = {}
    for module_name, cls_name in (("pyrkm.rbm", "RBM"), ("pyrkm.rkm", "RKM")):
        module = types.ModuleType(module_name)
        cls = type(cls_name, (), {"__module__": module_name, "__qualname__": cls_name})
        setattr(module, cls_name, cls)
        modules[module_name] = module
    package = types.ModuleType("pyrkm")
    package.rbm, package.rkm = modules["pyrkm.rbm"], modules["pyrkm.rkm"]

    def write(folder, cls_name, update, **changes):
        obj = getattr(modules[f"pyrkm.{cls_name.lower()}"], cls_name)()
        obj.__dict__.update(pyrkm_like_state(cls_name, update), **changes)
        with monkeypatch.context() as m:
            m.setitem(sys.modules, "pyrkm", package)
            for name, module in modules.items():
                m.setitem(sys.modules, name, module)
            path = folder / f"{obj.model_name}_t{update}.pkl"
            with open(path, "wb") as fh:
                pickle.dump(obj, fh)
        return path, obj.__dict__

    # from here on, importing pyrkm fails: the converter must not need it
    monkeypatch.setitem(sys.modules, "pyrkm", None)
    return write


def test_a_pyrkm_save_point_is_read_as_plain_state(tmp_path, stand_in_pyrkm):
    path, state = stand_in_pyrkm(tmp_path, "RKM", 7)
    saved = read_pyrkm_savepoint(path)
    assert isinstance(saved, PyrkmState) and saved.class_name == "RKM"
    assert saved.state["offset"] == 0.5 and saved.state["mytype"] is torch.float32
    assert saved.state["device"] == torch.device("cpu")
    torch.testing.assert_close(saved.state["W"], state["W"])
    torch.testing.assert_close(saved.state["W_t"], state["W"].t())


@pytest.mark.parametrize("cls_name", ["RKM", "RBM"])
def test_convert_pyrkm_writes_rkm_save_points_that_load(tmp_path, stand_in_pyrkm, cls_name):
    stand_in_pyrkm(tmp_path, cls_name, 2)
    _, state = stand_in_pyrkm(tmp_path, cls_name, 9)
    written = convert_pyrkm(tmp_path)
    assert [p.name for p in written] == ["old_t2.safetensors", "old_t9.safetensors"]
    found, model = rkm.load_model("old", model_state_path=str(tmp_path) + "/")
    assert found and type(model) is getattr(rkm, cls_name) and model.epoch == 9
    for name in ("W", "v_bias", "h_bias", "persistent_chains", "m_dW", "v_dW"):
        torch.testing.assert_close(getattr(model, name), state[name], rtol=0, atol=0)
    assert float(model.energy) == 321.0 and float(model.power_f) == 1.5
    settings = ("k", "lr", "optimizer", "train_algo", "batch_size", "g_h", "energy_type")
    assert {n: getattr(model, n) for n in settings} == {n: state[n] for n in settings}
    if cls_name == "RKM":
        assert (model.offset, model.sampling, model.distribution, model.layer_scaled) == (0.5, "multi-threshold", "uniform", False)
    assert model.seed == 0
    model.train(torch.ones(3, 6), save=False)  # continues to max_epochs=100 from update 9
    assert model.epoch == 100


def test_convert_pyrkm_writes_elsewhere_and_load_model_names_the_converter(tmp_path, stand_in_pyrkm):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    stand_in_pyrkm(old, "RKM", 4)
    with pytest.raises(CheckpointError, match=f"rkm convert-pyrkm {old}"):
        rkm.load_model("old", model_state_path=str(old) + "/")
    convert_pyrkm(old, new, seed=11)
    assert sorted(p.name for p in old.iterdir()) == ["old_t4.pkl"]
    found, model = rkm.load_model("old", model_state_path=str(new))
    assert found and model.seed == 11


def test_a_malicious_save_point_is_refused_without_running(tmp_path, stand_in_pyrkm):
    marker = tmp_path / "pwned"
    (tmp_path / "evil_t3.pkl").write_bytes(pickle.dumps(RunsCode(marker)))
    with pytest.raises(CheckpointError, match="refused to load"):
        convert_pyrkm(tmp_path)
    # hidden inside an otherwise valid pyrkm model
    stand_in_pyrkm(tmp_path, "RKM", 5, t_to_save=[RunsCode(marker, "open")])
    with pytest.raises(CheckpointError, match="io.open"):
        read_pyrkm_savepoint(tmp_path / "old_t5.pkl")
    assert not marker.exists()
    assert not list(tmp_path.glob("*.safetensors"))


def test_other_classes_and_broken_models_are_refused(tmp_path, stand_in_pyrkm):
    (tmp_path / "m_t1.pkl").write_bytes(pickle.dumps({"W": torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError, match="not a pickled pyrkm RBM or RKM"):
        convert_pyrkm(tmp_path)
    (tmp_path / "m_t1.pkl").unlink()
    stand_in_pyrkm(tmp_path, "RKM", 1, train_algo="nonsense")
    with pytest.raises(CheckpointError, match="cannot be rebuilt in rkm.*train_algo"):
        convert_pyrkm(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="holds no pyrkm save points"):
        convert_pyrkm(empty)


def test_the_convert_pyrkm_command(tmp_path, stand_in_pyrkm, capsys):
    stand_in_pyrkm(tmp_path, "RKM", 3)
    assert main(["convert-pyrkm", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"converted {tmp_path / 'old_t3.pkl'} -> {tmp_path / 'old_t3.safetensors'}",
                   "1 of 1 pyrkm save points converted"]
    (tmp_path / "evil_t1.pkl").write_bytes(pickle.dumps(RunsCode(tmp_path / "pwned")))
    assert main(["convert-pyrkm", str(tmp_path), "-o", str(tmp_path / "out"), "--strict"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("rkm: error: 1 of the 2 pyrkm save points") and captured.err.count("\n") == 1
    assert "not converted:" in captured.out and "refused to load" in captured.out
    assert (tmp_path / "out" / "old_t3.safetensors").is_file() and not (tmp_path / "pwned").exists()


def test_real_pyrkm_save_points_convert(tmp_path, pyrkm, pyrkm_model, monkeypatch):
    from conftest import pyrkm_global_state

    model = pyrkm_model("RKM", "real", 16, 6, max_epochs=3, batch_size=4, train_algo="PCD", offset=0.5)
    data = [(torch.rand(4, 16, generator=torch.Generator().manual_seed(i)) > 0.5).float() for i in range(3)]
    with pyrkm_global_state():
        model.train(data, model_state_path=str(tmp_path) + "/")
    convert_pyrkm(tmp_path)
    monkeypatch.setitem(sys.modules, "pyrkm", None)
    found, ours = rkm.load_model("real", model_state_path=str(tmp_path) + "/")
    assert found and ours.epoch == model.epoch
    for name in ("W", "v_bias", "h_bias", "persistent_chains"):
        torch.testing.assert_close(getattr(ours, name), getattr(model, name), rtol=0, atol=0)
    assert float(ours.energy) == pytest.approx(float(model.energy))
