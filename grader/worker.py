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

import json
import os
import sys
import traceback
from pathlib import Path

# Keep BLAS single-threaded: the grader runs many workers side by side.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


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
    progress = job_path / "progress"

    def say(state: str) -> None:
        # The grader watches this file: it times each exercise from here, and
        # when the process dies it knows which cell or exercise was running.
        progress.write_text(state)

    sys.stdout, sys.stderr = _Capped(sys.stdout), _Capped(sys.stderr)
    ns: dict = {"__name__": "__main__"}
    shell = _Shell(ns)
    ns["get_ipython"] = lambda: shell
    cell_errors = []
    names = job.get("cell_names") or []
    setup_ns: dict = {}
    n_setup = len(job["setup"])
    for i, src in enumerate(job["setup"] + job["cells"]):
        if i == n_setup:
            setup_ns = dict(ns)  # what the reference cells of `uses` run on: the setup cells' imports
        label = names[i] if i < len(names) else f"cell {i}"
        say(f"cell {i}")
        try:
            code = compile(_transform(src), f"<{label}>", "exec")
            exec(code, ns)
        except BaseException as exc:  # SystemExit from quit() included
            cell_errors.append(_error_text(exc))
    if not setup_ns:
        setup_ns = dict(ns)
    (job_path / "cells.json").write_text(json.dumps({"errors": cell_errors[:20]}))

    missing = object()
    for k, ex in enumerate(job["exercises"]):
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
            setup_error = _error_text(exc)
        for i in range(ex["n_cases"]):
            out_file = job_path / f"out_{k}_{i}.npz"
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
                inputs = wire.read(job_path / f"case_{k}_{i}.npz")
                value = drivers.run(ex["driver"], obj, inputs, ctx)
                try:
                    wire.write(out_file, {"ok": True, "value": value})
                except wire.WireError as exc:
                    wire.write(out_file, {"ok": False,
                                          "error": f"returned a value the grader cannot read: {exc}"})
            except BaseException as exc:
                wire.write(out_file, {"ok": False, "error": _error_text(exc)})
        for u, v in saved.items():  # the student's own versions again, for the next exercises
            if v is missing:
                ns.pop(u, None)
            else:
                ns[u] = v
    say("finished")
    sys.stdout.flush()
    sys.stderr.flush()
    return 0


if __name__ == "__main__":
    # os._exit: skip interpreter teardown, which student objects could hook.
    code = main(sys.argv[1])
    os._exit(code)
