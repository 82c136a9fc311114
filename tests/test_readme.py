"""The README's and the install page's examples run as written.

Every ``bash`` and ``python`` block of ``README.md``, and the two first sessions of
``docs/install.md``, is extracted and run in a temporary folder, with the environment's
``rkm`` first on the PATH (as after ``source .venv/bin/activate``) and one torch thread. The
examples use tiny budgets so that this takes a few minutes. ``make demo`` and ``make test``
are checked with ``make -n`` (the targets exist and say what they run): the demo trains for
minutes and the suite is this test's own.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(text: str, languages: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(lang, body) for lang, body in FENCE.findall(text) if lang in languages]


def section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def shell_commands(body: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    body = body.replace("\\\n", " ")
    return [line.split("  #")[0].strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]


README = (ROOT / "README.md").read_text()
INSTALL = (ROOT / "docs" / "install.md").read_text()
EXAMPLES = (
    [("README", lang, body) for lang, body in blocks(README, ("bash", "python"))]
    + [("install", lang, body) for lang, body in blocks(section(INSTALL, "## A first session on the command line"),
                                                         ("bash",))]
    + [("install", lang, body) for lang, body in blocks(section(INSTALL, "## A first session in Python"),
                                                         ("python",))]
)


@pytest.fixture
def user_env(tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["OMP_NUM_THREADS"] = "1"
    env["MPLBACKEND"] = "Agg"
    return env


def test_the_examples_are_found():
    kinds = [(where, lang) for where, lang, _ in EXAMPLES]
    assert kinds.count(("README", "bash")) == 2 and kinds.count(("README", "python")) == 1
    assert ("install", "bash") in kinds and ("install", "python") in kinds


@pytest.mark.parametrize("where,lang,body", EXAMPLES,
                         ids=[f"{where}-{lang}-{i}" for i, (where, lang, _) in enumerate(EXAMPLES)])
def test_example_runs_as_written(where, lang, body, tmp_path, user_env):
    if lang == "python":
        script = tmp_path / "example.py"
        script.write_text(body)
        result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=user_env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-4000:]
        return
    for command in shell_commands(body):
        argv = shlex.split(command)
        if argv[0] == "make":
            argv = ["make", "-n", *argv[1:]]
            cwd = ROOT
        else:
            assert argv[0] == "rkm", f"{where}: a shell example calls {argv[0]!r}, not rkm"
            cwd = tmp_path
        result = subprocess.run(argv, cwd=cwd, env=user_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
