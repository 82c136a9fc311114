"""The second fresh attack on settings and the Python API (issue 22): each finding replayed.

Settings that were outside the rules (``conductance_levels`` in memory, comparator output
levels and their spread in the overflow rule, ``pulse_step``), counts that asked for days of
work, and Python values that reached torch or NumPy untyped. Every case ends in success with
finite physics, or in one typed error (API) / one ``rkm: error:`` line (CLI).
"""

import math

import numpy as np
import pytest
import torch
from _capped import capped
from _oneline import one_line, run_cli
from hypothesis import given
from hypothesis import strategies as st

import rkm
from rkm.app._cli import main
from rkm.core import limits
from rkm.errors import ConfigError, DataError, RKMError
from rkm.io.datasets import bars_and_stripes
from rkm.training import pulse

BAS = torch.tensor(bars_and_stripes(3))
TINY = ["--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6", "--batch-size", "8", "--max-epochs", "4",
        "--log-every", "2", "--generate-k", "5", "--n-generate", "4", "--n-eval", "8", "--no-progress"]


def small(**kwargs):
    return rkm.RKM(**{"model_name": "a", "n_visible": 9, "n_hidden": 4, "seed": 0, "device": "cpu", "batch_size": 4,
                      "max_epochs": 2, **kwargs})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("attack") / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    return run


# ------------------------------------------------------------------ conductance levels
def _train_a_billion_levels():
    model = small(mytype=torch.float64, conductance_range=(1e-3, 1.0), conductance_levels=10**9)
    model.train(BAS, save=False)
    assert bool(torch.isfinite(model.energy))


def test_a_billion_conductance_levels_train_within_a_small_memory_budget():
    # every pass used to build all 10^9 levels (8 GB); the budget of the child is 512 MB
    assert capped(_train_a_billion_levels) == "ok"


def test_a_level_is_the_nearest_of_a_billion_levels():
    model = small(mytype=torch.float64, conductance_range=(1e-3, 1.0), conductance_levels=10**9)
    spacing = (1.0 - 1e-3) / (10**9 - 1)
    wanted = torch.tensor([1e-3, 0.25, 0.5, 0.999999, 1.0, 3.0, 1e-5], dtype=torch.float64)
    nominal = model.devices.nominal(wanted.clone())
    clipped = wanted.clamp(1e-3, 1.0)
    assert bool(((nominal - clipped).abs() <= spacing / 2 * (1 + 1e-6)).all()), nominal - clipped
    assert float(nominal[0]) == 1e-3 and float(nominal[4]) == 1.0 and float(nominal[5]) == 1.0


@pytest.mark.parametrize("spacing,reference", [("linear", np.linspace), ("log", np.geomspace)])
@pytest.mark.parametrize("n", [2, 3, 7, 16, 21, 100, 1001])
def test_the_levels_are_those_numpy_spaces(spacing, reference, n):
    model = small(mytype=torch.float64, conductance_range=(1e-3, 2.0), conductance_levels=n, level_spacing=spacing)
    levels = model.devices.levels().numpy()
    np.testing.assert_allclose(levels, reference(1e-3, 2.0, n), rtol=1e-14, atol=0)
    assert levels[0] == 1e-3 and levels[-1] == 2.0 and (np.diff(levels) > 0).all()


# ------------------------------------------------------------------ comparator output levels
@pytest.mark.parametrize("kwargs", [
    {"comparator_levels": (0, 1e300)},
    {"comparator_levels": (-1e300, 1e300)},
    {"comparator_levels": (1e300, 1e301)},
    {"comparator_level_spread": 1e30, "learning_rule": "local"},
    {"comparator_level_spread": 100, "mytype": torch.float16},
])
def test_comparator_levels_that_overflow_a_pass_are_refused_by_name(kwargs):
    with pytest.raises(ConfigError, match="comparator_level") as err:
        small(**kwargs)
    assert "can overflow" in str(err.value)


