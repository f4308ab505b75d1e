"""The grader image (Dockerfile): its structure, checked without a container engine, and its
entrypoint script, run here as the image runs it."""

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: what grading never needs in the final image: compilers and network clients
FORBIDDEN = ("build-essential", "gcc", "g++", "clang", "make", "curl", "wget", "git", "openssh-client",
             "netcat", "ncat", "socat")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, args = current.strip().partition(" ")
        out.append((keyword.upper(), " ".join(args.split())))
        current = ""
    return out


def stages() -> list[dict]:
    result = []
    for keyword, args in instructions((ROOT / "Dockerfile").read_text()):
        if keyword == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args, re.I)
            result.append({"image": m.group(1), "name": m.group(2), "steps": []})
        elif result:
            result[-1]["steps"].append((keyword, args))
    return result


def steps(stage: dict, keyword: str) -> list[str]:
    return [a for k, a in stage["steps"] if k == keyword]


def test_multi_stage_build_from_one_python_image():
    s = stages()
    assert [st["name"] for st in s] == ["builder", "runtime"]
    assert {st["image"] for st in s} == {"${PYTHON_IMAGE}"}
    args = [a for k, a in instructions((ROOT / "Dockerfile").read_text()) if k == "ARG"]
    assert any(re.fullmatch(r"PYTHON_IMAGE=python:3\.1[1-9]-slim\S*", a) for a in args)


def test_builder_installs_the_course_as_course_py_does():
    builder = stages()[0]
    runs = " && ".join(steps(builder, "RUN"))
    assert "python3 course.py install" in runs, "the image must install with the same command as the README"
    assert "COURSE_TORCH" in " ".join(steps(builder, "ARG"))
    assert steps(builder, "COPY") == [". ."]
    ignored = dockerignore()
    for needed in ("requirements.lock", "pyproject.toml", "course.py", "solutions/00_tensors/tensors.ipynb",
                   "grader/__init__.py", "course_utils/__init__.py", "docker/entrypoint.sh"):
        assert (ROOT / needed).exists() and not is_ignored(needed, ignored), needed


def test_runtime_stage_is_slim_and_runs_as_a_user():
    runtime = stages()[-1]
    users = steps(runtime, "USER")
    assert users and users[-1] not in ("root", "0", "0:0")
    runs = " ".join(steps(runtime, "RUN"))
    installed = set()
    for cmd in re.findall(r"apt-get install ([^&;]+)", runs):
        installed |= {w for w in cmd.split() if not w.startswith("-")}
    assert "bubblewrap" in installed
    assert not installed & set(FORBIDDEN), installed & set(FORBIDDEN)
    assert "rm -rf /var/lib/apt/lists/*" in runs
    assert not re.search(r"\b(pip|course\.py)\b", runs), "the runtime stage installs nothing from the index"
    copies = steps(runtime, "COPY")
    assert copies == ["--from=builder /opt/course /opt/course"]
    env = " ".join(steps(runtime, "ENV"))
    assert "PATH=/opt/course/.venv/bin:" in env


def test_entrypoint_is_the_grader():
    runtime = stages()[-1]
    (entry,) = steps(runtime, "ENTRYPOINT")
    assert entry == '["/opt/course/docker/entrypoint.sh"]'
    script = ROOT / "docker" / "entrypoint.sh"
    assert os.access(script, os.X_OK)
    assert "exec python -m grader" in script.read_text()


def dockerignore() -> list[str]:
    return [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
            if ln.strip() and not ln.startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    for pat in patterns:
        pat = pat.rstrip("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        for p in prefixes:
            if fnmatch.fnmatch(p, pat) or (pat.startswith("**/") and fnmatch.fnmatch(p.split("/")[-1], pat[3:])):
                return True
    return False


def test_dockerignore_keeps_local_state_out():
    pats = dockerignore()
    for path in (".venv/bin/python", ".git/HEAD", "grader/__pycache__/cli.cpython-311.pyc",
                 "notebooks/01_knn/.ipynb_checkpoints/knn-checkpoint.ipynb", "test-output/x.png",
                 "deep_learning_course.egg-info/PKG-INFO", ".pytest_cache/README.md"):
        assert is_ignored(path, pats), path


def _entrypoint(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    return subprocess.run([str(ROOT / "docker" / "entrypoint.sh"), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


@pytest.mark.skipif(not shutil.which("sh"), reason="needs a POSIX shell")
def test_entrypoint_runs_grader_commands_and_passes_commands_through(tmp_path):
    help_ = _entrypoint("--help", tmp_path=tmp_path)
    assert help_.returncode == 0 and "autograde" in help_.stdout and "release" in help_.stdout
    sub = _entrypoint("check", "--help", tmp_path=tmp_path)
    assert sub.returncode == 0 and "--sandbox" in sub.stdout
    # what the docker sandbox appends after the image name: a python command line
    worker = _entrypoint("python", "-I", "-c", "import grader.worker, sys; print('worker', sys.flags.isolated)",
                         tmp_path=tmp_path)
    assert worker.returncode == 0 and worker.stdout.strip() == "worker 1", worker.stderr
    assert _entrypoint("sh", "-c", "echo passed through", tmp_path=tmp_path).stdout.strip() == "passed through"


def test_readme_documents_the_image():
    readme = (ROOT / "README.md").read_text()
    assert "docker build -t course-grader ." in readme
    assert "COURSE_GRADER_IMAGE=course-grader" in readme
    for word in ("dask-kubernetes", "dask-jobqueue"):
        assert word in readme
