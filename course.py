#!/usr/bin/env python3
"""Set up the course and use it, with nothing but Python 3.11+ and pip.

    python3 course.py lab      # set up .venv/ and open JupyterLab on the course
    python3 course.py test     # set up .venv/ (with the test tools) and run every test
    python3 course.py install  # only set up .venv/ (what the grader image runs)

All create (or reuse) a virtual environment in ``.venv/`` at the top of the
repository and install the course into it with ``pip install -e .``, every
package at the exact version of ``requirements.lock`` (one lock for every
platform, generated from pyproject.toml by ``python tools/lock.py``), so that
everyone has the same environment all term. The test command also installs
the system packages the tests drive (bubblewrap for the grading sandbox,
postgresql for the gradebook tests, chromium for the browser tests) when it
runs as root on Debian/Ubuntu.

All install torch exactly the same way: the ``torch`` of the lock, which is the
build the package index gives (on Linux the CUDA build, which also runs on a
machine without an NVIDIA GPU), so the tests check what a student gets.

Environment variables:
  COURSE_TORCH    pip arguments for torch, installed first instead of the lock's torch
                  (the rest still comes from the lock). On a machine without an NVIDIA
                  GPU the much smaller CPU-only build is
                  COURSE_TORCH="torch --index-url https://download.pytorch.org/whl/cpu"
  COURSE_LOCK     "off" installs pyproject.toml's version ranges instead of the lock
                  (for a platform the lock cannot serve)
  COURSE_PYTHON   the interpreter that creates .venv (default: this one)

``python3 course.py constraints`` prints the pip constraints these settings give.
"""

from __future__ import annotations

import hashlib
import os
import re
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
LOCK = ROOT / "requirements.lock"
#: the packages of the CUDA build of torch, left to COURSE_TORCH when it names another build
TORCH_BUILD = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


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


def use_lock() -> bool:
    """Install the lock's versions (default), or pyproject's ranges with ``COURSE_LOCK=off``."""
    return LOCK.exists() and os.environ.get("COURSE_LOCK", "").strip().lower() not in ("off", "0", "no")


def _lock_name(line: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\s=;\[<>!~]", line.strip(), maxsplit=1)[0]).lower()


def constraints(torch: str) -> str:
    """The pip constraints for ``torch`` (the torch spec): the whole lock for the default torch;
    the lock without torch and the CUDA build's own packages (triton, nvidia-*, cuda-*) when
    ``COURSE_TORCH`` names another build, which then brings its own."""
    lines = LOCK.read_text(encoding="utf-8").splitlines()
    if torch == "torch":
        return "\n".join(lines) + "\n"
    kept = []
    for line in lines:
        if line and not line.startswith(("#", " ", "-")) and TORCH_BUILD.match(_lock_name(line)):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def install_commands(extra: str, torch: str, have_torch: bool, constraints_file: Path | None) -> list[list]:
    """The pip command lines that install the course into .venv.

    ``constraints_file``: the lock as pip constraints (:func:`constraints`), or None for
    pyproject's ranges.  The default torch comes from the lock with everything else, in one
    command; ``COURSE_TORCH`` is installed first, on its own (when there is no torch yet), so
    that the rest keeps the build it chose."""
    pip = [PY, "-m", "pip", "--disable-pip-version-check"]
    pinned = ["-c", str(constraints_file)] if constraints_file else []
    cmds = []
    if torch != "torch" and not have_torch:
        cmds.append(pip + ["install", *shlex.split(torch)])
    target = f".[{extra}]" if extra else "."
    cmds.append(pip + ["install", *pinned, "-e", target])
    return cmds


def install_digest(torch: str, locked: bool) -> str:
    """What the stamp records: reinstall when pyproject.toml, the lock or the torch choice change."""
    parts = [(ROOT / "pyproject.toml").read_bytes(), torch.encode(),
             LOCK.read_bytes() if locked else b"COURSE_LOCK=off"]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()


def ensure_installed(extra: str, torch: str) -> None:
    """``pip install -e .[extra]`` with the lock's versions, skipped when nothing has changed."""
    locked = use_lock()
    digest = install_digest(torch, locked)
    stamp = _stamp(extra)
    if stamp.exists() and stamp.read_text() == digest:
        return
    cfile = None
    if locked:
        cfile = VENV / "constraints.txt"
        cfile.write_text(constraints(torch), encoding="utf-8")
        say(f"installing the versions of {LOCK.name}"
            + ("" if torch == "torch" else f", with torch from COURSE_TORCH ({torch})"))
    else:
        say("COURSE_LOCK=off: installing pyproject.toml's version ranges, not the lock"
            if LOCK.exists() else f"no {LOCK.name}: installing pyproject.toml's version ranges")
    have_torch = subprocess.run([PY, "-c", "import torch"], capture_output=True).returncode == 0
    try:
        for cmd in install_commands(extra, torch, have_torch, cfile):
            run(cmd, cwd=ROOT)
    except subprocess.CalledProcessError as exc:
        if "-c" in exc.cmd:
            say(f"pip could not install the versions of {LOCK.name} here. If this platform or Python "
                "has no build of one of them, COURSE_LOCK=off installs pyproject.toml's version "
                "ranges instead (a newer or older version of some packages than the class uses).")
        raise
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
    if os.name == "posix" and os.geteuid() == 0 and "--allow-root" not in args:
        # Containers, VMs and cloud notebooks often run everything as root, which JupyterLab
        # refuses without this flag.
        say("running as root: starting JupyterLab with --allow-root")
        cmd.append("--allow-root")
    say("$ " + " ".join(str(c) for c in cmd + args))
    return subprocess.run([str(c) for c in cmd + args], cwd=ROOT).returncode


def cmd_test(args: list[str]) -> int:
    ensure_venv()
    ensure_installed("test", torch_spec())
    ensure_system_packages()
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONHASHSEED="0")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run([PY, "-m", "pytest", *args], cwd=ROOT, env=env).returncode


def cmd_install(args: list[str]) -> int:
    ensure_venv()
    ensure_installed("", torch_spec())
    return 0


def cmd_constraints(args: list[str]) -> int:
    if not use_lock():
        print("[course] no constraints: COURSE_LOCK=off, or no requirements.lock", file=sys.stderr)
        return 0
    sys.stdout.write(constraints(torch_spec()))
    return 0


COMMANDS = {"lab": cmd_lab, "test": cmd_test, "install": cmd_install, "constraints": cmd_constraints}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
