"""One environment all term: requirements.lock and environment.yml come from pyproject.toml,
and course.py installs the lock."""

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"torch": "pytorch"}
sys.path.insert(0, str(ROOT / "tools"))
import lock  # noqa: E402  (tools/lock.py)


def _course_script():
    spec = importlib.util.spec_from_file_location("course_script", ROOT / "course.py")
    course = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(course)
    return course


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
    course = _course_script()
    monkeypatch.delenv("COURSE_TORCH", raising=False)
    monkeypatch.setenv("CI", "true")
    assert course.torch_spec() == "torch"
    monkeypatch.delenv("CI")
    assert course.torch_spec() == "torch"
    monkeypatch.setenv("COURSE_TORCH", "torch --index-url https://example.invalid/cpu")
    assert course.torch_spec() == "torch --index-url https://example.invalid/cpu"
    source = (ROOT / "course.py").read_text()
    assert "CI" not in [w.strip("\"'()[]") for w in source.split()], "course.py must not branch on CI"


def test_environment_yml_is_generated_from_pyproject():
    text = (ROOT / "environment.yml").read_text()
    assert text.startswith("# GENERATED from pyproject.toml by `python tools/lock.py`")
    assert text == lock.render_environment_yml(), "environment.yml is stale: run python tools/lock.py"


def test_lock_was_resolved_from_the_current_pyproject():
    assert lock.problems() == []
    assert lock.lock_digest() == lock.dependency_digest()


def test_lock_digest_notices_a_new_dependency(tmp_path):
    changed = tmp_path / "pyproject.toml"
    changed.write_text((ROOT / "pyproject.toml").read_text().replace(
        '"threadpoolctl>=3.1",', '"threadpoolctl>=3.1",\n    "rich>=13",'))
    assert lock.dependency_digest(changed) != lock.lock_digest()
    assert any("resolved from other dependencies" in p for p in lock.problems(pyproject=changed))


def _pins():
    pins: dict[str, list[tuple[str, str]]] = {}
    for name, version, marker in lock.read_lock():
        pins.setdefault(name, []).append((version, marker))
    return pins


def test_lock_pins_every_dependency_within_pyprojects_ranges():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = meta["dependencies"] + [r for extra in meta["optional-dependencies"].values() for r in extra]
    pins = _pins()
    for text in reqs:
        req = Requirement(text)
        name = lock.canonical(req.name)
        assert name in pins, f"{name} (pyproject.toml) is not in requirements.lock"
        for version, _ in pins[name]:
            assert Version(version) in req.specifier, f"{name}=={version} does not satisfy {text}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary
            assert f"{name}-{extra}" in pins, f"{name}[{extra}] is not in requirements.lock"


def test_lock_is_universal():
    """One lock for Linux, macOS and Windows: platform-only packages carry markers."""
    pins = _pins()
    assert [v for v, m in pins["torch"]] == ["2.14.1"] and pins["torch"][0][1] == ""
    cuda = {n: ms for n, ms in pins.items() if n.startswith(("nvidia-", "cuda-", "triton"))}
    assert cuda and all("sys_platform == 'linux'" in m for ms in cuda.values() for _, m in ms)
    markers = [m for ms in pins.values() for _, m in ms if m]
    for platform in ("darwin", "linux", "win32"):
        env = {"sys_platform": platform, "platform_system": {"darwin": "Darwin", "linux": "Linux",
               "win32": "Windows"}[platform], "python_full_version": "3.11.9", "python_version": "3.11"}
        assert any(Marker(m).evaluate(env) for m in markers if platform in m), platform


def test_course_installs_the_lock_in_one_command(monkeypatch):
    course = _course_script()
    monkeypatch.delenv("COURSE_LOCK", raising=False)
    assert course.use_lock()
    assert course.constraints("torch") == (ROOT / "requirements.lock").read_text()
    cfile = Path("/venv/constraints.txt")
    for have_torch in (False, True):
        cmds = course.install_commands("test", "torch", have_torch, cfile)
        assert [[str(a) for a in c] for c in cmds] == [
            [str(course.PY), "-m", "pip", "--disable-pip-version-check", "install",
             "-c", str(cfile), "-e", ".[test]"]]
    lab = course.install_commands("", "torch", False, cfile)
    assert lab[-1][-2:] == ["-e", "."] and "-c" in lab[-1]


def test_course_torch_replaces_only_the_torch_build(monkeypatch):
    course = _course_script()
    cpu = "torch --index-url https://download.pytorch.org/whl/cpu"
    text = course.constraints(cpu)
    names = {course._lock_name(ln) for ln in text.splitlines() if ln and ln[0] not in "# -"}
    assert "numpy" in names and "jupyterlab" in names and "sympy" in names
    assert not {n for n in names if n == "torch" or n == "triton" or n.startswith(("nvidia-", "cuda-"))}
    full = {course._lock_name(ln) for ln in course.constraints("torch").splitlines() if ln and ln[0] not in "# -"}
    assert full - names == {n for n in full if course.TORCH_BUILD.match(n)}
    cfile = Path("/venv/constraints.txt")
    first, rest = course.install_commands("test", cpu, False, cfile)
    assert [str(a) for a in first][-4:] == ["install", "torch", "--index-url", "https://download.pytorch.org/whl/cpu"]
    assert "-c" in rest and str(cfile) in rest
    # a torch already there is kept: only the course and the rest of the lock
    assert len(course.install_commands("test", cpu, True, cfile)) == 1


def test_course_lock_off_installs_pyprojects_ranges(monkeypatch):
    course = _course_script()
    monkeypatch.setenv("COURSE_LOCK", "off")
    assert not course.use_lock()
    (cmd,) = course.install_commands("", "torch", False, None)
    assert "-c" not in cmd


def test_install_stamp_covers_the_lock_and_torch(monkeypatch, tmp_path):
    course = _course_script()
    base = course.install_digest("torch", True)
    assert base == course.install_digest("torch", True)
    assert base != course.install_digest("torch --index-url https://download.pytorch.org/whl/cpu", True)
    assert base != course.install_digest("torch", False)
    other = tmp_path / "requirements.lock"
    other.write_text(course.LOCK.read_text().replace("numpy==", "numpy==0", 1))
    monkeypatch.setattr(course, "LOCK", other)
    assert course.install_digest("torch", True) != base


@pytest.mark.parametrize("torch", ["torch", "torch --index-url https://download.pytorch.org/whl/cpu"])
def test_course_constraints_command_prints_what_install_uses(torch, monkeypatch, capsys):
    course = _course_script()
    monkeypatch.setenv("COURSE_TORCH", torch)
    monkeypatch.delenv("COURSE_LOCK", raising=False)
    assert course.main(["constraints"]) == 0
    assert capsys.readouterr().out == course.constraints(torch)
