"""Static rules on a student's source: "no Python loops", "no np.linalg.norm".

Checked on the source text (the AST), in the grading process, never by
running the student's code, so they cannot be switched off from inside it.
A rule covers the graded function and every top-level helper it reaches by
name, so moving a loop into a helper does not get around it.  A rule with a
``target`` covers that one function or method only (``"loss"``,
``"LinearSVM.loss"``, or a method of the graded class), again with the helpers
and the other methods of the same class (``self.helper()``) it reaches: "no
loops in ``LinearSVM.loss``" leaves the loop in ``LinearSVM.train`` alone.
``part`` names the part of an exercise a rule counts for when the grader gives
partial credit (see ``grader.spec.Exercise.parts``).
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Sequence
from dataclasses import dataclass

LOOP_NODES = (ast.For, ast.AsyncFor, ast.While, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)
DYNAMIC_CALLS = {"eval", "exec", "getattr", "__import__", "compile", "globals", "vars"}


class SourceIndex:
    """Top-level functions and classes defined in a list of cell sources."""

    def __init__(self, sources: Sequence[str]):
        self.defs: dict[str, ast.AST] = {}
        self.errors: list[str] = []
        for src in sources:
            tree = parse_cell(src)
            if tree is None:
                self.errors.append("a cell could not be parsed")
                continue
            for node in tree.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                    self.defs[node.name] = node  # later definitions win, as at run time
                elif isinstance(node, (ast.Import, ast.ImportFrom)):
                    # so that a rule following a function into the names it uses
                    # also sees `from scipy.spatial.distance import cdist` at the top
                    for alias in node.names:
                        self.defs[(alias.asname or alias.name).split(".")[0]] = node
                elif isinstance(node, ast.Assign):
                    for tgt in node.targets:
                        if isinstance(tgt, ast.Name):
                            self.defs[tgt.id] = node

    def without(self, names) -> SourceIndex:
        """The same index without the definitions of ``names`` (helpers graded elsewhere)."""
        out = SourceIndex([])
        out.defs = {k: v for k, v in self.defs.items() if k not in set(names)}
        out.errors = list(self.errors)
        return out

    @staticmethod
    def _method(cls: ast.AST, name: str) -> ast.AST | None:
        for node in getattr(cls, "body", []):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
                return node
        return None

    def node(self, name: str) -> ast.AST | None:
        """The definition of ``name``: a top-level name, or ``"Class.method"``."""
        if "." in name:
            cls, _, meth = name.partition(".")
            c = self.defs.get(cls)
            return self._method(c, meth) if isinstance(c, ast.ClassDef) else None
        return self.defs.get(name)

    def resolve(self, name: str, target: str | None = None) -> str:
        """What a rule with ``target`` looks at when it checks the graded object ``name``:
        ``target`` as a method of the class ``name``, else ``target`` itself
        (a top-level function or ``"Class.method"``); ``name`` without a target."""
        if not target:
            return name
        if "." not in target and isinstance(self.defs.get(name), ast.ClassDef) \
                and (self._method(self.defs[name], target) is not None or target not in self.defs):
            return f"{name}.{target}"
        return target

    def closure(self, name: str) -> list[ast.AST]:
        """``name``'s definition and every top-level definition it reaches by name;
        for a method (``"Class.method"``), also the methods of the class it calls
        through ``self``."""
        seen: dict[str, ast.AST] = {}
        todo = [name]
        while todo:
            n = todo.pop()
            if n in seen:
                continue
            node = self.node(n)
            if node is None:
                continue
            seen[n] = node
            cls = n.partition(".")[0] if "." in n else None
            todo.extend(name for name in _free_names(node) if name in self.defs and name != cls)
            if cls:
                for sub in ast.walk(node):
                    if (isinstance(sub, ast.Attribute) and isinstance(sub.value, ast.Name)
                            and sub.value.id in ("self", "cls", cls)
                            and self._method(self.defs[cls], sub.attr) is not None):
                        todo.append(f"{cls}.{sub.attr}")
        return list(seen.values())


def _bound_in(fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda) -> set[str]:
    """Names local to a function: its parameters and every name it binds (assignments, loop
    targets, imports, nested definitions), less those it declares global or nonlocal."""
    a = fn.args
    params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
    bound, declared = {p.arg for p in params}, set()
    stack = [fn.body] if isinstance(fn, ast.Lambda) else list(fn.body)
    while stack:
        n = stack.pop()
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(n.name)  # a nested scope: its own locals stay its own
            continue
        if isinstance(n, ast.Lambda):
            continue
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            bound.add(n.id)
        elif isinstance(n, (ast.Global, ast.Nonlocal)):
            declared.update(n.names)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            bound.update((al.asname or al.name).split(".")[0] for al in n.names)
        stack.extend(ast.iter_child_nodes(n))
    return bound - declared


def _free_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads that are not local variables of the function reading them: the
    names a rule must follow to top-level definitions. A local ``out`` or ``x`` is not the
    notebook's global of that name."""
    found: set[str] = set()

    def visit(n: ast.AST, bound: frozenset) -> None:
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            # defaults, decorators and annotations are evaluated where the function is defined
            a = n.args
            outer = [*a.defaults, *(d for d in a.kw_defaults if d is not None)]
            outer += [p.annotation for p in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                      if p is not None and p.annotation is not None]
            if not isinstance(n, ast.Lambda):
                outer += [*n.decorator_list, *([n.returns] if n.returns else [])]
            for sub in outer:
                visit(sub, bound)
            inner = bound | _bound_in(n)
            for sub in [n.body] if isinstance(n, ast.Lambda) else n.body:
                visit(sub, inner)
            return
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id not in bound:
            found.add(n.id)
        for child in ast.iter_child_nodes(n):
            visit(child, bound)

    visit(node, frozenset())
    return found


