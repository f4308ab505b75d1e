"""Where the course's folders are: the repository root, overridable by env vars."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def solutions_dir() -> Path:
    return Path(os.environ.get("COURSE_SOLUTIONS_DIR", ROOT / "solutions"))


def release_dir() -> Path:
    return Path(os.environ.get("COURSE_RELEASE_DIR", ROOT / "notebooks"))


def assignments() -> list[str]:
    """Assignment ids in course order (the folders under ``solutions/``)."""
    d = solutions_dir()
    if not d.is_dir():
        return []
    return sorted(p.name for p in d.iterdir() if p.is_dir() and any(p.glob("*.ipynb")))


def ensure_scripts_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` command: make sure the scripts
    folder of this interpreter's environment is on PATH even when the
    environment was not activated."""
    import sys
    import sysconfig

    scripts = sysconfig.get_path("scripts")
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for d in (scripts, os.path.dirname(sys.executable)):
        if d and d not in parts:
            parts.insert(0, d)
    os.environ["PATH"] = os.pathsep.join(parts)
