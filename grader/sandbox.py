"""Where student code runs: a pluggable sandbox around the worker process.

Every sandbox turns the worker's command line into one that runs confined, and
is combined with the resource limits of :class:`Limits` (set with
``setrlimit`` in the child before it starts).  Available sandboxes:

``bwrap``   bubblewrap (the sandbox behind Flatpak): new user, pid, network,
            IPC and mount namespaces, read-only system, only the job folder
            writable, a private ``/tmp``, no access to the course's
            solutions, the grader's outputs or other submissions. The default.
``docker`` / ``podman``
            a container per exercise (``--network none``, read-only root,
            memory and pid limits); for grading servers with a container
            engine. Set the image with ``COURSE_GRADER_IMAGE``.
``none``    no confinement at all; only for trusted code (the instructor's own
            tests).  It must be asked for by name and prints a warning.

``auto`` picks bwrap and fails loudly, never silently unsandboxed, where it
cannot run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import warnings
from dataclasses import dataclass
from pathlib import Path

from .errors import BadArgument, UserError


class SandboxUnavailable(UserError, RuntimeError):
    """The chosen sandbox cannot run here; the message says how to install or allow it."""


@dataclass
class Limits:
    """Hard limits for one exercise's worker process (tune with ``--limit KEY=VALUE``)."""

    wall_s: float = 60.0          # wall-clock seconds for one exercise
    cpu_s: float = 60.0           # CPU seconds (RLIMIT_CPU)
    memory_mb: int = 3072         # memory really used (resident), enforced by grader.confine
    nproc: int = 64               # processes/threads of the sandbox user (RLIMIT_NPROC)
    file_mb: int = 256            # largest file the worker may write (RLIMIT_FSIZE)
    open_files: int = 256         # RLIMIT_NOFILE
    output_kb: int = 256          # stdout/stderr kept for the log
    threads: int = 1              # BLAS/OpenMP/torch threads of one worker
    submission_wall_s: float = 600.0  # all exercises of one submission together

    @classmethod
    def parse(cls, items: list[str] | None) -> Limits:
        lim = cls()
        for item in items or []:
            key, _, value = item.partition("=")
            key = key.strip().replace("-", "_")
            if not hasattr(lim, key) or not value:
                raise BadArgument(f"unknown limit {item!r}; use KEY=VALUE with KEY one of "
                                 f"{', '.join(lim.__dataclass_fields__)}")
            try:
                setattr(lim, key, type(getattr(lim, key))(value))
            except ValueError:
                raise BadArgument(f"limit {key} needs a number, not {value!r} (e.g. --limit {key}="
                                  f"{getattr(lim, key)})") from None
        return lim

    def preexec(self, drop_privileges: bool = False, memory=None):
        """A function for ``Popen(preexec_fn=...)`` that applies the rlimits.

        RLIMIT_NPROC counts processes per uid, so it is set only where the
        sandbox runs the worker as a uid of its own.  Memory is not an rlimit
        on the address space (the CUDA build of torch reserves far more than it
        uses): ``memory`` (a :class:`grader.confine.Enforcement`) puts the child
        in its cgroup, or asks for RLIMIT_DATA under the watchdog."""
        import resource

        data_mb = memory.rlimit_data_mb() if memory is not None else None

        def apply():
            def setr(which, value):
                value = int(value)
                resource.setrlimit(which, (value, value))

            if memory is not None:
                memory.join()
            setr(resource.RLIMIT_CPU, max(1, int(self.cpu_s)))
            if data_mb:
                setr(resource.RLIMIT_DATA, data_mb * 2**20)
            setr(resource.RLIMIT_FSIZE, self.file_mb * 2**20)
            setr(resource.RLIMIT_NOFILE, self.open_files)
            setr(resource.RLIMIT_CORE, 0)
            if self.nproc and drop_privileges and os.geteuid() == 0:
                setr(resource.RLIMIT_NPROC, self.nproc)

        return apply


class Sandbox:
    name = "base"
    #: whether the sandbox runs code as an unprivileged user (RLIMIT_NPROC needs it)
    drops_privileges = False
    #: whether each worker needs a uid of its own from grader.confine.UidLease
    gives_uids = False
    #: whether the sandbox limits memory itself (containers) or needs grader.confine
    limits_memory = False

    def wrap(self, argv: list[str], jobdir: Path, limits: Limits, *, uid: int | None = None,
             gpu: bool = False) -> list[str]:
        """The command line that runs ``argv`` confined; ``uid`` is the worker's own uid
        (root only), ``gpu`` exposes the NVIDIA devices."""
        raise NotImplementedError

    def python(self) -> str:
        return sys.executable


