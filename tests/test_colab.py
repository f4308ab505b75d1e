"""Notebooks that open anywhere: "Open in Colab" links and the setup cell (grader/colab.py),
check_my_work where there is no sandbox, and notebooks that use the GPU when there is one."""

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

import nbformat
import pytest

from grader import colab
from grader.release import release

ROOT = Path(__file__).resolve().parents[1]
GITHUB = "https://github.com/example-org/deep-learning-course"


def _pyproject_with(tmp_path: Path, repository: str, ref: str = "") -> Path:
    text = (ROOT / "pyproject.toml").read_text()
    text, n = re.subn(r'(?m)^repository = ".*"$', f"repository = {repository!r}".replace("'", '"'), text)
    assert n == 1, "pyproject.toml sets [tool.course] repository in one place"
    text = re.sub(r'(?m)^ref = ".*"$', f'ref = "{ref}"', text)
    path = tmp_path / "pyproject.toml"
    path.write_text(text)
    return path


def test_public_url_is_set_in_one_place(monkeypatch, tmp_path):
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert isinstance(conf["tool"]["course"]["repository"], str)
    version = conf["project"]["version"]
    monkeypatch.delenv("COURSE_REPOSITORY", raising=False)
    monkeypatch.delenv("COURSE_REF", raising=False)
    unset = _pyproject_with(tmp_path, "")
    assert colab.settings(unset) == colab.Settings("", "v" + version)
    assert colab.cells("notebooks/01_knn/knn.ipynb", colab.settings(unset)) == ([], {})
    assert colab.settings(_pyproject_with(tmp_path, GITHUB, "v9")) == colab.Settings(GITHUB, "v9")
    monkeypatch.setenv("COURSE_REPOSITORY", "https://github.com/other/fork")
    monkeypatch.setenv("COURSE_REF", "v2.0")
    assert colab.settings(unset) == colab.Settings("https://github.com/other/fork", "v2.0")


def test_committed_release_follows_the_configuration(monkeypatch):
    """With no public URL configured the release has no links and no setup cells; with one,
    every notebook has them (``grader release --check`` compares the rest)."""
    monkeypatch.delenv("COURSE_REPOSITORY", raising=False)
    configured = bool(colab.settings().repository)
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        nb = json.loads(path.read_text())
        has_setup = any(c.get("id") == colab.SETUP_ID for c in nb["cells"])
        assert has_setup == configured, path
        assert ("colab" in nb["metadata"].get("course", {})) == configured, path


@pytest.mark.parametrize("url", [GITHUB, GITHUB + ".git", GITHUB + "/", "git@github.com:example-org/deep-learning-course.git"])
def test_colab_link_from_a_github_url(url):
    assert colab.colab_url(url, "v1.0", "notebooks/01_knn/knn.ipynb") == (
        "https://colab.research.google.com/github/example-org/deep-learning-course/blob/v1.0/notebooks/01_knn/knn.ipynb")


def test_no_colab_link_off_github_but_a_setup_cell():
    conf = colab.Settings("https://gitlab.example.org/course.git", "v1.0")
    assert colab.colab_url(conf.repository, conf.ref, "notebooks/index.ipynb") is None
    cells, meta = colab.cells("notebooks/01_knn/knn.ipynb", conf)
    assert [c["id"] for c in cells] == [colab.SETUP_ID]
    assert meta == {"repository": conf.repository, "ref": "v1.0", "path": "notebooks/01_knn/knn.ipynb"}


def test_badge_and_setup_cell_with_a_github_url():
    cells, _ = colab.cells("notebooks/01_knn/knn.ipynb", colab.Settings(GITHUB, "v1.0"))
    link, setup = cells
    assert link["cell_type"] == "markdown" and "colab-badge.svg" in link["source"]
    assert "/blob/v1.0/notebooks/01_knn/knn.ipynb" in link["source"]
    compile(setup["source"], "setup", "exec")
    assert f"repository={GITHUB!r}" in setup["source"] and "folder='notebooks/01_knn'" in setup["source"]


@pytest.fixture(scope="module")
def released_with_url(tmp_path_factory):
    """Every assignment and the index released with a repository configured (as an instructor
    would with ``COURSE_REPOSITORY`` or ``[tool.course] repository``)."""
    out = tmp_path_factory.mktemp("release-colab")
    mp = pytest.MonkeyPatch()
    mp.setenv("COURSE_RELEASE_DIR", str(out))
    mp.setenv("COURSE_REPOSITORY", GITHUB)
    mp.setenv("COURSE_REF", "v1.0")
    from grader.release import release_index

    release()
    release_index()
    yield out
    mp.undo()


