"""`python -m grader release`: the student notebooks are generated from the sources."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.paths import ROOT, assignments
from grader.release import release

# python -m bench suite: this module's batch tests grow with the number of assignments.
SCALES_WITH_ASSIGNMENTS = True

ASSIGNMENTS = assignments()


def test_release_check_passes_on_the_committed_tree():
    proc = subprocess.run([sys.executable, "-m", "grader", "release", "--check"], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_RELEASE_DIR", str(out))
    written = release()
    yield out, written, mp
    mp.undo()


def test_release_writes_every_assignment(fresh_release):
    out, written, _ = fresh_release
    assert {Path(w).parts[1] for w in written} == set(ASSIGNMENTS)


@pytest.mark.parametrize("aid", ASSIGNMENTS)
def test_release_has_no_solutions_tests_or_outputs(fresh_release, aid):
    out, _, _ = fresh_release
    for path in (out / aid).glob("*.ipynb"):
        text = path.read_text()
        for secret in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "run_hidden_tests"):
            assert secret not in text, f"{path.name} leaks {secret!r}"
        nb = nbformat.read(str(path), as_version=4)
        assert "do not edit" in nb.metadata["course"]["generated"]
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
        stubs = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")
                 and c.cell_type == "code"]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)


def test_check_names_stale_and_extra_files(fresh_release):
    out, _, mp = fresh_release
    aid = ASSIGNMENTS[0]
    nb_path = next((out / aid).glob("*.ipynb"))
    nb_path.write_text(nb_path.read_text().replace("Self-check", "Self check"))
    (out / aid / "stray.txt").write_text("x")
    stale = release([aid], check=True)
    assert f"notebooks/{aid}/{nb_path.name}" in stale
    assert any("stray.txt" in s and "not in the source" in s for s in stale)
    release([aid])  # repairs
    assert release([aid], check=True) == []


def test_committed_notebooks_carry_no_outputs():
    for path in list(ROOT.glob("notebooks/**/*.ipynb")) + list(ROOT.glob("solutions/**/*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path


def test_every_graded_test_cell_has_a_spec_and_back():
    from grader.notebook import source_notebooks
    from grader.specs import exercises

    for aid in ASSIGNMENTS:
        cells = set()
        for src in source_notebooks(aid):
            cells |= set(src.tests)
        assert cells == set(exercises(aid)), aid


def test_release_of_unknown_assignment_fails_clearly(tmp_path, monkeypatch):
    from grader.release import ReleaseError

    monkeypatch.setenv("COURSE_RELEASE_DIR", str(tmp_path))
    with pytest.raises(ReleaseError, match="no solutions/nope"):
        release(["nope"])

