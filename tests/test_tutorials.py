"""Every tutorial of the documentation site executes without error.

The tutorials are MyST Markdown notebooks (``docs/tutorials/*.md``); jupytext reads each into a
notebook and nbclient runs it in a fresh kernel, in a temporary folder (a tutorial writes its
save points and figures where it runs). The site's build executes them again, with their
outputs in the pages.
"""

from __future__ import annotations

from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext", reason="jupytext is not installed: pip install -e '.[test]'")
nbclient = pytest.importorskip("nbclient", reason="nbclient is not installed: pip install -e '.[test]'")

TUTORIALS = sorted((Path(__file__).resolve().parent.parent / "docs" / "tutorials").glob("[0-9]*.md"))


def test_there_are_seven_tutorials():
    assert [p.name[:2] for p in TUTORIALS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    notebook = jupytext.read(path)
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(cell.get("execution_count") for cell in code)
    errors = [out for cell in code for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