# CPython 3.11's parser is not safe to call from several threads at once ("AST
# constructor recursion depth mismatch"); the grader parses from a thread pool.
AST_LOCK = threading.RLock()


def parse_cell(src: str) -> ast.Module | None:
    """Parse a notebook cell, turning IPython magics into plain Python first."""
    with AST_LOCK:
        try:
            return ast.parse(src)
        except SyntaxError:
            pass
        try:
            from IPython.core.inputtransformer2 import TransformerManager

            return ast.parse(TransformerManager().transform_cell(src))
        except Exception:
            return None


def _canon(name: str) -> str:
    for short, long in (("np.", "numpy."), ("F.", "torch.nn.functional."), ("nn.", "torch.nn.")):
        if name.startswith(short):
            return long + name[len(short):]
    return name


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def _missing(name: str) -> str:
    return f"could not find the definition of `{name}` in your answer cells"


@dataclass(frozen=True)
class NoLoops:
    """No Python-level loops (``for``, ``while``, comprehensions) in the function
    or in any helper of the student's that it calls."""

    what: str = "no Python loops"
    target: str | None = None
    part: str | None = None

    def check(self, index: SourceIndex, name: str) -> str | None:
        name = index.resolve(name, self.target)
        nodes = index.closure(name)
        if not nodes:
            return _missing(name)
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, LOOP_NODES):
                    kind = {ast.For: "a for loop", ast.While: "a while loop"}.get(
                        type(sub), "a comprehension")
                    owner = getattr(node, "name", name)
                    return (f"`{owner}` uses {kind} (line {sub.lineno} of its cell); "
                            "this exercise must be vectorised")
        return None


@dataclass(frozen=True)
class Forbid:
    """Forbid calls into the named functions or modules (dotted prefixes such as
    ``np.linalg.norm``, ``numpy.linalg.norm`` or ``scipy``), and the dynamic
    look-ups (``getattr``, ``eval``, ``__import__``...) that would hide them."""

    names: tuple[str, ...]
    what: str = ""
    target: str | None = None
    part: str | None = None

    def check(self, index: SourceIndex, name: str) -> str | None:
        name = index.resolve(name, self.target)
        nodes = index.closure(name)
        if not nodes:
            return _missing(name)
        # Match on the tail of the dotted name too, so `from numpy import linalg;
        # linalg.norm(...)` is caught as well as `np.linalg.norm(...)`.
        full = [_canon(n) for n in self.names]
        tails = {f.split(".", 1)[1] for f in full if f.count(".") >= 2}
        aliases: dict[str, str] = {}  # local name -> what it was imported as
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Import):
                    for a in sub.names:
                        if a.asname:
                            aliases[a.asname] = a.name
                elif isinstance(sub, ast.ImportFrom) and sub.module:
                    for a in sub.names:
                        aliases[a.asname or a.name] = f"{sub.module}.{a.name}"
        for node in nodes:
            for sub in ast.walk(node):
                hit = None
                if isinstance(sub, (ast.Attribute, ast.Name)):
                    d = _dotted(sub)
                    if d:
                        head, _, rest = d.partition(".")
                        if head in aliases:
                            d = aliases[head] + ("." + rest if rest else "")
                        d = _canon(d)
                        hit = next((f for f in full if d == f or d.startswith(f + ".")), None)
                        hit = hit or next((t for t in tails if d == t or d.endswith("." + t)), None)
                    if isinstance(sub, ast.Name) and sub.id in DYNAMIC_CALLS:
                        hit = sub.id
                elif isinstance(sub, (ast.Import, ast.ImportFrom)):
                    if isinstance(sub, ast.ImportFrom):
                        mods = [f"{sub.module}.{a.name}" for a in sub.names]
                    else:
                        mods = [a.name for a in sub.names]
                    hit = next((f for m in mods for f in full
                                if m == f or m.startswith(f + ".")), None)
                if hit:
                    return (f"`{getattr(node, 'name', name)}` uses `{hit}`, which this "
                            "exercise does not allow")
        return None


