"""The documentation site: strict build, the API reference, and what a broken link does.

The site's build (``make docs``) is strict: ``-W --keep-going -n``. These tests build it
without executing the tutorials (``RKM_DOCS_EXECUTE=off``; ``tests/test_tutorials.py``
executes them) and read Sphinx's inventory, ``objects.inv``: every name users import from
``rkm`` and every method of pyrkm's ``RKM`` reference must be an object of the API reference.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the docs extra is not installed: pip install -e '.[docs]'")
pytest.importorskip("myst_nb", reason="the docs extra is not installed: pip install -e '.[docs]'")

from sphinx.util.inventory import InventoryFile  # noqa: E402
from test_api import SEED_METHODS  # noqa: E402

import rkm  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def sphinx_build(source: Path, out: Path, doctrees: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RKM_DOCS_EXECUTE": "off"}
    return subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-E", "-n", "-W", "--keep-going",
                           "-q", "-d", str(doctrees), str(source), str(out)],
                          capture_output=True, text=True, env=env, cwd=ROOT)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    result = sphinx_build(DOCS, out, tmp_path_factory.mktemp("doctrees"))
    assert result.returncode == 0, result.stderr[-6000:]
    return out


def inventory(site):
    with open(site / "objects.inv", "rb") as f:
        inv = InventoryFile.load(f, "", lambda base, uri: uri)
    return {name: item for kind in inv.values() for name, item in kind.items()}


def test_the_strict_build_passes_and_writes_every_section(site):
    for page in ["index", "install", "tutorials/index", "guide", "pyrkm", "api/index", "changelog",
                 "citing", "license"]:
        assert (site / f"{page}.html").is_file(), page
    for number in range(1, 8):
        assert list((site / "tutorials").glob(f"0{number}-*.html")), f"tutorial {number}"


def test_every_top_level_name_is_in_the_api_reference(site):
    names = inventory(site)
    missing = [name for name in rkm.__all__ if f"rkm.{name}" not in names]
    assert not missing


# The methods whose entry in pyrkm's API reference has a Returns section.
SEED_RETURNS = [
    "v_to_h", "h_to_v", "Bernoulli_v_to_h", "Bernoulli_h_to_v", "Deterministic_v_to_h", "Deterministic_h_to_v",
    "delta_eh", "delta_ev", "forward", "generate", "reconstruct", "power_forward", "power_backward",
    "av_power_forward", "av_power_backward", "relaxation_times", "derivatives", "derivatives_hopfield",
]


def method_entries(page: str) -> dict[str, str]:
    """The HTML of each method's entry on a class page, by method name."""
    parts = re.split(r'<dt class="sig sig-object py" id="rkm\.RKM\.(\w+)">', page)
    return dict(zip(parts[1::2], parts[2::2]))


def test_every_pyrkm_method_is_on_the_rkm_page_with_parameters_and_returns(site):
    names = inventory(site)
    missing = [m for m in SEED_METHODS if f"rkm.RKM.{m}" not in names]
    assert not missing
    assert {names[f"rkm.RKM.{m}"].uri.split("#")[0] for m in SEED_METHODS} == {"api/rkm.RKM.html"}
    entries = method_entries((site / "api" / "rkm.RKM.html").read_text())
    for method in SEED_METHODS:
        has_parameters = len(inspect.signature(getattr(rkm.RKM, method)).parameters) > 1
        assert (">Parameters<" in entries[method]) == has_parameters, method
        if method in SEED_RETURNS:
            assert ">Returns<" in entries[method], method


def test_every_public_module_has_a_page(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        import apipages
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    names = inventory(site)
    modules = apipages.public_modules()
    assert "rkm.machine" in modules and not any(part.startswith("_") for m in modules for part in m.split("."))
    assert [m for m in modules if m not in names] == []
    for module in modules:
        for name in getattr(importlib.import_module(module), "__all__", ()):
            assert f"{module}.{name}" in names, f"{module}.{name}"


def test_a_broken_link_or_reference_fails_the_build(tmp_path):
    """The site's own settings (nitpicky, MyST's cross-reference warnings as errors) on one page."""
    source = tmp_path / "docs"
    source.mkdir()
    shutil.copy(DOCS / "conf.py", source / "conf.py")
    with open(source / "conf.py", "a") as f:
        f.write('\nextensions.remove("apipages")\n')
    (source / "index.md").write_text("# A page\n\nSee [the guide](no-such-page.md) and {py:func}`rkm.no_such_function`.\n")
    result = sphinx_build(source, tmp_path / "out", tmp_path / "doctrees")
    assert result.returncode != 0
    assert "no-such-page" in result.stderr and "rkm.no_such_function" in result.stderr
