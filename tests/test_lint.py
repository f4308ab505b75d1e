"""The code base passes ruff, as in the house style (lint runs in CI through this test)."""

import json
import re
import shutil
import subprocess

import pytest

from grader.paths import ROOT


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(ROOT / ".venv" / "bin" / "ruff")
    if not shutil.which(ruff):
        pytest.skip("ruff is not installed (it comes with the test extra)")
    proc = subprocess.run([ruff, "check", "--output-format", "concise", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]



def _tracked(*patterns: str) -> list[str]:
    proc = subprocess.run(["git", "ls-files", "-z", "--", *patterns], cwd=ROOT, capture_output=True)
    if proc.returncode != 0:
        pytest.skip("not a git checkout")
    return [p for p in proc.stdout.decode().split("\0") if p]


def test_committed_notebooks_have_no_outputs_or_execution_counts():
    paths = _tracked("solutions/*.ipynb", "notebooks/*.ipynb")
    assert any(p.startswith("solutions/") for p in paths) and any(p.startswith("notebooks/") for p in paths)
    dirty = []
    for path in paths:
        nb = json.loads((ROOT / path).read_text(encoding="utf-8"))
        for i, cell in enumerate(nb["cells"]):
            if cell.get("outputs"):
                dirty.append(f"{path}: cell {i} has outputs")
            if cell.get("execution_count") is not None:
                dirty.append(f"{path}: cell {i} has execution count {cell['execution_count']}")
    assert not dirty, ("clear the outputs (JupyterLab: Edit > Clear Outputs of All Cells, then save) and run "
                       "`python -m grader release`:\n  " + "\n  ".join(dirty))


# Paths outside the repository that no file may depend on; spelled so that this file
# does not match itself.
OUTSIDE = re.compile("|".join([r"\.\./" + "shared", r"(?<![\w.~-])/" + "work/"]))


def test_no_tracked_file_points_outside_the_repository():
    hits = []
    for path in _tracked():
        try:
            text = (ROOT / path).read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue  # binary files (images), and files deleted but not yet committed
        for n, line in enumerate(text.splitlines(), 1):
            m = OUTSIDE.search(line)
            if m:
                hits.append(f"{path}:{n}: {m.group(0)!r} in {line.strip()[:120]!r}")
    assert not hits, "files refer to paths outside the repository:\n  " + "\n  ".join(hits)


def test_outside_pattern_catches_what_it_should():
    assert OUTSIDE.search("Read `" + "../" + "shared/STYLE.md` first")
    assert OUTSIDE.search("cd " + "/work" + "/main && make")
    assert not OUTSIDE.search("see docs/shared_notes.md and ./work/ or my/work/dir")
