"""Per-worker confinement that the sandbox itself does not give: real-memory limits and uids.

Memory
------
A worker's memory limit counts the memory it really uses (resident pages), not
the address space it reserves: the CUDA build of torch reserves several GB of
address space it never touches, so an address-space limit (RLIMIT_AS) breaks
it.  :func:`memory_enforcer` picks, once per grading process, the first of

``cgroup2``   a cgroup v2 child with ``memory.max`` (and ``memory.swap.max`` 0),
              where this process may create one with the memory controller;
``cgroup1``   a child of the cgroup v1 memory hierarchy with
              ``memory.limit_in_bytes`` (and the swap limit where present);
``systemd``   ``systemd-run --scope -p MemoryMax=...`` where systemd runs the
              machine (the usual Linux server or desktop, as root or with a
              user manager);
``watchdog``  everywhere else: the supervisor adds up the resident memory of
              the worker's processes several times a second and kills the
              worker past the limit, with ``RLIMIT_DATA`` (private writable
              memory, which untouched library mappings do not count) per
              process as the backstop against a single huge allocation.

``COURSE_MEMORY_ENFORCEMENT`` (one of the names above) forces a choice; a
forced choice that cannot work here raises :class:`ConfinementUnavailable`.
With all four, a submission that fills more than its limit is stopped, and the
grader reports "ran out of memory" for the exercise that did it.

Uids
----
Running as root, every worker gets a uid of its own (RLIMIT_NPROC and file
ownership are per uid).  :class:`UidLease` hands them out from a range with a
lock file per uid, so that no two live workers on the machine share one, even
across grading processes (two instructors, or ``autograde`` beside ``check``).
The kernel drops the lock when its holder dies, so a crashed grader leaks none.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import random
import shutil
import signal
import time
from pathlib import Path

from .errors import UserError

MIB = 2**20
BACKENDS = ("cgroup2", "cgroup1", "systemd", "watchdog")
ENV_VAR = "COURSE_MEMORY_ENFORCEMENT"


class ConfinementUnavailable(UserError, RuntimeError):
    """Memory limits cannot be enforced on this machine; the message says what to change."""


# ---------------------------------------------------------------------------
# cgroups
# ---------------------------------------------------------------------------


def _own_cgroups() -> dict[str, str]:
    """controller (or "" for cgroup v2) -> this process's cgroup path."""
    out = {}
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in ctrls.split(",") if ctrls else [""]:
                out[c] = path
    except (OSError, ValueError):
        pass
    return out


def _mounts(fstype: str) -> list[tuple[str, str]]:
    """(mount point, super options) of every mount of ``fstype``."""
    out = []
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] == fstype:
                out.append((fields[4], rfields[-1] if len(rfields) > 2 else ""))
    except OSError:
        pass
    return out


class Cgroup:
    """One worker's cgroup directory; the child process joins it before exec."""

    def __init__(self, path: Path, procs_file: str, oom_file: str, oom_key: str):
        self.path, self.procs_file, self.oom_file, self.oom_key = path, procs_file, oom_file, oom_key

    def join(self) -> None:  # runs in the child between fork and exec
        with open(self.path / self.procs_file, "w") as f:
            f.write(str(os.getpid()))

    def oom_killed(self) -> bool:
        try:
            for line in (self.path / self.oom_file).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == self.oom_key and int(value) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def remove(self) -> None:
        for _ in range(50):
            try:
                procs = (self.path / self.procs_file).read_text().split()
            except OSError:
                return
            for pid in procs:  # stragglers (bwrap's pid namespace normally takes them)
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


class _CgroupBase:
    name = ""
    limit_file = ""
    swap_file = ""
    procs_file = "cgroup.procs"
    oom_file = ""
    oom_key = "oom_kill"

    def __init__(self, parent: Path):
        self.parent = parent  # a folder this process owns, for its workers' cgroups

    def _write(self, path: Path, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)

    def create(self, tag: str, limit_mb: int) -> Cgroup:
        path = self.parent / tag
        try:
            path.mkdir()
        except FileExistsError:
            Cgroup(path, self.procs_file, self.oom_file, self.oom_key).remove()
            path.mkdir()
        self._write(path / self.limit_file, str(limit_mb * MIB))
        if self.swap_file and (path / self.swap_file).exists():
            try:
                self._write(path / self.swap_file, self._swap_value(limit_mb))
            except OSError:
                pass  # no swap accounting on this kernel: nothing to limit
        return Cgroup(path, self.procs_file, self.oom_file, self.oom_key)

    def _swap_value(self, limit_mb: int) -> str:
        return "0"

    def probe(self) -> None:
        """Create, limit, join (with a throwaway child) and remove one cgroup, or raise OSError."""
        import subprocess
        import sys

        cg = self.create(f"probe-{os.getpid()}", 64)
        try:
            subprocess.run([sys.executable, "-c", "pass"], preexec_fn=cg.join, check=True,
                           capture_output=True, timeout=60)
        except subprocess.CalledProcessError as exc:
            raise OSError(f"cannot place a process in a cgroup: {exc.stderr[-300:]!r}") from None
        finally:
            cg.remove()

    def close(self) -> None:
        try:
            os.rmdir(self.parent)
        except OSError:
            pass


