"""Shared fixtures: pyrkm 0.1.0 for side-by-side checks, skipped cleanly when it is absent; Hypothesis's profiles."""

import contextlib
import importlib.util
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

# Property-based tests: deterministic and bounded in CI (the default), longer where asked for
# (HYPOTHESIS_PROFILE=long). No deadline: a per-example time depends on the machine's load.
settings.register_profile("ci", derandomize=True, max_examples=25, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("long", max_examples=500, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def pyrkm():
    """pyrkm 0.1.0 imported with torchvision stubbed (``bash benchmarks/setup.sh`` installs it)."""
    if importlib.util.find_spec("pyrkm") is None:
        pytest.skip("pyrkm 0.1.0 is not installed (bash benchmarks/setup.sh)")
    compat = pytest.importorskip("benchmarks.pyrkm_compat")
    return compat.import_pyrkm()


@contextlib.contextmanager
def pyrkm_global_state():
    """pyrkm's constructors set torch's default dtype and draw from the global generator: undo both."""
    dtype = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        try:
            yield
        finally:
            torch.set_default_dtype(dtype)


@pytest.fixture
def pyrkm_model(pyrkm):
    """Build a pyrkm model, ``pyrkm_model('RBM', 'name', n_visible, n_hidden, ...)``, leaving no global trace."""

    def make(cls_name, *args, **kwargs):
        with pyrkm_global_state():
            return getattr(pyrkm, cls_name)(*args, **kwargs)

    return make
