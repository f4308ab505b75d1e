"""The untrusted side: runs a student's answer cells and one exercise's cases.

Invoked by the grader as ``python -I -m grader.worker JOBDIR`` inside the
sandbox.  ``JOBDIR/job.json`` says which cells to run and, for each exercise,
which functions (or classes) and driver to call, and the seed of every case;
``JOBDIR/case_<k>_<i>.npz`` hold the inputs of case i of exercise k.
``JOBDIR/uses.json``, when present, holds the reference answer cells of the
earlier functions some exercises call (``Exercise.uses``): the worker compiles
them and deletes the file before any student cell runs, and while such an
exercise is graded those names in the student's namespace are the reference
versions (then the student's own again).  For every case the worker writes
``JOBDIR/out_<k>_<i>.npz``: ``{"ok": True, "value": ...}`` or ``{"ok": False,
"error": "..."}``, and ``JOBDIR/progress`` always says what it is running.  It never sees expected values, and nothing it writes
is trusted beyond "these are the numbers the student's code produced".
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

# Keep BLAS single-threaded: the grader runs many workers side by side.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


# ----------------------------------------------------------------------------
# The worker's own machinery, out of the student's reach.
#
# Answer cells run in this process and may rebind anything they can import:
# ``np.savez = None``, ``json.dumps = ...``, ``builtins.open = ...``,
# ``pathlib.Path.write_text = ...``, ``sys.modules["grader.wire"] = ...``.
# That must cost the student nothing beyond what their code earns, so:
#
# - the functions of this module look names up in a private copy of the
#   builtins (set below, before any of them is defined);
# - files the worker writes itself (progress, cells.json, outputs) go through
#   ``os`` functions captured here, at import;
# - after the setup cells, :class:`_Machinery` keeps a private copy of the
#   namespace of every loaded module (and of the mutable classes they define)
#   and puts it back, with ``sys.modules``, before the worker reads cases or
#   writes outputs.  The student's functions then also run on the real numpy.
# ----------------------------------------------------------------------------

__builtins__ = dict(vars(builtins))  # noqa: A001  (this module's functions use this copy)

_os_open, _os_write, _os_close, _os_replace, _os_exit = os.open, os.write, os.close, os.replace, os._exit
_O_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
_json_dumps = json.dumps
_IMMUTABLE_TYPE = 1 << 8  # Py_TPFLAGS_IMMUTABLETYPE: a type whose attributes cannot be set
#: modules restored before every case (cheap); the rest (torch, ...) before every exercise
_BULKY = ("torch", "torchvision", "triton", "sympy", "matplotlib", "scipy", "sklearn", "IPython")


def _write_file(path: str, data: bytes, atomic: bool = True) -> None:
    """Write ``data`` with the ``os`` functions captured at import."""
    tmp = path + ".part" if atomic else path
    fd = _os_open(tmp, _O_WRITE, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[_os_write(fd, view):]
    finally:
        _os_close(fd)
    if atomic:
        _os_replace(tmp, path)


class _Machinery:
    """Private copies of module namespaces and class attributes, put back on demand."""

    def __init__(self):
        self.modules: list[tuple[bool, str, object, dict]] = []
        self.classes: list[tuple[bool, type, dict]] = []
        # What restore() needs, held here: answer cells can rebind this module's globals.
        self.sys_modules, self.module_type, self.bulky = sys.modules, type(sys), _BULKY
        self.class_dict = type.__dict__["__dict__"].__get__
        self.set_attr, self.del_attr = type.__setattr__, type.__delattr__

    def snapshot(self) -> None:
        """Save; best effort: under memory pressure what was saved is kept, and the
        worker goes on (the student's code then runs as it would have)."""
        try:
            self._snapshot()
        except BaseException:
            pass

    def _snapshot(self) -> None:
        for name, mod in list(self.sys_modules.items()):
            ns = getattr(mod, "__dict__", None)
            if isinstance(ns, dict):
                self.modules.append((name.split(".")[0] in self.bulky, name, mod, dict(ns)))
        with warnings.catch_warnings():  # some modules warn when their attributes are touched
            warnings.simplefilter("ignore")
            for bulky, name, _, saved in self.modules:
                for value in saved.values():
                    try:
                        if isinstance(value, type) and value.__module__ == name \
                                and not value.__flags__ & _IMMUTABLE_TYPE:
                            self.classes.append((bulky, value, dict(vars(value))))
                    except Exception:  # an attribute that cannot be inspected
                        continue

    def restore(self, everything: bool = True) -> None:
        """Put back every saved module namespace, ``sys.modules`` entry and class
        attribute, and drop names added since that shadow others (``everything``:
        also those of the bulky libraries, a few milliseconds more).  Never raises."""
        try:
            self._restore(everything)
        except BaseException:
            pass

    def _restore(self, everything: bool) -> None:
        missing, module_type, modules = object(), self.module_type, self.sys_modules
        for bulky, name, mod, saved in self.modules:
            if bulky and not everything:
                continue
            if modules.get(name, missing) is not mod:
                modules[name] = mod
            ns = mod.__dict__
            for key, value in saved.items():
                if ns.get(key, missing) is not value:
                    ns[key] = value
            if len(ns) != len(saved):
                for key in [k for k, v in ns.items() if k not in saved and type(v) is not module_type]:
                    del ns[key]  # e.g. ``numpy.lib.npyio.open = ...``, shadowing a builtin
        for bulky, cls, saved in self.classes:
            if bulky and not everything:
                continue
            current = self.class_dict(cls)
            try:
                for key, value in saved.items():
                    if current.get(key, missing) is not value:
                        self.set_attr(cls, key, value)
                if not bulky and len(current) != len(saved):
                    for key in [k for k in current if k not in saved]:
                        self.del_attr(cls, key)  # e.g. ``PosixPath.write_bytes = ...``
            except (TypeError, AttributeError):
                continue


_machinery = _Machinery()


def _warm_up(wire, sources: list[str]) -> None:
    """Run the machinery once before the snapshot, so that every module it imports
    lazily (zipfile, ...) is loaded, and saved, before an answer cell can rebind it;
    import torch too when the notebook's code uses it (it would anyway)."""
    try:
        if any("torch" in src for src in sources):
            import torch  # noqa: F401

        import numpy as np

        wire.loads(wire.dumps({"ok": True, "value": [np.zeros(2), np.float64(1.0), 1, "x", None]}))
        raise ValueError("warm-up")
    except BaseException as exc:  # MemoryError included: the worker goes on without it
        _describe(exc)

# ----------------------------------------------------------------------------


class _Capped:
    """A text stream that keeps only the first ``limit`` characters written to it:
    a student's prints never matter for the grade, and cannot fill the disk."""

    def __init__(self, stream, limit: int = 64 * 1024):
        self._stream, self._left = stream, limit

    def write(self, text):
        if self._left > 0:
            chunk = str(text)[: self._left]
            self._left -= len(chunk)
            self._stream.write(chunk)
        return len(text)

    def flush(self):
        self._stream.flush()

    def isatty(self):
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _Events:
    def register(self, *args, **kwargs):
        return None

    unregister = register


class _Shell:
    """Enough of ``get_ipython()`` for answer cells that use magics or hooks.

    Hooks a cell registers here change nothing: the worker does not decide
    scores, it only reports what the student's functions return.
    """

    def __init__(self, ns: dict):
        self.user_ns = ns
        self.ast_transformers: list = []
        self.input_transformers_cleanup: list = []
        self.input_transformers_post: list = []
        self.events = _Events()

    def __getattr__(self, name):
        return lambda *a, **k: None


def _transform(src: str) -> str:
    try:
        compile(src, "<cell>", "exec")
        return src
    except SyntaxError:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(src)


def _error_text(exc: BaseException, limit: int = 2000) -> str:
    """``TypeError: ... (in f, line 3 of answer cell f)``, from the student's frames only."""
    tb = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<")]
    where = ""
    if tb:
        f = tb[-1]
        where = f" (in {f.name}, line {f.lineno} of {f.filename.strip('<>')})"
    msg = f"{type(exc).__name__}: {exc}".rstrip(": ") + where
    return msg[:limit]


def _describe(exc: BaseException) -> str:
    """:func:`_error_text`, or a plain line when the exception resists being described."""
    try:
        return str(_error_text(exc))
    except BaseException:
        return "the code raised an exception that cannot be described"


def _write_output(wire, path: str, record: dict, _restore=_machinery.restore) -> None:
    """Write one case's record (call it after a restore); a value that cannot be
    sent becomes an error record.  ``_restore`` is bound here, at definition."""
    try:
        try:
            data = wire.dumps(record)
        except wire.WireError as exc:
            data = wire.dumps({"ok": False, "error": f"returned a value the grader cannot read: {exc}"})
        except BaseException as exc:  # a value whose methods raise while it is encoded
            _restore(everything=False)
            data = wire.dumps({"ok": False, "error": f"returned a value the grader cannot read: {_describe(exc)}"})
        _write_file(path, data)
    except BaseException:
        pass  # no output file: the grader scores the case "no result"


def _compile_uses(job_path: Path) -> dict[str, object]:
    """Compile the reference cells of ``uses.json`` and delete the file."""
    path = job_path / "uses.json"
    if not path.exists():
        return {}
    cells = json.loads(path.read_text())
    path.unlink()
    return {name: compile(_transform(src), f"<reference {name}>", "exec") for name, src in cells.items()}


def main(jobdir: str) -> int:
    job_path = Path(jobdir)
    job = json.loads((job_path / "job.json").read_text())
    # Import the wire format and the drivers before student code runs, so later
    # tampering with sys.modules cannot swap them for something else at import time.
    from grader import drivers, wire

    uses_code = _compile_uses(job_path)
    if job.get("gpu_memory_fraction"):
        # Workers share the GPU: each may allocate only its part of the memory.
        import torch

        if torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(float(job["gpu_memory_fraction"]))

    # Local names for the machinery: answer cells can rebind this module's globals
    # (it is ``sys.modules["__main__"]``), never a running function's locals.
    snapshot, restore, write_file, describe = _machinery.snapshot, _machinery.restore, _write_file, _describe
    write_output, dumps, run_driver, read_case = _write_output, _json_dumps, drivers.run, wire.read
    progress = str(job_path / "progress")

    def say(state: str, write_file=write_file) -> None:
        # The grader watches this file: it times each exercise from here, and
        # when the process dies it knows which cell or exercise was running.
        write_file(progress, state.encode())

    sys.stdout, sys.stderr = _Capped(sys.stdout), _Capped(sys.stderr)
    ns: dict = {"__name__": "__main__", "__builtins__": builtins}  # the real builtins, not this module's copy
    shell = _Shell(ns)
    ns["get_ipython"] = lambda: shell
    cell_errors = []
    names = job.get("cell_names") or []
    setup_ns: dict = {}
    n_setup = len(job["setup"])
    for i, src in enumerate(job["setup"] + job["cells"]):
        if i == n_setup:
            setup_ns = dict(ns)  # what the reference cells of `uses` run on: the setup cells' imports
            _warm_up(wire, job["setup"] + job["cells"])
            snapshot()  # after the instructor's setup, before any answer cell
        elif i > n_setup:
            restore(everything=False)
        label = names[i] if i < len(names) else f"cell {i}"
        say(f"cell {i}")
        try:
            code = compile(_transform(src), f"<{label}>", "exec")
            exec(code, ns)
        except BaseException as exc:  # SystemExit from quit() included
            restore(everything=False)
            cell_errors.append(describe(exc))
    if not setup_ns:
        setup_ns = dict(ns)
        _warm_up(wire, job["setup"])
        snapshot()
    restore()
    write_file(str(job_path / "cells.json"), dumps({"errors": cell_errors[:20]}).encode())

    missing = object()
    for k, ex in enumerate(job["exercises"]):
        restore()
        say(f"exercise {k}")
        names_k = ex["names"]
        saved = {}
        try:
            if ex.get("uses"):
                ref_ns = dict(setup_ns)
                for u in ex["uses"]:
                    exec(uses_code[u], ref_ns)
                saved = {u: ns.get(u, missing) for u in ex["uses"]}
                ns.update({u: ref_ns[u] for u in ex["uses"]})
            setup_error = None
        except BaseException as exc:
            restore(everything=False)
            setup_error = describe(exc)
        for i in range(ex["n_cases"]):
            out_file = str(job_path / f"out_{k}_{i}.npz")
            ctx = {"device": ex["device"], "dtype": ex["dtypes"][i], "seed": ex["seeds"][i],
                   "uses_torch": ex["uses_torch"], "outputs": ex.get("outputs"),
                   "uses": {u: ns[u] for u in ex.get("uses", []) if u in ns}}
            try:
                if setup_error:
                    raise RuntimeError(f"the grader could not set up the reference helpers: {setup_error}")
                absent = [n for n in names_k if n not in ns]
                if absent:
                    raise NameError(f"`{absent[0]}` is not defined: run the cell that defines it "
                                    "and keep its name as given")
                obj = ns[names_k[0]] if not ex["several"] else drivers.Objects({n: ns[n] for n in names_k})
                inputs = read_case(job_path / f"case_{k}_{i}.npz")
                value = run_driver(ex["driver"], obj, inputs, ctx)
                restore(everything=False)  # the student's call may have rebound numpy, json, ...
                write_output(wire, out_file, {"ok": True, "value": value})
            except BaseException as exc:
                restore(everything=False)
                write_output(wire, out_file, {"ok": False, "error": describe(exc)})
        for u, v in saved.items():  # the student's own versions again, for the next exercises
            if v is missing:
                ns.pop(u, None)
            else:
                ns[u] = v
    restore()
    say("finished")
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    return 0


if __name__ == "__main__":
    # _os_exit (os._exit, captured at import): skip interpreter teardown, which
    # student objects could hook.
    code = main(sys.argv[1])
    _os_exit(code)