def test_an_assigned_comparator_level_that_overflows_changes_nothing():
    model = small()
    with pytest.raises(ConfigError, match="can overflow"):
        model.comparator_levels = (0, 1e300)
    assert model.comparator_levels == (0.0, 1.0)


@given(low=st.floats(-1e40, 1e40), width=st.floats(1e-30, 1e40), spread=st.floats(0, 1e40),
       dtype=st.sampled_from([torch.float16, torch.float32, torch.float64]),
       rule=st.sampled_from(["algorithmic", "local"]))
def test_accepted_comparator_levels_train_with_finite_physics(low, width, spread, dtype, rule):
    high = low + width
    if not high > low:  # the width vanished in the sum
        return
    try:
        model = small(comparator_levels=(low, high), comparator_level_spread=spread, mytype=dtype,
                      learning_rule=rule, comparator_offset=0.0)
    except RKMError:
        return
    model.train(BAS, save=False)
    assert bool(torch.isfinite(model.energy))
    assert np.isin(model.generate(3, 2), (0.0, 1.0)).all()


def test_a_run_whose_chain_is_trapped_finishes_with_exact_kl_empty(tmp_path):
    # output levels of 1e6 V saturate every comparator: the chain is deterministic, its law not unique
    run = tmp_path / "r"
    assert run_cli(["train", *TINY, "--comparator-levels", "0,1e6", "--run-dir", str(run)]) == 0
    assert (run / "summary.json").is_file()
    rows = (run / "metrics.csv").read_text().splitlines()
    column = rows[0].split(",").index("exact_kl")
    assert rows[-1].split(",")[column] == ""


def test_a_value_that_starts_with_a_minus_sign_gets_the_way_to_write_it(tmp_path, capsys):
    assert run_cli(["train", *TINY, "--comparator-levels", "-1e3,1", "--run-dir", str(tmp_path / "r")]) == 2
    assert "is written --comparator-levels=VALUE" in one_line(capsys)
    assert run_cli(["train", *TINY, "--comparator-levels=-1e3,1", "--run-dir", str(tmp_path / "r")]) == 0


# ------------------------------------------------------------------ pulses
@pytest.mark.parametrize("kwargs,words", [
    ({"pulse_step": 1e300}, "more than the whole range a parameter moves in"),
    ({"pulse_step": 21.0}, "max_W - min_W = 20"),
    ({"pulse_step": 1.5, "pulse_step_unit": "relative", "conductance_range": (1e-3, 1)},
     "more than the whole conductance window"),
])
def test_a_pulse_larger_than_its_window_is_refused(kwargs, words):
    with pytest.raises(ConfigError, match=words):
        small(optimizer="pulse", **kwargs)


def test_a_pulse_as_large_as_the_window_trains():
    model = small(optimizer="pulse", pulse_step=20.0)
    model.train(BAS, save=False)
    assert bool(torch.isfinite(model.W).all())


def test_the_pulse_check_ignores_other_optimizers():
    pulse.check("SGD", "relative", None, 1e300, (-1.0, 1.0))


def test_a_pulse_flag_without_the_pulse_optimizer_is_one_line(tmp_path, capsys):
    assert run_cli(["train", *TINY, "--pulse-step", "0.1", "--run-dir", str(tmp_path / "r")]) == 2
    line = one_line(capsys)
    assert "--pulse-step sets the programming pulses of --optimizer pulse, but the optimizer is SGD" in line
    assert not (tmp_path / "r").exists()
    assert run_cli(["train", *TINY, "--optimizer", "pulse", "--pulse-step", "0.1", "--run-dir",
                    str(tmp_path / "p")]) == 0