class CgroupV2(_CgroupBase):
    name = "cgroup2"
    limit_file = "memory.max"
    swap_file = "memory.swap.max"
    oom_file = "memory.events"

    @classmethod
    def find(cls) -> CgroupV2:
        mounts = _mounts("cgroup2")
        own = _own_cgroups().get("")
        if not mounts or own is None:
            raise OSError("no cgroup v2 hierarchy")
        base = Path(mounts[0][0]) / own.lstrip("/")
        if "memory" not in (base / "cgroup.controllers").read_text().split():
            raise OSError(f"the memory controller is not available in {base}")
        if "memory" not in (base / "cgroup.subtree_control").read_text().split():
            # Allowed only where this cgroup holds no process of its own (the root, or a
            # delegated cgroup); elsewhere the kernel says EBUSY and we look further.
            with open(base / "cgroup.subtree_control", "w") as f:
                f.write("+memory")
        parent = base / f"course-grader-{os.getpid()}"
        parent.mkdir(exist_ok=True)
        self = cls(parent)
        if "memory" not in (parent / "cgroup.controllers").read_text().split():
            self.close()
            raise OSError("the memory controller is not delegated below " + str(base))
        # Children of `parent` need the controller enabled in it too (it holds no process).
        with open(parent / "cgroup.subtree_control", "w") as f:
            f.write("+memory")
        return self


class CgroupV1(_CgroupBase):
    name = "cgroup1"
    limit_file = "memory.limit_in_bytes"
    swap_file = "memory.memsw.limit_in_bytes"
    oom_file = "memory.oom_control"

    def _swap_value(self, limit_mb: int) -> str:
        return str(limit_mb * MIB)  # memory + swap = memory: no swap

    @classmethod
    def find(cls) -> CgroupV1:
        mounts = [m for m, opts in _mounts("cgroup") if "memory" in opts.split(",")]
        own = _own_cgroups().get("memory")
        if not mounts or own is None:
            raise OSError("no cgroup v1 memory hierarchy")
        base = Path(mounts[0]) / own.lstrip("/")
        if not (base / "memory.limit_in_bytes").exists():
            raise OSError(f"{base} has no memory controller files")
        parent = base / f"course-grader-{os.getpid()}"
        parent.mkdir(exist_ok=True)
        return cls(parent)


# ---------------------------------------------------------------------------
# The enforcers: one per grading process
# ---------------------------------------------------------------------------


class Enforcement:
    """What one worker needs: a hook for the child, an argv prefix, a poll and a verdict."""

    def __init__(self, limit_mb: int):
        self.limit_mb = limit_mb
        self.exceeded = False  # set by poll() (watchdog) or on close (cgroup OOM kill)

    def join(self) -> None:
        """Runs in the child between fork and exec."""

    def argv_prefix(self) -> list[str]:
        return []

    def rlimit_data_mb(self) -> int | None:
        return None

    def poll(self, pid: int) -> bool:
        """True when the worker is over its limit (it is then killed by the caller)."""
        return False

    def finish(self) -> None:
        """After the worker is dead: record an OOM kill, release resources."""


class CgroupEnforcement(Enforcement):
    def __init__(self, limit_mb: int, cg: Cgroup):
        super().__init__(limit_mb)
        self.cg = cg

    def join(self) -> None:
        self.cg.join()

    def finish(self) -> None:
        self.exceeded = self.exceeded or self.cg.oom_killed()
        self.cg.remove()


def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class WatchdogEnforcement(Enforcement):
    EVERY_S = 0.1

    def __init__(self, limit_mb: int):
        super().__init__(limit_mb)
        self._next = 0.0
        self.peak = 0

    def rlimit_data_mb(self) -> int | None:
        return self.limit_mb

    def poll(self, pid: int) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self.EVERY_S
        rss = _tree_rss(pid)
        self.peak = max(self.peak, rss)
        if rss > self.limit_mb * MIB:
            self.exceeded = True
        return self.exceeded


class SystemdEnforcement(Enforcement):
    def __init__(self, limit_mb: int, exe: str, user: bool):
        super().__init__(limit_mb)
        self.exe, self.user = exe, user

    def argv_prefix(self) -> list[str]:
        return [self.exe, *(["--user"] if self.user else []), "--scope", "--quiet", "--collect",
                "-p", f"MemoryMax={self.limit_mb * MIB}", "-p", "MemorySwapMax=0", "--"]


