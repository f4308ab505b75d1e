"""The reference solutions, loaded from the instructor's source notebooks.

There is exactly one copy of each reference solution: the answer cell in
``solutions/<assignment>/*.ipynb``.  This module executes a notebook's setup
and answer cells (never its demos) in a fresh namespace and hands out the
defined objects::

    from grader.reference import load_reference
    predict_labels = load_reference("01_knn", "predict_labels")
"""

from __future__ import annotations

import ast
import threading
import types
from typing import Any

from course_utils.rules import AST_LOCK, parse_cell

from .errors import UnknownName
from .notebook import source_notebooks

_cache: dict[str, types.ModuleType] = {}
_lock = threading.Lock()


def reference_module(assignment: str) -> types.ModuleType:
    """A module holding every object defined by the assignment's answer cells."""
    with _lock:
        if assignment in _cache:
            return _cache[assignment]
        mod = types.ModuleType(f"reference_{assignment}")
        mod.__dict__["__course_assignment__"] = assignment
        for src in source_notebooks(assignment):
            for i, code in enumerate(src.setup + list(src.solutions.values())):
                tree = parse_cell(code)
                if tree is None:
                    raise SyntaxError(f"cell {i} of {src.path} cannot be parsed")
                with AST_LOCK:
                    code_obj = compile(tree, f"<{src.path.name} cell {i}>", "exec")
                exec(code_obj, mod.__dict__)
        _cache[assignment] = mod
        return mod


def load_reference(assignment: str, name: str) -> Any:
    """The reference implementation of ``name`` (a graded function or class)."""
    mod = reference_module(assignment)
    try:
        return getattr(mod, name)
    except AttributeError:
        defined = sorted(k for k, v in vars(mod).items()
                         if callable(v) and getattr(v, "__module__", None) in (None, "__main__", mod.__name__)
                         and not k.startswith("_"))
        raise UnknownName(f"{assignment} defines no {name!r}; its answer cells define: "
                       f"{', '.join(defined) or 'nothing'}") from None


def reference_source(assignment: str, name: str) -> str:
    """The answer cell (source) that defines ``name`` in the assignment's source notebooks.

    The grader sends it to a worker grading an exercise that ``uses`` ``name``, so
    that the student's function under test calls the reference version."""
    found = None
    for src in source_notebooks(assignment):
        for code in src.solutions.values():
            tree = parse_cell(code)
            if tree is None:
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                    found = code  # later definitions win, as when the notebook runs
    if found is None:
        raise KeyError(f"{assignment}: no answer cell defines {name!r} (named in an exercise's uses=); "
                       "fix the name in the spec")
    return found
