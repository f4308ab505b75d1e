"""The course's one environment: ``requirements.lock`` and ``environment.yml``, both from pyproject.toml.

    .venv/bin/python tools/lock.py            # refresh both (keeps every pin that still fits)
    .venv/bin/python tools/lock.py --upgrade  # newest versions of everything (between terms)
    .venv/bin/python tools/lock.py --check    # fail if either is out of date (no network)

``requirements.lock`` holds the exact version of every package that ``python3 course.py lab``
and ``test`` install, for every platform (one universal resolution by uv, with environment
markers: the CUDA libraries only on Linux, and so on). It records a digest of pyproject.toml's
dependency lists, so a dependency added to pyproject.toml without refreshing the lock is caught
by ``--check`` and by the tests. Refreshing needs uv in the environment (``.venv/bin/python -m
pip install uv``) and the package index.

``environment.yml`` (conda) is rendered from the same lists, with pyproject's version ranges.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "requirements.lock"
ENVIRONMENT = ROOT / "environment.yml"
COMMAND = "python tools/lock.py"
#: pip name -> conda-forge name, where they differ
CONDA_NAMES = {"torch": "pytorch"}
DIGEST_PREFIX = "# pyproject-dependencies-sha256: "
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_.-]*)")


def canonical(name: str) -> str:
    """PEP 503 normalised name: ``Scikit_Learn`` -> ``scikit-learn``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def project(pyproject: Path = PYPROJECT) -> dict:
    return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]


def dependency_digest(pyproject: Path = PYPROJECT) -> str:
    """Digest of what the lock is resolved from: python version, dependencies, extras."""
    meta = project(pyproject)
    data = {"requires-python": meta.get("requires-python", ""),
            "dependencies": meta.get("dependencies", []),
            "optional-dependencies": meta.get("optional-dependencies", {})}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def lock_digest(lock: Path = LOCK) -> str | None:
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line[len(DIGEST_PREFIX):].strip()
    return None


def read_lock(lock: Path = LOCK) -> list[tuple[str, str, str]]:
    """``(name, version, marker)`` for every pin of the lock (a name may appear once per marker)."""
    pins = []
    for line in lock.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in "# -":
            continue
        req, _, marker = line.partition(";")
        name, sep, version = req.partition("==")
        if not sep:
            raise ValueError(f"{lock.name}: not an exact pin: {line!r}")
        pins.append((canonical(name.strip().split("[")[0]), version.strip(), marker.strip()))
    return pins


def requirement_name(req: str) -> str:
    return canonical(_NAME.match(req).group(1))


def render_environment_yml(pyproject: Path = PYPROJECT) -> str:
    """The text of environment.yml: pyproject's dependencies and test tools, as conda packages."""
    meta = project(pyproject)

    def line(req: str) -> str:
        m = _NAME.match(req)
        name, spec = m.group(1), req[m.end():].split(";")[0].replace(" ", "")
        if "[" in spec:  # extras (psycopg[binary]) have no conda equivalent
            spec = spec[spec.index("]") + 1:]
        return f"  - {CONDA_NAMES.get(canonical(name), canonical(name))}{spec}"

    py = meta.get("requires-python", "").replace(" ", "")
    out = [
        f"# GENERATED from pyproject.toml by `{COMMAND}`; do not edit (tests/test_environment.py",
        "# fails when it is out of date). Edit pyproject.toml and run the command again.",
        "# Conda environment for the course: `conda env create -f environment.yml`,",
        "# then `conda activate deep-learning-course`. Conda resolves pyproject's version ranges;",
        "# the exact versions that `python3 course.py lab` installs are in requirements.lock.",
        f"name: {meta['name']}",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python{py}",
        "  - pip",
        *(line(r) for r in meta["dependencies"]),
        "  # test extra",
        *(line(r) for r in meta.get("optional-dependencies", {}).get("test", [])),
        "  - pip:",
        "      - --no-deps",
        "      - -e .",
    ]
    return "\n".join(out) + "\n"


def problems(pyproject: Path = PYPROJECT, lock: Path = LOCK, environment: Path = ENVIRONMENT) -> list[str]:
    """What is out of date, in words (empty when both files match pyproject.toml)."""
    found = []
    if not environment.exists() or environment.read_text(encoding="utf-8") != render_environment_yml(pyproject):
        found.append(f"{environment.name} differs from what pyproject.toml gives")
    if not lock.exists():
        found.append(f"{lock.name} is missing")
    elif lock_digest(lock) != dependency_digest(pyproject):
        found.append(f"{lock.name} was resolved from other dependencies than pyproject.toml's")
    if found:
        found.append(f"run `{COMMAND}` and commit the result")
    return found


def uv_command(upgrade: bool = False, output: Path = LOCK) -> list[str]:
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    cmd = [uv, "pip", "compile", "--universal", "--all-extras", "--quiet",
           "--custom-compile-command", COMMAND, str(PYPROJECT.relative_to(ROOT)), "-o", str(output)]
    return cmd + (["--upgrade"] if upgrade else [])


def refresh(upgrade: bool = False) -> None:
    """Resolve the lock again with uv (keeping the pins it has, unless ``upgrade``)."""
    cmd = uv_command(upgrade)
    if not Path(cmd[0]).exists():
        sys.exit("uv is needed to refresh the lock: .venv/bin/python -m pip install uv")
    subprocess.run(cmd, cwd=ROOT, check=True)
    body = [ln for ln in LOCK.read_text(encoding="utf-8").splitlines() if not ln.startswith(DIGEST_PREFIX)]
    header = [
        "# requirements.lock: the exact versions `python3 course.py lab` and `test` install, on every",
        f"# platform. GENERATED from pyproject.toml by `{COMMAND}`; do not edit.",
        DIGEST_PREFIX + dependency_digest(),
    ]
    LOCK.write_text("\n".join(header + body) + "\n", encoding="utf-8")
    ENVIRONMENT.write_text(render_environment_yml(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=COMMAND, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="write nothing; fail if a file is out of date")
    p.add_argument("--upgrade", action="store_true", help="move every pin to the newest version that fits")
    args = p.parse_args(argv)
    if args.check:
        found = problems()
        print("\n".join(found) if found else "requirements.lock and environment.yml match pyproject.toml")
        return 1 if found else 0
    refresh(args.upgrade)
    print(f"wrote {LOCK.name} and {ENVIRONMENT.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
