"""Every notebook in colabs/ executes top to bottom in its smoke setting (DBVQ_SMOKE=1)."""

import os

import nbformat
import pytest
from nbclient import NotebookClient

import helpers

COLABS = os.path.join(helpers.ROOT, "colabs")


@pytest.mark.parametrize("name", sorted(f for f in os.listdir(COLABS) if f.endswith(".ipynb")))
def test_notebook_runs(name, tmp_path, monkeypatch):
  monkeypatch.setenv("DBVQ_SMOKE", "1")
  monkeypatch.setenv("DBVQ_WORKDIR", str(tmp_path / "work"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  notebook = nbformat.read(os.path.join(COLABS, name), as_version=4)
  NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": COLABS}}).execute()
  images = [
    o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
  ]
  assert images, "the notebook shows no figure"