class MemoryEnforcer:
    """Chosen once per grading process; ``start(limit_mb, tag)`` confines one worker."""

    def __init__(self, backend: str, cgroups: _CgroupBase | None = None, systemd: tuple[str, bool] | None = None):
        self.backend, self._cgroups, self._systemd = backend, cgroups, systemd
        self._counter = itertools.count()

    def start(self, limit_mb: int) -> Enforcement:
        if self._cgroups is not None:
            tag = f"w{next(self._counter)}"
            try:
                return CgroupEnforcement(limit_mb, self._cgroups.create(tag, limit_mb))
            except OSError as exc:
                raise ConfinementUnavailable(f"cannot create a cgroup for a worker: {exc}") from exc
        if self._systemd is not None:
            return SystemdEnforcement(limit_mb, *self._systemd)
        return WatchdogEnforcement(limit_mb)

    def describe(self) -> str:
        return {"cgroup2": "cgroup v2 memory.max per worker",
                "cgroup1": "cgroup v1 memory.limit_in_bytes per worker",
                "systemd": "a systemd scope with MemoryMax per worker",
                "watchdog": "resident-memory watchdog plus RLIMIT_DATA"}[self.backend]

    def close(self) -> None:
        if self._cgroups is not None:
            self._cgroups.close()


def _systemd() -> tuple[str, bool] | None:
    exe = shutil.which("systemd-run")
    if not exe:
        return None
    import subprocess

    user = os.geteuid() != 0
    if not user and not os.path.isdir("/run/systemd/system"):
        return None
    probe = subprocess.run([exe, *(["--user"] if user else []), "--scope", "--quiet", "--collect",
                            "-p", "MemoryMax=64M", "--", "true"], capture_output=True, timeout=30)
    return (exe, user) if probe.returncode == 0 else None


_enforcer: MemoryEnforcer | None = None
_enforcer_pid: int | None = None


def memory_enforcer(force: str | None = None) -> MemoryEnforcer:
    """The memory enforcer of this process (picked on first use; see the module docstring)."""
    global _enforcer, _enforcer_pid
    choice = (force or os.environ.get(ENV_VAR, "") or "auto").strip().lower()
    if _enforcer is not None and _enforcer_pid == os.getpid() and choice in ("auto", _enforcer.backend):
        return _enforcer
    if choice not in ("auto", *BACKENDS):
        raise ConfinementUnavailable(f"{ENV_VAR}={choice!r} is not known; choose auto or one of "
                                     f"{', '.join(BACKENDS)}")
    reasons = []
    enforcer = None
    for name in BACKENDS if choice == "auto" else (choice,):
        try:
            if name in ("cgroup2", "cgroup1"):
                cg = (CgroupV2 if name == "cgroup2" else CgroupV1).find()
                try:
                    cg.probe()
                except OSError:
                    cg.close()
                    raise
                enforcer = MemoryEnforcer(name, cgroups=cg)
            elif name == "systemd":
                sd = _systemd()
                if sd is None:
                    raise OSError("systemd-run cannot start a scope here")
                enforcer = MemoryEnforcer(name, systemd=sd)
            else:
                import psutil  # noqa: F401 (the watchdog reads resident memory with it)

                enforcer = MemoryEnforcer(name)
            break
        except (OSError, ImportError) as exc:
            if exc.__class__ is OSError and getattr(exc, "errno", None) == errno.EBUSY:
                reasons.append(f"{name}: the cgroup holds processes and cannot delegate memory")
            else:
                reasons.append(f"{name}: {exc}")
    if enforcer is None:
        raise ConfinementUnavailable(
            f"cannot enforce memory limits with {choice}: {'; '.join(reasons)}. "
            f"Unset {ENV_VAR} (or set it to watchdog) to use the resident-memory watchdog.")
    if _enforcer is not None and _enforcer_pid == os.getpid():
        _enforcer.close()
    _enforcer, _enforcer_pid = enforcer, os.getpid()
    import atexit

    atexit.register(enforcer.close)
    return enforcer


# ---------------------------------------------------------------------------
# Uids
# ---------------------------------------------------------------------------

UID_FIRST, UID_COUNT = 200_000, 800_000
LOCK_DIRS = ("/run/course-grader/uids", "/tmp/course-grader-uids")


def _lock_dir() -> Path:
    for d in LOCK_DIRS:
        p = Path(d)
        try:
            p.mkdir(parents=True, exist_ok=True, mode=0o700)
            if p.stat().st_uid != os.geteuid():
                continue  # someone else's folder: never trust it
            os.chmod(p, 0o700)
            return p
        except OSError:
            continue
    raise ConfinementUnavailable("no folder for the sandbox uid locks: make /run writable for root")


class UidLease:
    """A uid no other live worker on this machine holds, until :meth:`release`."""

    _fd: int | None = None

    def __init__(self):
        import pwd

        folder = _lock_dir()
        start = random.randrange(UID_COUNT)
        for i in range(UID_COUNT):
            uid = UID_FIRST + (start + i) % UID_COUNT
            try:
                pwd.getpwuid(uid)
                continue  # a real account: not ours to use
            except KeyError:
                pass
            path = folder / str(uid)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino != os.stat(path, follow_symlinks=False).st_ino:
                    raise OSError("lock file replaced")  # its holder removed it meanwhile
            except OSError:
                os.close(fd)
                continue
            self.uid, self._fd, self._path = uid, fd, path
            return
        raise ConfinementUnavailable("every sandbox uid is in use")

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.unlink(self._path)  # still holding the lock: nobody else has this file
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        try:
            self.release()
        except Exception:
            pass
