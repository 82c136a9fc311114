"""Property-based tests of every setting's numbers, through the Python API and the command line (issue 22).

Hypothesis draws values for each setting: finite extremes, NaN, infinities, huge integers and
values of the wrong type. Every outcome must be success or one typed error (API: an RKMError;
CLI: exit status 2 and one ``rkm: error:`` line); a model that is accepted trains and samples
with finite physics. The CLI cases that allocate run in a child process under an address-space
limit, so an allocation that the memory estimate did not foresee fails the test instead of the
machine. No example may hang: each runs under an alarm far longer than it needs (seconds where
it takes milliseconds), and the profiles (tests/conftest.py) set no timing deadline.
Deterministic in CI (``derandomize=True``); ``HYPOTHESIS_PROFILE=long`` draws many more.
"""

import contextlib
import math
import resource
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rkm
from rkm import hyperparams
from rkm.app._cli import main
from rkm.core import limits
from rkm.errors import RKMError
from rkm.io.datasets import bars_and_stripes

BAS = torch.tensor(bars_and_stripes(3))
EXAMPLE_SECONDS = 300
"""An example that runs this long hangs: the slowest one takes about a second on a loaded machine."""

NASTY = st.one_of(
    st.sampled_from([0, -0.0, 1, -1, 0.5, 2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(10**30), 1e300, -1e300, 1e-300,
                     5e-324, 1e38, 3.5e38, 1e-38, math.inf, -math.inf, math.nan, True, False, None, "abc", "1e3", "",
                     b"x", [1, 2], (0.001, 1), (1, 0.5), (0, 1), 1j, np.float32(0.25), np.int64(3), np.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
)
"""Values of every kind a setting may be handed."""

NUMERIC = sorted(name for name, s in hyperparams.MODEL.items()
                 if s.kind in (int, float) and name not in ("n_visible", "seed") or name == "conductance_range")


@contextlib.contextmanager
def no_hang(seconds: int = EXAMPLE_SECONDS):
    """Fail an example that does not finish (SIGALRM; the tests run in the main thread)."""

    def hang(signum, frame):
        raise AssertionError(f"the example ran over {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def small(**kwargs):
    return rkm.RKM(**{"model_name": "p", "n_visible": 9, "n_hidden": 4, "seed": 0, "device": "cpu", "batch_size": 4,
                      "max_epochs": 2, **kwargs})


def trains_finitely(model) -> None:
    """Two updates and a generation: the physics of an accepted model stays finite."""
    model.max_epochs = model.epoch + 2
    model.train(BAS, save=False)
    assert bool(torch.isfinite(model.energy)) and bool(torch.isfinite(model.power_f))
    assert bool(torch.isfinite(model.relax_t_f[torch.isfinite(model.relax_t_f)]).all())
    assert np.isin(model.generate(3, 2), (0.0, 1.0)).all()


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ------------------------------------------------------------------ the Python API
@settings(max_examples=settings().max_examples * 4)
@given(name=st.sampled_from(NUMERIC), value=NASTY)
def test_every_setting_in_the_constructor_is_accepted_and_finite_or_a_typed_error(name, value):
    with no_hang():
        try:
            model = small(**{name: value})
        except RKMError:
            return
        if name not in ("k", "max_epochs"):  # they only set how long training takes: huge valid values are valid
            trains_finitely(model)


@settings(max_examples=settings().max_examples * 4)
@given(name=st.sampled_from(NUMERIC), value=NASTY)
def test_every_assignment_is_accepted_and_finite_or_a_typed_error_that_changes_nothing(name, value):
    with no_hang():
        model = small()
        before = {key: getattr(model, key) for key in NUMERIC if key not in ("n_hidden",)}
        try:
            setattr(model, name, value)
        except (RKMError, AttributeError) as err:  # AttributeError: a setting fixed at construction (n_hidden)
            if isinstance(err, AttributeError):
                assert not hyperparams.MODEL[name].mutable
            assert {key: getattr(model, key) for key in before} == before
            return
        if name not in ("k", "max_epochs"):
            trains_finitely(model)


@given(g=st.floats(1e-40, 1e40), offset=st.floats(-1e40, 1e40), bound=st.floats(1e-40, 1e40),
       dtype=st.sampled_from([torch.float32, torch.float64, torch.float16]), beta=st.floats(0, 2000))
def test_physics_that_the_rules_accept_is_finite_in_its_dtype(g, offset, bound, dtype, beta):
    with no_hang():
        try:
            model = small(g_v=g, g_h=g, offset=offset, min_W=-bound, max_W=bound, mytype=dtype, model_beta=beta)
        except RKMError:
            return
        model.W = torch.full_like(model.W, bound)  # the worst case: every parameter at the clipping bound
        model.v_bias = torch.full_like(model.v_bias, -bound)
        model.h_bias = torch.full_like(model.h_bias, bound)
        for forward, data in ((True, BAS), (False, torch.ones(BAS.shape[0], 4))):
            power = model.power_forward(data) if forward else model.power_backward(data)
            assert bool(torch.isfinite(power).all()), (forward, power)
        trains_finitely(model)


# ------------------------------------------------------------------ the memory estimate
@settings(max_examples=max(4, settings().max_examples // 5))
@given(batch=st.integers(1, 512), chains=st.one_of(st.none(), st.integers(1, 512)),
       algo=st.sampled_from(["CD", "PCD", "RDM", "vRDM", "hRDM", "PT"]), optimizer=st.sampled_from(["SGD", "Adam"]),
       hidden=st.integers(1, 300), devices=st.booleans())
def test_the_memory_estimate_bounds_what_training_allocates(batch, chains, algo, optimizer, hidden, devices):
    from torch.profiler import ProfilerActivity, profile

    extra = {"conductance_range": (1e-3, 10.0), "variability": 0.1} if devices else {}
    data = (torch.rand(2 * batch, 100, generator=torch.Generator().manual_seed(0)) < 0.3).float()

    def run():
        model = rkm.RKM("m", 100, hidden, batch_size=batch, n_chains=chains, train_algo=algo, optimizer=optimizer,
                        n_temperatures=3, k=2, max_epochs=2, seed=0, device="cpu", **extra)
        model.train(data, save=False)

    with no_hang(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    estimate = limits.training_bytes(100, hidden, batch_size=batch, n_chains=chains, train_algo=algo,
                                     n_temperatures=3, optimizer=optimizer, devices=devices,
                                     variability=0.1 if devices else 0.0)
    assert peak <= estimate, (peak, estimate)


# ------------------------------------------------------------------ the command line
FLAGS = [(f"--{s.cli_flag}", s) for s in hyperparams.TABLE if s.in_config and s.cli_flag and s.kind is not str]
TEXT = st.one_of(
    st.sampled_from(["0", "-1", "1", "nan", "inf", "-inf", "1e300", "-1e300", "1e-300", str(2**63), str(2**64),
                     "1" * 30, "abc", "", "true", "false", "0.5", "1e20", "0x10", "1,2", " 3 "]),
    st.from_regex(r"-?[0-9]{1,25}(\.[0-9]{0,5})?(e-?[0-9]{1,3})?", fullmatch=True),
)


@settings(max_examples=settings().max_examples * 4, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flag=st.sampled_from(FLAGS), text=TEXT)
def test_every_flag_resolves_or_is_one_line(flag, text, capsys):  # capsys is read out after every example
    name, setting = flag
    argv = ["train", "--preset", "bars", "--show-config"]
    argv += [name] if setting.kind is bool and text == "" else [f"{name}={text}"]
    with no_hang():
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's own errors
            status = exc.code
    captured = capsys.readouterr()
    if status == 0:
        assert captured.err == "" and "[model]" in captured.out
    else:
        lines = captured.err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and lines[0].startswith("rkm: error: "), (argv, captured.err)


ALLOCATING = ["--batch-size", "--n-chains", "--n-temperatures", "--n-hidden", "--n-generate", "--n-eval",
              "--n-quality"]
MEMORY_LIMIT = 3 * 2**30
"""Address space of the CLI children: torch's own mappings need about 2 GB."""


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@settings(max_examples=max(3, settings().max_examples // 8))
@given(flag=st.sampled_from(ALLOCATING), size=st.one_of(st.integers(1, 64), st.integers(10**6, 10**13)))
def test_sizes_that_allocate_train_or_are_refused_under_a_memory_limit(flag, size, tmp_path_factory):
    run = tmp_path_factory.mktemp("alloc") / "run"
    argv = [sys.executable, "-m", "rkm", "train", "--dataset", "bars-and-stripes", "--size", "3", "--n-hidden", "6",
            "--batch-size", "8", "--max-epochs", "3", "--log-every", "3", "--generate-k", "2", "--n-generate", "4",
            "--n-eval", "8", "--n-quality", "8", "--no-progress", "--train-algo", "PT", "--run-dir", str(run),
            flag, str(size)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=EXAMPLE_SECONDS, preexec_fn=_limit_memory)
    lines = done.stderr.strip().splitlines()
    if done.returncode != 0:
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith("rkm: error: "), done.stderr
        assert "needs about" in lines[0] or "must be" in lines[0], lines[0]
    else:
        assert "updates: 3" in done.stdout


@given(threshold=st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**30), 10**30)))
def test_a_threshold_is_accepted_exactly_in_0_1_by_the_key_and_the_api(threshold):
    from rkm.app.config import resolve_config
    from rkm.io.datasets import binarize

    data = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    if 0 <= threshold < 1:
        assert resolve_config(overrides={"data": {"threshold": threshold}})["data"]["threshold"] == threshold
        assert binarize(data, threshold).tolist() == (data > threshold).tolist()
        return
    with pytest.raises(rkm.ConfigError, match=r"threshold must lie in \[0, 1\)"):
        resolve_config(overrides={"data": {"threshold": threshold}})
    with pytest.raises(rkm.ConfigError, match=r"threshold must lie in \[0, 1\)"):
        binarize(data, threshold)