@dataclass(frozen=True)
class AtMostLoops:
    """At most ``limit`` Python loops (``for``, ``while``, comprehensions) in the
    function and the helpers it calls."""

    limit: int
    target: str | None = None
    part: str | None = None

    @property
    def what(self) -> str:
        return f"at most {self.limit} Python loop{'s' if self.limit > 1 else ''}"

    def check(self, index: SourceIndex, name: str) -> str | None:
        name = index.resolve(name, self.target)
        nodes = index.closure(name)
        if not nodes:
            return _missing(name)
        count = sum(isinstance(sub, LOOP_NODES) for node in nodes for sub in ast.walk(node))
        if count > self.limit:
            return (f"`{name}` (with the helpers it calls) has {count} Python loops or comprehensions; "
                    f"this exercise allows at most {self.limit}")
        return None


MATMUL_FUNCTIONS = ("torch.matmul", "torch.bmm", "torch.mm", "torch.einsum", "torch.tensordot",
                    "torch.baddbmm", "torch.addbmm", "torch.linalg", "torch.nn.functional.linear",
                    "numpy.matmul", "numpy.einsum", "numpy.dot", "numpy.tensordot")
MATMUL_METHODS = frozenset({"matmul", "bmm", "mm", "einsum", "tensordot", "baddbmm", "addbmm",
                            "addmm", "mv", "dot", "linalg", "linear", "__matmul__", "__rmatmul__"})


@dataclass(frozen=True)
class NoMatrixProducts:
    """No ``@`` operator and no matrix-product method (``A.matmul(B)``, ``A.bmm(B)``...)
    in the function or the helpers it calls; the function forms are caught by
    ``Forbid(MATMUL_FUNCTIONS)``."""

    what: str = "no @ operator or matrix-product methods"
    target: str | None = None
    part: str | None = None

    def check(self, index: SourceIndex, name: str) -> str | None:
        name = index.resolve(name, self.target)
        nodes = index.closure(name)
        if not nodes:
            return _missing(name)
        for node in nodes:
            owner = getattr(node, "name", name)
            for sub in ast.walk(node):
                if isinstance(sub, (ast.BinOp, ast.AugAssign)) and isinstance(sub.op, ast.MatMult):
                    return (f"`{owner}` uses the `@` operator (line {sub.lineno} of its cell); "
                            "build the product with broadcasting and .sum()")
                if isinstance(sub, ast.Attribute) and sub.attr in MATMUL_METHODS:
                    return (f"`{owner}` uses `.{sub.attr}` (line {sub.lineno} of its cell), a "
                            "matrix-product routine; build the product with broadcasting and .sum()")
        return None


@dataclass(frozen=True)
class UsesAutograd:
    """The gradient must come from autograd: the function (or a helper it calls)
    calls ``.backward()`` or ``torch.autograd.grad``."""

    what: str = "gradient computed by autograd"
    target: str | None = None
    part: str | None = None

    def check(self, index: SourceIndex, name: str) -> str | None:
        name = index.resolve(name, self.target)
        nodes = index.closure(name)
        if not nodes:
            return _missing(name)
        for node in nodes:
            for sub in ast.walk(node):
                if isinstance(sub, ast.Attribute) and sub.attr == "backward":
                    return None
                if (isinstance(sub, ast.Attribute) and sub.attr == "grad"
                        and isinstance(sub.value, ast.Attribute) and sub.value.attr == "autograd"):
                    return None
        return (f"`{name}` never calls .backward() (or torch.autograd.grad); this exercise asks "
                "for the gradient from autograd, not a hand-derived formula")
