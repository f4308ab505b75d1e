"""Grading and notebooks on a GPU (``-m gpu``; skipped where torch sees no CUDA device).

The totals of the reference, blank and one-wrong submissions of every assignment
are the same when torch exercises run on the GPU as on the CPU (student code and
reference both on the device, with the GPU tolerances of ``grader.spec.tolerance``),
and every source notebook runs top to bottom with ``COURSE_DEVICE=cuda``.
"""

from __future__ import annotations

import csv

import nbformat
import pytest

from grader.autograde import autograde
from grader.fixtures import make_small_class
from grader.paths import ROOT, assignments

# python -m bench suite: this module's batch tests grow with the number of assignments.
SCALES_WITH_ASSIGNMENTS = True

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")]

SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))


def _totals(out):
    with open(out / "grades.csv") as f:
        return {(r["student_id"], r["assignment"]): r["score"] for r in csv.DictReader(f)}


def test_totals_are_the_same_on_the_gpu_as_on_the_cpu(tmp_path, sandbox):
    subs = tmp_path / "submitted"
    for aid in assignments():
        make_small_class(subs, aid)
    cpu = autograde(subs, tmp_path / "cpu", workers=2, sandbox=sandbox, device="cpu", log=lambda m: None)
    gpu = autograde(subs, tmp_path / "gpu", workers=2, sandbox=sandbox, device="cuda", log=lambda m: None)
    assert len(cpu) == len(gpu)
    assert _totals(tmp_path / "cpu") == _totals(tmp_path / "gpu")


@pytest.mark.parametrize("path", SOURCES, ids=[f"{p.parent.name}/{p.name}" for p in SOURCES])
def test_source_notebook_runs_on_the_gpu(path, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