def test_release_puts_the_link_and_setup_cell_first_in_every_notebook(released_with_url):
    paths = sorted(released_with_url.rglob("*.ipynb"))
    assert len(paths) >= 3
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        rel = path.relative_to(released_with_url).as_posix()
        assert [c.get("id") for c in nb.cells[:2]] == [colab.LINK_ID, colab.SETUP_ID], rel
        assert f"/blob/v1.0/notebooks/{rel})" in nb.cells[0].source
        assert nb.metadata["course"]["colab"] == {"repository": GITHUB, "ref": "v1.0", "path": f"notebooks/{rel}"}
        folder = str(Path("notebooks", rel).parent.as_posix())
        assert f"folder={folder!r}" in nb.cells[1].source
        assert not nb.cells[1].metadata.get("nbgrader"), "the setup cell is not graded"


def test_course_index_reads_titles_past_the_link(released_with_url):
    from course_utils.progress import assignment_info

    for path in sorted(released_with_url.glob("*/*.ipynb")):
        with_link = json.loads(path.read_text())
        plain = json.loads((ROOT / "notebooks" / path.relative_to(released_with_url)).read_text())
        assert assignment_info(with_link, path.parent.name) == assignment_info(plain, path.parent.name)


def test_setup_cell_is_silent_in_a_copy_of_the_course(released_with_url):
    nb = nbformat.read(str(released_with_url / "01_knn" / "knn.ipynb"), as_version=4)
    proc = subprocess.run([sys.executable, "-c", nb.cells[1].source + "\nimport course_utils, os; print(os.getcwd())"],
                          capture_output=True, text=True, cwd=ROOT / "notebooks" / "01_knn", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(ROOT / "notebooks" / "01_knn"), "nothing printed, nothing moved"


# ----------------------------------------------------------------------------
# The setup cell in an environment without the course
# ----------------------------------------------------------------------------


def _public_copy(dest: Path) -> str:
    """A git repository with this working tree's files committed (as the public one would be);
    returns the commit."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, files):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    git = ["git", "-C", str(dest), "-c", "user.name=Course", "-c", "user.email=course@example.org"]
    subprocess.run(["git", "init", "--quiet", str(dest)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "--quiet", "-m", "release"], check=True)
    return subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def _fresh_env(dest: Path) -> Path:
    """A new virtual environment that sees this one's packages (torch, nbgrader, ...) but not the
    course: a folder of links to every installed package except the course's own files."""
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(dest)], check=True)
    deps = dest / "deps"
    deps.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name.startswith(("__editable__", "deep_learning_course")) or entry.suffix == ".pth":
            continue
        (deps / entry.name).symlink_to(entry)
    py = dest / "bin" / "python"
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    (Path(site) / "course-test-deps.pth").write_text(f"{deps}\n")
    return py


