"""The notebooks: stored without outputs, and each runs top to bottom in a fresh kernel."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import REPO

NOTEBOOKS = REPO / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
#: Longest a single cell may run (the notebooks are meant to take well under 30 s each).
CELL_TIMEOUT_S = 120
#: Longest the kernel may take to start (generous: CI machines can be busy).
STARTUP_TIMEOUT_S = 180


def _execute(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    client = NotebookClient(nb, timeout=CELL_TIMEOUT_S, startup_timeout=STARTUP_TIMEOUT_S,
                            kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    return client.execute()


def test_there_are_three_notebooks():
    assert [p.name for p in PATHS] == ["01_quickstart.ipynb",
                                       "02_methodology_and_sensitivity.ipynb",
                                       "03_bring_your_own_data.ipynb"]


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path: Path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)


@pytest.mark.notebook
def test_the_kernel_is_this_python():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; sys.executable")])
    out = _execute(nb).cells[0].outputs[0]["data"]["text/plain"]
    assert Path(out.strip("'")).resolve() == Path(sys.executable).resolve()


@pytest.mark.notebook
@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs_top_to_bottom(path: Path):
    nb = _execute(nbformat.read(path, as_version=4))
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
