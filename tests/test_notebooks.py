"""Every source notebook executes top to bottom with its solutions, offline.

The run is shared (the ``executed`` fixture in conftest.py) and in quick mode: training runs
are shortened with ``course_utils.budget``; ``python -m bench`` times the full runs.
"""

import pytest

from grader.paths import ROOT

pytestmark = pytest.mark.slow

SOURCES = sorted((ROOT / "solutions").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", SOURCES, ids=[f"{p.parent.name}/{p.name}" for p in SOURCES])
def test_source_notebook_executes(path, executed):
    run = executed(path)
    print(f"{path.parent.name}/{path.name}: {run['seconds']:.1f} s (quick mode)")
    assert run["error"] is None, run["error"]
    errors = [o for c in run["nb"].cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
