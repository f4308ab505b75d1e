"""environment.yml (conda) must ask for the same packages as pyproject.toml (pip)."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}


def _norm(req: str) -> tuple[str, str]:
    m = re.match(r"\s*([A-Za-z0-9_.-]+)\s*(.*)", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {}
    for req in meta["dependencies"] + meta["optional-dependencies"]["test"]:
        name, spec = _norm(req)
        wanted[CONDA_NAMES.get(name, name)] = spec
    conda = {}
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        m = re.match(r"^  - ([A-Za-z0-9_.-]+)(.*)$", line)
        if m and m.group(1) not in ("python", "pip"):
            conda[m.group(1).lower()] = m.group(2).replace(" ", "")
    assert conda == wanted, (
        "environment.yml and pyproject.toml disagree; "
        f"only in pyproject: {sorted(set(wanted) - set(conda))}, only in environment.yml: "
        f"{sorted(set(conda) - set(wanted))}, different versions: "
        f"{sorted(k for k in wanted if k in conda and conda[k] != wanted[k])}")


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 course.py test" in readme
    assert "python3 course.py lab" in readme
    assert [ln for ln in ci.splitlines() if ln and not ln.startswith("#") and not ln.startswith(("set ", "cd "))] \
        == ["python3 course.py test"]


def test_lab_and_test_install_the_same_torch(monkeypatch):
    """CI tests what users get: no CI-only torch pin, COURSE_TORCH the one override."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    monkeypatch.delenv("COURSE_TORCH", raising=False)
    monkeypatch.setenv("CI", "true")
    assert course.torch_spec() == "torch"
    monkeypatch.delenv("CI")
    assert course.torch_spec() == "torch"
    monkeypatch.setenv("COURSE_TORCH", "torch --index-url https://example.invalid/cpu")
    assert course.torch_spec() == "torch --index-url https://example.invalid/cpu"
    source = (ROOT / "course.py").read_text()
    assert "CI" not in [w.strip("\"'()[]") for w in source.split()], "course.py must not branch on CI"