@pytest.mark.slow
def test_setup_cell_installs_the_course_where_it_is_missing(tmp_path, monkeypatch):
    public = tmp_path / "public"
    commit = _public_copy(public)
    out = tmp_path / "release"
    monkeypatch.setenv("COURSE_RELEASE_DIR", str(out))
    monkeypatch.setenv("COURSE_REPOSITORY", public.as_uri())
    monkeypatch.setenv("COURSE_REF", commit)
    release(["00_tensors"])
    student = nbformat.read(str(out / "00_tensors" / "tensors.ipynb"), as_version=4)
    assert student.cells[0].id == colab.SETUP_ID  # no Colab link for a repository off GitHub
    # the student's answers: the reference solutions, by grade_id
    source = nbformat.read(str(ROOT / "solutions" / "00_tensors" / "tensors.ipynb"), as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    for cell in student.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid in answers:
            cell.source = answers[gid]
    work = tmp_path / "colab"
    work.mkdir()
    nbformat.write(student, str(work / "tensors.ipynb"))

    py = _fresh_env(tmp_path / "fresh")
    tools = tmp_path / "tools"  # PATH has git but no bubblewrap, as on Colab
    tools.mkdir()
    (tools / "git").symlink_to(shutil.which("git"))
    env = {k: v for k, v in os.environ.items() if k.startswith("PIP_") or k in ("LANG", "SSL_CERT_FILE")}
    env.update(PATH=f"{py.parent}{os.pathsep}{tools}", HOME=str(tmp_path / "home"), MPLBACKEND="Agg",
               PYTHONHASHSEED="0", COURSE_QUICK="1")
    missing = subprocess.run([str(py), "-c", "import course_utils"], cwd=work, env=env, capture_output=True, text=True)
    assert "No module named 'course_utils'" in missing.stderr, "the fresh environment must lack the course"

    # Run it as Jupyter does: a kernel of the fresh environment executes the notebook's cells up to
    # its first self-check, then check_my_work() in a cell of its own.
    script = textwrap.dedent("""
        import sys
        import nbformat
        from nbclient import NotebookClient

        nb = nbformat.read("tensors.ipynb", as_version=4)
        cells = []
        for cell in nb.cells:
            cells.append(cell)
            grading = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and grading.get("grade") and not grading.get("solution"):
                print("SELF-CHECK:", grading["grade_id"])
                break
        cells.append(nbformat.v4.new_code_cell("import course_utils\\nprint('COURSE FROM', course_utils.__file__)"))
        cells.append(nbformat.v4.new_code_cell("from course_utils.progress import check_my_work\\n"
                                               "check_my_work(%r)" % sys.argv[1]))
        nb.cells = cells
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}}).execute()
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                print(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    """)
    proc = subprocess.run([str(py), "-c", script, str(work / "tensors.ipynb")], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    clone = work / "deep-learning-course"
    lines = proc.stdout
    assert f"Course setup: downloading {public.as_uri()} at {commit} into {clone}" in lines
    assert f"Course setup: the course is installed; working in {clone / 'notebooks' / '00_tensors'}" in lines
    assert subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip() == commit
    assert "SELF-CHECK:" in lines
    assert f"COURSE FROM {clone / 'course_utils' / '__init__.py'}" in lines
    # check_my_work graded without a sandbox, said so, and every exercise passed
    assert "graded without a sandbox: this machine has no bubblewrap" in lines
    assert re.search(r"all autograded exercises pass \(([1-9]\d*)/\1 points\)", lines), lines[-3000:]

    # a restarted kernel: the course is importable now, the cell only moves to the folder
    again = subprocess.run([str(py), "-c", student.cells[0].source + "\nimport os; print(os.getcwd())"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"Course setup: working in {clone / 'notebooks' / '00_tensors'}",
                                         str(clone / "notebooks" / "00_tensors")]


# ----------------------------------------------------------------------------
# check_my_work without a sandbox, and on Colab
# ----------------------------------------------------------------------------


def test_default_sandbox_without_bubblewrap(monkeypatch, tmp_path):
    from course_utils.progress import default_sandbox

    monkeypatch.delenv("COURSE_SANDBOX", raising=False)
    if shutil.which("bwrap"):
        assert default_sandbox() == (None, "")
    monkeypatch.setenv("PATH", str(tmp_path))  # a machine without bubblewrap
    sandbox, note = default_sandbox()
    assert sandbox == "none" and "without a sandbox" in note and "bubblewrap" in note
    monkeypatch.setenv("COURSE_SANDBOX", "docker")
    assert default_sandbox() == (None, "")


def test_colab_notebook_is_saved_where_the_course_keeps_it(tmp_path, monkeypatch):
    import course_utils.progress as progress

    monkeypatch.setattr(progress, "PACKAGE_ROOT", tmp_path)
    nb = json.loads((ROOT / "notebooks" / "01_knn" / "knn.ipynb").read_text())
    nb["metadata"].setdefault("course", {})["colab"] = {"repository": GITHUB, "ref": "v1", "path": "notebooks/01_knn/knn.ipynb"}
    path = progress.save_colab_notebook(nb)
    assert path == tmp_path / "notebooks" / "01_knn" / "knn.ipynb"
    assert json.loads(path.read_text()) == nb
    del nb["metadata"]["course"]["colab"]
    assert progress.save_colab_notebook(nb, tmp_path / "here.ipynb") == tmp_path / "here.ipynb"
    with pytest.raises(FileNotFoundError, match="Open in Colab"):
        progress.save_colab_notebook(nb)


# ----------------------------------------------------------------------------
# The GPU when there is one (Colab: Runtime > Change runtime type > GPU)
# ----------------------------------------------------------------------------

# Model work: layers and modules, tensors placed on a device. A notebook that only checks its numpy
# code against torch's float64 autograd or torch.optim (tensors made from numpy arrays) has nothing
# to put on a GPU; one that trains a torch model has a module, which these patterns find.
_COMPUTES_WITH_TORCH = re.compile(r"\bnn\.(Module|Linear|Conv\w*|Sequential)\b|\.to\(|\.cuda\(|"
                                  r"\bdevice\s*=")
_CPU_PINNED = re.compile(r"""device\s*=\s*["']cpu["']|\.to\(\s*["']cpu["']|torch\.device\(\s*["']cpu["']\s*\)""")


@pytest.mark.parametrize("path", sorted((ROOT / "solutions").glob("*/*.ipynb")), ids=lambda p: p.parent.name)
def test_torch_notebooks_compute_on_device(path):
    """A notebook that computes with torch (layers, optimisers, tensors on a device) picks its device
    with course_utils.device() (CUDA when present) and never pins its work to the CPU; naming the CPU is fine only next to the chosen device,
    in a comparison of the two."""
    cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    code = "\n".join(cells)
    if not re.search(r"^\s*(import torch|from torch\b)", code, re.M):
        return
    if not _COMPUTES_WITH_TORCH.search(code):
        return  # torch only as a float64 reference for numpy code, which is on the CPU by nature
    bound = re.findall(r"^\s*(\w+)\s*=\s*(?:course_utils\.)?device\(\)", code, re.M)
    assert bound, f"{path.name} uses torch but never calls course_utils.device()"
    for cell in cells:
        if _CPU_PINNED.search(cell):
            assert any(re.search(rf"\b{name}\b", cell) for name in bound), (
                f"{path.name} pins torch work to the CPU outside a comparison with device():\n{cell}")
