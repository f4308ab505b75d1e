#!/usr/bin/env python3
"""Set up the course and use it, with nothing but Python 3.11+ and pip.

    python3 course.py lab      # set up .venv/ and open JupyterLab on the course
    python3 course.py test     # set up .venv/ (with the test tools) and run every test

Both create (or reuse) a virtual environment in ``.venv/`` at the top of the
repository and install the course into it with ``pip install -e .``.  The
test command also installs the system packages the tests drive (bubblewrap
for the grading sandbox, postgresql for the gradebook tests, chromium for the
browser tests) when it runs as root on Debian/Ubuntu.

Both install torch exactly the same way: the newest ``torch`` from the package
index (on Linux that is the CUDA build, which also runs on a machine without an
NVIDIA GPU), so the tests check what a student gets.

Environment variables:
  COURSE_TORCH    pip arguments for torch, installed first (default: torch). On a
                  machine without an NVIDIA GPU the much smaller CPU-only build is
                  COURSE_TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
  COURSE_PYTHON   the interpreter that creates .venv (default: this one)
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
APT_PACKAGES = ["bubblewrap", "postgresql", "chromium"]


def _have_package(name: str) -> bool:
    if name == "postgresql":  # the server binaries live outside PATH on Debian
        import glob

        return bool(glob.glob("/usr/lib/postgresql/*/bin/initdb") or shutil.which("initdb"))
    # package -> the binary it installs (Debian's chromium provides /usr/bin/chromium)
    return bool(shutil.which({"bubblewrap": "bwrap", "chromium": "chromium"}.get(name, name)))


def say(msg: str) -> None:
    print(f"[course] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def ensure_venv() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (course.py may be run by an older python3)
        sys.exit(f"Python 3.11 or newer is needed; this is {sys.version.split()[0]}")
    if not PY.exists():
        say(f"creating a virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)


def _stamp(extra: str) -> Path:
    return VENV / f".installed-{extra or 'base'}"


def torch_spec() -> str:
    """What pip installs for torch: ``COURSE_TORCH``, the same for ``lab`` and ``test``."""
    return os.environ.get("COURSE_TORCH", "").strip() or "torch"


def ensure_installed(extra: str, torch_spec: str) -> None:
    """``pip install -e .[extra]``, skipped when pyproject.toml has not changed."""
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + torch_spec.encode()).hexdigest()
    stamp = _stamp(extra)
    if stamp.exists() and stamp.read_text() == digest:
        return
    pip = [PY, "-m", "pip", "--disable-pip-version-check"]
    have_torch = subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0
    if not have_torch:
        # torch first, so the rest of the install does not pull a different build.
        run(pip + ["install", *shlex.split(torch_spec)])
    target = f".[{extra}]" if extra else "."
    run(pip + ["install", "-e", target], cwd=ROOT)
    stamp.write_text(digest)


def ensure_system_packages() -> None:
    """Debian packages the tests use; installed when we can (root on Debian)."""
    missing = [p for p in APT_PACKAGES if not _have_package(p)]
    if not missing:
        return
    if os.name != "posix" or not shutil.which("apt-get") or os.geteuid() != 0:
        say(f"please install {' '.join(missing)} with your system's package manager "
            "(the grading sandbox needs bubblewrap, the gradebook tests a PostgreSQL server, "
            "the browser tests chromium); "
            "tests that need them will be skipped")
        return
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def cmd_lab(args: list[str]) -> int:
    ensure_venv()
    ensure_installed("", torch_spec())
    start = ROOT / "notebooks" / "index.ipynb"
    cmd = [BIN / "jupyter", "lab", f"--notebook-dir={ROOT}"]
    if start.exists():
        cmd.append(str(start.relative_to(ROOT)))
    run(cmd + args, cwd=ROOT)
    return 0


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    ensure_installed("test", torch_spec())
    ensure_system_packages()
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT, env=env).returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("lab", "test"):
        print(__doc__)
        return 2
    return {"lab": cmd_lab, "test": cmd_test}[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