# ------------------------------------------------------------------ counts that ask for days
def test_a_generation_past_the_work_bound_is_refused_before_it_starts():
    model = small()
    with pytest.raises(ConfigError, match="multiply-adds"):
        model.generate(10, 2**62)
    with pytest.raises(ConfigError, match="multiply-adds"):
        model.forward(BAS, 2**62)
    with pytest.raises(ConfigError, match="multiply-adds"):  # tiny, but a billion steps take hours of launches
        model.generate(2, 10**9)
    work = limits.sampling_work(10, 10**6, 9, 4)
    assert work <= limits.MAX_WORK  # a long but sensible chain is not refused
    assert model.generate(2, 3).shape == (2, 9)


@pytest.mark.parametrize("argv,words", [
    (["generate", "RUN", "-k", str(2**62), "-o", "OUT/g.png"], "use fewer Gibbs steps -k"),
    (["generate", "RUN", "-k", str(10**12), "-n", "1000000", "-o", "OUT/g.png"], "-n"),
    (["reconstruct", "RUN", "-k", str(2**62), "-o", "OUT/r.png"], "-k"),
    (["evaluate", "RUN", "-k", str(2**62), "--no-fid"], "-k"),
])
def test_huge_step_counts_on_the_command_line_are_one_line(trained, tmp_path, capsys, argv, words):
    argv = [str(trained) if a == "RUN" else a.replace("OUT", str(tmp_path)) for a in argv]
    assert run_cli(argv) == 2
    line = one_line(capsys)
    assert "multiply-adds" in line and words in line, line
    assert not list(tmp_path.iterdir())


def test_a_huge_end_of_run_generation_is_refused_before_training(tmp_path, capsys):
    assert run_cli(["train", *TINY, "--generate-k", str(2**62), "--run-dir", str(tmp_path / "r")]) == 2
    line = one_line(capsys)
    assert "the end-of-run generation of" in line and "lower --generate-k" in line, line
    assert not (tmp_path / "r" / "model_states").exists()


@pytest.mark.parametrize("argv,words", [
    (["--k", str(2**62)], "--k 4611686018427387904 Gibbs steps of 64 rows"),
    (["--cpu-watts", "1e300"], "--cpu-watts must be a power in (0, 100000] watts"),
])
def test_rkm_energy_refuses_days_of_work_and_absurd_powers(tmp_path, capsys, argv, words):
    assert run_cli(["energy", *argv, "--sizes", "4,8", "--out", str(tmp_path / "e"), "--no-progress"]) == 2
    assert words in one_line(capsys)


# ------------------------------------------------------------------ Python values of the wrong kind
@pytest.mark.parametrize("call,error,words", [
    (lambda: small(regularization=np.array([1.0, 2.0])), ConfigError, "regularization=array"),
    (lambda: small(conductance_range=torch.tensor(2.0)), ConfigError, "conductance_range must be a pair"),
    (lambda: small(comparator_levels=np.array(2.0)), ConfigError, "comparator_levels must be a pair"),
    (lambda: setattr(small(), "W", "x"), DataError, "W must be numeric (bool, int or float), got text"),
    (lambda: setattr(small(), "W", None), DataError, "W must be numeric (bool, int or float), got Python objects"),
    (lambda: setattr(small(), "v_bias", torch.zeros(9, dtype=torch.complex64)), DataError, "real numbers"),
    (lambda: setattr(small(), "W_t", [[1, 2]]), DataError, "W_t must have shape (9, 4)"),
    (lambda: rkm.save_model(small(), 5), ConfigError, "model_state_path must be a folder path"),
    (lambda: rkm.save_model(small(), None), ConfigError, "model_state_path must be a folder path"),
])
def test_python_values_of_the_wrong_kind_are_typed_errors(call, error, words):
    with pytest.raises(error) as err:
        call()
    assert words in str(err.value)


def test_a_weight_tensor_that_autograd_tracks_is_taken_as_its_values():
    model = small()
    model.W = torch.full((4, 9), 0.5, requires_grad=True)
    assert not model.W.requires_grad and float(model.W[0, 0]) == 0.5
    model.train(BAS, save=False)
    assert math.isfinite(float(model.energy))
