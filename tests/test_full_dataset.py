"""Every notebook's ``USE_FULL_DATASET = True`` path runs top to bottom.

The full data sets (MNIST, CIFAR-10) need a network; here their loaders are replaced by
stand-ins of the same format (tests/standin_data.py), so each cell written for the full
data runs on arrays of the real shapes, dtypes and ranges. Quick mode, as test_notebooks.
Each run costs a minute or two, so the suite runs a representative sample of the
assignments (conftest.representative; ``COURSE_TEST_ALL=1`` runs them all).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from conftest import representative
from nbclient import NotebookClient

from grader.paths import ROOT

pytestmark = pytest.mark.slow

SWITCH = re.compile(r"^USE_FULL_DATASET = False\b", re.M)


def _has_switch(path: Path) -> bool:
    nb = nbformat.read(path, as_version=4)
    return any(c.cell_type == "code" and SWITCH.search(c.source) for c in nb.cells)


SOURCES = [p for p in sorted((ROOT / "solutions").glob("*/*.ipynb")) if _has_switch(p)]
SAMPLE = [p for p in SOURCES if p.parent.name in representative(sorted({s.parent.name for s in SOURCES}))]
TESTS = Path(__file__).resolve().parent


def test_every_assignment_with_real_data_has_the_switch():
    """From 01 on, the experiments use real data: each such notebook offers the full data set."""
    for path in sorted((ROOT / "solutions").glob("*/*.ipynb")):
        if path.parent.name >= "01" and "load_digits" in path.read_text():
            assert path in SOURCES, f"{path.parent.name}: no `USE_FULL_DATASET = False` switch"


@pytest.mark.parametrize("path", SAMPLE, ids=[p.parent.name for p in SAMPLE])
def test_full_dataset_path_executes(path, tmp_path, monkeypatch):
    nb = nbformat.read(path, as_version=4)
    switched = 0
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source, n = SWITCH.subn("USE_FULL_DATASET = True", cell.source)
            switched += n
    assert switched == 1, "the switch should be set in exactly one cell"
    stand_in = nbformat.v4.new_code_cell(
        f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nimport standin_data\nstandin_data.install()")
    nb.cells.insert(0, stand_in)
    for key, value in {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "COURSE_QUICK": "1",
                       "COURSE_DATA_DIR": str(tmp_path / "data")}.items():
        monkeypatch.setenv(key, value)
    t0 = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    print(f"{path.parent.name}: {time.monotonic() - t0:.1f} s with the full-data path (quick mode)")
    assert os.environ["COURSE_QUICK"] == "1"