class NoSandbox(Sandbox):
    name = "none"

    def __init__(self):
        warnings.warn("grading WITHOUT a sandbox: student code runs with your privileges. "
                      "Use this only for trusted notebooks.", RuntimeWarning, stacklevel=2)

    def wrap(self, argv, jobdir, limits, *, uid=None, gpu=False):
        return argv


def nvidia_paths() -> tuple[list[str], list[str]]:
    """(device nodes, read-only folders) a CUDA program needs: /dev/nvidia*, and what the
    driver reads under /proc and /sys."""
    import glob

    devices = sorted(p for p in glob.glob("/dev/nvidia*") if not os.path.isdir(p))
    devices += sorted(glob.glob("/dev/nvidia-caps/*"))
    folders = [p for p in ("/proc/driver/nvidia", "/sys", "/run/nvidia-persistenced") if os.path.exists(p)]
    return devices, folders


def _python_roots() -> list[str]:
    """Folders the worker's interpreter and packages live in (mounted read-only)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]}
    real = {os.path.realpath(p) for p in roots}
    return sorted(real | roots)


class Bubblewrap(Sandbox):
    """bubblewrap: namespaces, read-only binds of the system and of Python, nothing else.

    The worker sees ``/usr``, ``/etc`` (for the dynamic loader), the Python
    installation and site-packages read-only, the job folder read-write at
    ``/job`` and an empty ``/tmp``.  The course repository, including
    ``solutions/`` and the grader's output folder, is not mounted; the
    ``grader`` package is visible only as the modules the worker needs (the
    worker, the wire format and the drivers package).
    """

    name = "bwrap"
    drops_privileges = True
    UID = 65534  # nobody

    def __init__(self, exe: str | None = None):
        self.exe = exe or shutil.which("bwrap")
        self.setpriv = shutil.which("setpriv")
        if not self.exe:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed. Install it (Debian/Ubuntu: "
                "`apt-get install bubblewrap`), choose another sandbox with --sandbox docker, "
                "or, for trusted notebooks only, --sandbox none.")
        probe = subprocess.run([self.exe, "--unshare-all", "--ro-bind", "/", "/", "true"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            raise SandboxUnavailable(
                f"bubblewrap cannot create namespaces here ({probe.stderr.strip()}). "
                "Run the grader as root, enable unprivileged user namespaces "
                "(sysctl kernel.unprivileged_userns_clone=1), or use --sandbox docker.")

    def _identity(self, uid: int | None) -> tuple[list[str], list[str]]:
        """(bwrap options, command prefix) that make the worker an unprivileged user.

        As root, bwrap sets up the mounts with root's rights (no user
        namespace), then ``setpriv`` becomes a fresh uid for this worker alone
        with every capability dropped: a real unprivileged user, to which the
        kernel applies RLIMIT_NPROC.  Otherwise bwrap uses a user namespace and
        maps the caller's uid to ``nobody``.
        """
        if os.geteuid() == 0 and self.setpriv and uid is not None:
            uid = str(uid)
            opts = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
                    "--unshare-cgroup-try"]
            prefix = [self.setpriv, "--reuid", uid, "--regid", uid, "--clear-groups",
                      "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
            return opts, prefix
        return ["--unshare-all", "--uid", str(self.UID), "--gid", str(self.UID), "--cap-drop", "ALL"], []

    @property
    def gives_uids(self) -> bool:
        return os.geteuid() == 0 and bool(self.setpriv)

    def wrap(self, argv, jobdir, limits, *, uid=None, gpu=False):
        opts, prefix = self._identity(uid)
        args = [self.exe, *opts, "--die-with-parent", "--new-session", "--hostname", "grader",
                "--clearenv", "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "HOME", "/job",
                "--setenv", "MPLBACKEND", "Agg",
                "--setenv", "PYTHONHASHSEED", "0", "--setenv", "PYTHONDONTWRITEBYTECODE", "1",
                "--setenv", "MPLCONFIGDIR", "/tmp"]
        for k, v in worker_env(limits).items():
            args += ["--setenv", k, v]
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        if gpu:
            devices, folders = nvidia_paths()
            for d in devices:
                args += ["--dev-bind", d, d]
            for d in folders:
                if d.startswith("/proc/"):
                    continue  # the new /proc shows the driver's files already
                args += ["--ro-bind", d, d]
        made: set[str] = {"/"}

        def parents(path: str) -> list[str]:
            # bwrap would create missing mount points 0700, unreadable once the
            # worker is an ordinary user: create them 0755 first.
            out = []
            parts = Path(path).parts
            for i in range(2, len(parts)):
                d = str(Path(*parts[:i]))
                if d not in made:
                    made.add(d)
                    out += ["--perms", "0755", "--dir", d]
            return out

        for d in ("/usr", "/etc", "/lib", "/lib64", "/bin", "/sbin"):
            if os.path.exists(d):
                args += ["--ro-bind", d, d] if not os.path.islink(d) else ["--symlink", os.readlink(d), d]
        for root in _python_roots():
            if os.path.isdir(root) and not root.startswith("/usr/"):
                args += parents(root) + ["--ro-bind", root, root]
        # The project's own packages: course_utils whole, grader only as the
        # worker's modules (specs, reference loading and the rest stay out of
        # reach even where the package sits inside a mounted site-packages).
        pkg = str(Path(__file__).resolve().parent)
        args += parents(pkg) + ["--perms", "0755", "--tmpfs", pkg]
        made.add(pkg)
        for src in package_files():
            args += parents(str(src)) + ["--ro-bind", str(src), str(src)]
        args += ["--bind", str(jobdir), "/job", "--chdir", "/job"]
        # The worker reads its job from /job.
        return args + ["--"] + prefix + [a if a != str(jobdir) else "/job" for a in argv]


class Container(Sandbox):
    """Docker or Podman: one short-lived container per exercise."""

    drops_privileges = True
    limits_memory = True

    def __init__(self, engine: str):
        self.name = engine
        self.exe = shutil.which(engine)
        self.image = os.environ.get("COURSE_GRADER_IMAGE", "")
        if not self.exe:
            raise SandboxUnavailable(f"{engine} is not installed; use --sandbox bwrap")
        if not self.image:
            raise SandboxUnavailable(
                f"set COURSE_GRADER_IMAGE to an image with this course installed (the repository's "
                f"Dockerfile: docker build -t course-grader .) to grade with {engine}")
        probe = subprocess.run([self.exe, "info"], capture_output=True, text=True)
        if probe.returncode != 0:
            raise SandboxUnavailable(f"{engine} cannot reach its engine: {probe.stderr.strip()[:300]}")

    def python(self) -> str:
        return "python"

    def wrap(self, argv, jobdir, limits, *, uid=None, gpu=False):
        env = []
        for k, v in worker_env(limits).items():
            env += ["-e", f"{k}={v}"]
        # --memory is a cgroup limit on memory really used; equal --memory-swap means no swap.
        gpus = (["--gpus", "all"] if self.name == "docker" else ["--device", "nvidia.com/gpu=all"]) if gpu else []
        return [self.exe, "run", "--rm", "--network", "none", "--read-only",
                "--user", "65534:65534", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "--memory", f"{limits.memory_mb}m", "--memory-swap", f"{limits.memory_mb}m",
                "--pids-limit", str(limits.nproc), *gpus,
                "--cpus", str(max(1, limits.threads)), "--tmpfs", "/tmp", "-e", "MPLBACKEND=Agg",
                "-e", "HOME=/job", *env,
                "-v", f"{jobdir}:/job", "-w", "/job", self.image] + \
               ["python"] + [a if a != str(jobdir) else "/job" for a in argv[1:]]


def get_sandbox(name: str = "auto") -> Sandbox:
    name = (name or "auto").lower()
    if name in ("auto", "bwrap", "bubblewrap"):
        return Bubblewrap()
    if name in ("docker", "podman"):
        return Container(name)
    if name == "none":
        return NoSandbox()
    raise BadArgument(f"unknown sandbox {name!r}; choose auto, bwrap, docker, podman or none")


THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")


def worker_env(limits: Limits) -> dict[str, str]:
    """Thread counts for a worker: ``limits.threads`` (1 by default) for every pool, so that
    parallel workers do not oversubscribe the cores; passive OpenMP waiting, so idle pools
    do not spin."""
    n = str(max(1, int(limits.threads)))
    return {**{k: n for k in THREAD_VARS}, "OMP_WAIT_POLICY": "PASSIVE"}


def worker_argv(sandbox: Sandbox, jobdir: Path) -> list[str]:
    return [sandbox.python(), "-I", "-m", "grader.worker", str(jobdir)]


def package_files() -> list[Path]:
    """Files of this repository that the worker may see (read-only)."""
    here = Path(__file__).resolve().parent
    files = [here / "__init__.py", here / "worker.py", here / "wire.py",
             here / "drivers",  # the whole package: one module per topic (never the specs)
             here.parent / "course_utils"]
    return files


def keep_output_tail(path: Path, limit_kb: int) -> str:
    """The last ``limit_kb`` KiB of the worker's log; never through a link or a fifo the
    worker may have put in its place."""
    from .wire import WireError, read_regular

    try:
        return read_regular(path, limit_kb * 1024, tail=True).decode("utf-8", "replace")
    except (OSError, WireError):
        return ""

