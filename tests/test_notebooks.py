"""Every source notebook executes top to bottom with its solutions, offline."""

import time

import nbformat
import pytest
from nbclient import NotebookClient

from grader.paths import ROOT

pytestmark = pytest.mark.slow

SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=[f"{p.parent.name}/{p.name}" for p in SOURCES])
def test_source_notebook_executes(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))  # nothing cached: must run offline
    nb = nbformat.read(str(path), as_version=4)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    seconds = time.monotonic() - t0
    print(f"{path.parent.name}/{path.name}: {seconds:.1f} s")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
