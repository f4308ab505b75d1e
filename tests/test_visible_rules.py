"""Every rule a hidden test applies is visible to the student.

For every exercise of every assignment (``grader.specs.exercises``), each static
rule of its spec (no loops, at most n loops, forbidden names, no matrix products,
gradient from autograd) and each threshold the spec states must

(a) be stated where the student reads the exercise: the answer cell's docstring
    or the markdown cell(s) just above the answer cell; and
(b) be checked by the visible part of the exercise's test cell (the code before
    ``### BEGIN HIDDEN TESTS``), with the matching self-check:
    ``check_no_loops(ex, f)``, ``check_at_most_loops(ex, f, n)``,
    ``check_not_using(ex, f, [names])`` or ``check_rule(ex, f, Rule(...))``.

Otherwise a student can pass every visible check and still lose the points to a
rule they were never told about.

When ``Exercise`` has a ``stated_requirements()`` method (human-readable
strings, one per rule and threshold), the strings that are not one of the rules
modelled here are checked too: the numbers and code names they contain must be
in the exercise's text, and their numbers in the visible check.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass

import nbformat
import pytest

import course_utils.checks as checks
import course_utils.rules as rules
from course_utils.rules import AtMostLoops, Forbid, NoLoops, NoMatrixProducts, UsesAutograd
from grader.notebook import nbgrader_meta
from grader.paths import assignments, solutions_dir
from grader.specs import exercises

HIDDEN_MARK = "### BEGIN HIDDEN TESTS"
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
# A sentence that states a prohibition uses one of these words.
PROHIBITION = re.compile(r"\b(?:no|not|nor|never|without|forbidden|allowed|may not|must not)\b", re.I)


# --- what the student reads ------------------------------------------------------------


@dataclass
class ExerciseText:
    """Where an exercise speaks to the student."""

    docstring: str  # of the graded function (or class) in the answer cell
    markdown: str  # the markdown cell(s) just above the answer cell
    visible: str  # the test cell's source before the hidden block

    @property
    def statement(self) -> str:
        return self.docstring + "\n\n" + self.markdown


def _defines(src: str, name: str) -> ast.AST | None:
    tree = rules.parse_cell(src)
    for node in getattr(tree, "body", []):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name == name:
            return node
    return None


def exercise_texts(aid: str) -> dict[str, ExerciseText]:
    """grade_id of every test cell -> the texts of its exercise, from the source notebooks."""
    out: dict[str, ExerciseText] = {}
    specs = exercises(aid)
    for path in sorted((solutions_dir() / aid).glob("*.ipynb")):
        cells = nbformat.read(str(path), as_version=4).cells
        tests = {nbgrader_meta(c).get("grade_id"): c for c in cells
                 if c.cell_type == "code" and nbgrader_meta(c).get("grade")}
        for gid, ex in specs.items():
            if gid not in tests:
                continue
            docstrings, markdown = [], []
            for name in _object_names(ex):  # an exercise may grade several names (forward, backward)
                answer = next(((i, node) for i, c in enumerate(cells)
                               if c.cell_type == "code" and nbgrader_meta(c).get("solution")
                               and (node := _defines(c.source, name)) is not None), None)
                assert answer is not None, f"{aid}/{path.name}: no answer cell defines {name}"
                i, node = answer
                above = []
                for c in reversed(cells[:i]):
                    if c.cell_type != "markdown":
                        break
                    above.insert(0, c.source)
                docstrings.append(ast.get_docstring(node) or "")
                markdown.extend(above)
            out[gid] = ExerciseText(docstring="\n\n".join(docstrings), markdown="\n\n".join(markdown),
                                    visible=tests[gid].source.split(HIDDEN_MARK)[0])
    return out


# --- how a rule is stated in words ---------------------------------------------------------


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.;!?])\s+|\n\s*\n|\n\s*[-*]\s+", text) if s.strip()]


def _spellings(name: str) -> set[str]:
    """``np.dot`` and ``numpy.dot`` are the same name (so are ``F.linear`` and
    ``torch.nn.functional.linear``)."""
    full = rules._canon(name)
    out = {name, full}
    for short, long in (("np.", "numpy."), ("F.", "torch.nn.functional."), ("nn.", "torch.nn.")):
        if full.startswith(long):
            out.add(short + full[len(long):])
    return out


def _mentions(text: str, name: str) -> bool:
    return any(re.search(rf"(?<![\w.]){re.escape(s)}(?!\w)", text) for s in _spellings(name))


def forbidden_name_stated(text: str, name: str) -> bool:
    """``name`` appears in a sentence that forbids something."""
    return any(PROHIBITION.search(s) and _mentions(s, name) for s in _sentences(text))


def no_loops_stated(text: str) -> bool:
    return bool(re.search(r"\b(?:no|without|not|never)\b(?:[\s`]+[\w-]+){0,3}?[\s`]+loops?\b", text, re.I))


def at_most_loops_stated(text: str, limit: int) -> bool:
    number = rf"(?:{limit}|{NUMBER_WORDS[limit]})" if limit < len(NUMBER_WORDS) else str(limit)
    return bool(re.search(rf"\bat most\s+{number}\b(?:\s+[\w-]+){{0,2}}?\s+loops?\b", text, re.I))


def matrix_products_stated(text: str) -> bool:
    return any(PROHIBITION.search(s) and "@" in s for s in _sentences(text)) and bool(
        re.search(r"method", text, re.I))


def autograd_stated(text: str) -> bool:
    return bool(re.search(r"backward\(\)|autograd", text))


# --- which rules the visible part checks ---------------------------------------------------


def _namespace(visible: str) -> dict:
    """Names a rule argument may use: the rules module, and what the cell imports."""
    ns = dict(vars(rules))
    tree = rules.parse_cell(visible)
    for node in ast.walk(tree) if tree else []:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            try:
                mod = importlib.import_module(node.module)
            except ImportError:
                continue
            for a in node.names:
                if hasattr(mod, a.name):
                    ns[a.asname or a.name] = getattr(mod, a.name)
    return ns


def _as_rule(fname: str, bound: inspect.BoundArguments, value: Callable[[ast.AST], object]):
    a = bound.arguments
    if fname == "check_no_loops":
        return NoLoops()
    if fname == "check_at_most_loops":
        return AtMostLoops(int(value(a["limit"])))
    if fname == "check_not_using":
        return Forbid(tuple(value(a["names"])))
    if fname == "check_rule":
        return value(a["rule"])
    return None


def visible_rules(visible: str, func_name: str) -> list:
    """The rules the visible self-checks apply to ``func_name``."""
    tree = rules.parse_cell(visible)
    assert tree is not None, "the visible part of the test cell does not parse"
    ns = _namespace(visible)

    def value(node: ast.AST):
        return eval(compile(ast.Expression(node), "<visible check>", "eval"), ns)  # trusted source

    found = []
    for call in ast.walk(tree):
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue
        fname = call.func.id
        if fname not in ("check_no_loops", "check_at_most_loops", "check_not_using", "check_rule"):
            continue
        try:
            bound = inspect.signature(getattr(checks, fname)).bind(*call.args, **{
                k.arg: k.value for k in call.keywords if k.arg})
        except TypeError:
            continue
        func = bound.arguments.get("func")
        if isinstance(func, ast.Name) and func.id == func_name:
            found.append(_as_rule(fname, bound, value))
    return found


# --- requirements: one per rule (one per forbidden name) and per stated threshold ---------------


@dataclass
class Requirement:
    describe: str  # what the student must be told, as the failure message says it
    stated: Callable[[str], bool]  # is it stated in this text?
    checked: Callable[[list], bool]  # do these visible rules check it?
    about: Callable[[str], bool]  # does this human-readable requirement string describe it?


def _same_type(rule):
    return lambda found: any(type(r) is type(rule) and r == rule for r in found)


def rule_requirements(rule) -> list[Requirement]:
    if isinstance(rule, NoLoops):
        return [Requirement("no Python loops", no_loops_stated,
                            lambda found: any(isinstance(r, NoLoops) for r in found),
                            lambda s: "loop" in s.lower())]
    if isinstance(rule, AtMostLoops):
        return [Requirement(f"at most {rule.limit} Python loop(s)",
                            lambda text: at_most_loops_stated(text, rule.limit),
                            lambda found: any(isinstance(r, AtMostLoops) and r.limit == rule.limit
                                              for r in found),
                            lambda s: "loop" in s.lower())]
    if isinstance(rule, Forbid):
        out = []
        for name in rule.names:
            canon = rules._canon(name)
            out.append(Requirement(
                f"no `{name}`",
                lambda text, name=name: forbidden_name_stated(text, name),
                lambda found, canon=canon: any(isinstance(r, Forbid) and canon in {rules._canon(n) for n in r.names}
                                               for r in found),
                lambda s, name=name: _mentions(s, name)))
        return out
    if isinstance(rule, NoMatrixProducts):
        return [Requirement("no `@` operator and no matrix-product methods", matrix_products_stated,
                            _same_type(rule), lambda s: "@" in s or "matrix" in s.lower())]
    if isinstance(rule, UsesAutograd):
        return [Requirement("the gradient must come from autograd (`backward()`)", autograd_stated,
                            _same_type(rule), lambda s: "autograd" in s.lower() or "backward" in s)]
    # A rule this test does not know yet: its own description must be in the text,
    # and the visible part must apply an equal rule through check_rule.
    what = getattr(rule, "what", "") or type(rule).__name__
    return [Requirement(what, lambda text: " ".join(what.lower().split()) in " ".join(text.lower().split()),
                        _same_type(rule), lambda s: s.strip().lower() == what.strip().lower())]


NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![\w.])", re.I)


def threshold_requirement(text: str) -> Requirement:
    """A requirement string from ``stated_requirements()`` that is none of the rules:
    its numbers and code names must be in the exercise's text, its numbers among the
    visible part's constants."""
    numbers = [float(n) for n in NUMBER.findall(text)]
    code = re.findall(r"`([^`]+)`", text)

    def stated(statement: str) -> bool:
        said = {float(n) for n in NUMBER.findall(statement.replace(",", "").replace("_", ""))}
        if not numbers and not code:
            return " ".join(text.lower().split()) in " ".join(statement.lower().split())
        return all(n in said for n in numbers) and all(c in statement for c in code)

    def checked(found, visible: str = "") -> bool:
        tree = rules.parse_cell(visible)
        consts = {float(n.value) for n in ast.walk(tree) if isinstance(n, ast.Constant)
                  and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)} if tree else set()
        return all(n in consts for n in numbers)

    return Requirement(text, stated, checked, lambda s: s == text)


def requirements(ex) -> list[Requirement]:
    reqs = [req for rule in ex.rules for req in rule_requirements(rule)]
    stated_requirements = getattr(ex, "stated_requirements", None)
    if callable(stated_requirements):
        for text in stated_requirements():
            if not any(req.about(text) for req in reqs):
                reqs.append(threshold_requirement(text))
    return reqs


def _object_names(ex) -> tuple[str, ...]:
    """The names an exercise grades: ``names=`` (several) or ``name=``."""
    return tuple(getattr(ex, "object_names", None) or (ex.name,))


def findings(ex, text: ExerciseText) -> list[str]:
    """What is missing, one line per requirement, naming the exercise. A rule of an
    exercise with several names covers each of them, so each must be checked visibly."""
    names = _object_names(ex)
    label = " / ".join(names)
    found_per_name = {name: visible_rules(text.visible, name) for name in names}
    out = []
    for req in requirements(ex):
        if not req.stated(text.statement):
            out.append(f"{ex.grade_id}: '{req.describe}' is not stated in the docstring of {label} "
                       "nor in the markdown just above its answer cell")
        params = inspect.signature(req.checked).parameters
        for name, found in found_per_name.items():
            ok = req.checked(found, text.visible) if "visible" in params else req.checked(found)
            if not ok:
                out.append(f"{ex.grade_id}: '{req.describe}' is not checked by the visible part of "
                           f"{ex.grade_id} (call check_no_loops / check_at_most_loops / check_not_using / "
                           f"check_rule on {name} before {HIDDEN_MARK!r})")
    return out


# --- the tests ---------------------------------------------------------------------------------


CASES = [(aid, gid) for aid in assignments() for gid in exercises(aid)]


@pytest.fixture(scope="module")
def texts() -> dict[str, dict[str, ExerciseText]]:
    return {aid: exercise_texts(aid) for aid in assignments()}


@pytest.mark.parametrize("aid,grade_id", CASES, ids=[f"{a}:{g}" for a, g in CASES])
def test_every_rule_is_stated_and_checked_visibly(texts, aid, grade_id):
    ex = exercises(aid)[grade_id]
    assert grade_id in texts[aid], f"{aid}: no test cell {grade_id} in the source notebooks"
    problems = findings(ex, texts[aid][grade_id])
    assert not problems, f"{aid}:\n  " + "\n  ".join(problems)


def test_the_exercises_have_rules_to_check():
    """The walk above is not vacuous: it sees the course's rules."""
    kinds = {type(r) for aid in assignments() for ex in exercises(aid).values() for r in ex.rules}
    assert {NoLoops, AtMostLoops, Forbid} <= kinds


# --- the checker itself finds what it should ---------------------------------------------------


@dataclass(frozen=True)
class _FakeExercise:
    grade_id: str
    name: str
    rules: tuple
    extra: tuple = ()

    def stated_requirements(self) -> list[str]:
        return [getattr(r, "what", "") or f"no {', '.join(r.names)}" for r in self.rules] + list(self.extra)


DOC_OK = "Vote of the k nearest.\n\nNo Python loops; no scipy or sklearn."
VISIBLE_OK = ('ex = "vote"\ncheck_no_loops(ex, vote)\n'
              'check_not_using(ex, vote, ["scipy", "sklearn"])\npassed(ex)\n')


def test_findings_name_a_rule_that_is_only_in_the_hidden_spec():
    ex = _FakeExercise("test_vote", "vote", (NoLoops(), Forbid(("scipy", "sklearn"))))
    assert findings(ex, ExerciseText(DOC_OK, "", VISIBLE_OK)) == []
    # The case of a student voting with scipy.stats.mode: the visible part never checks it.
    problems = findings(ex, ExerciseText("Vote.\n\nNo Python loops.", "", 'check_no_loops("vote", vote)\n'))
    assert len(problems) == 4 and all(p.startswith("test_vote: 'no `s") for p in problems)
    assert any("'no `scipy`' is not stated" in p for p in problems)
    assert any("'no `sklearn`' is not checked by the visible part" in p for p in problems)


def test_a_statement_in_the_markdown_above_counts_and_a_mere_mention_does_not():
    ex = _FakeExercise("test_vote", "vote", (Forbid(("np.linalg.norm",)),))
    visible = 'check_rule("vote", vote, Forbid(("numpy.linalg.norm",)))\n'
    assert findings(ex, ExerciseText("Vote.", "Do not call `np.linalg.norm`.", visible)) == []
    problems = findings(ex, ExerciseText("Vote.", "Compare with np.linalg.norm.", visible))
    assert problems == ["test_vote: 'no `np.linalg.norm`' is not stated in the docstring of vote nor in "
                        "the markdown just above its answer cell"]


def test_loop_budgets_must_match():
    ex = _FakeExercise("test_d", "d", (AtMostLoops(2),))
    good = ExerciseText("Rules: at most two Python loops.", "", "check_at_most_loops('d', d, 2)\n")
    assert findings(ex, good) == []
    assert findings(ex, ExerciseText("Rules: at most 2 loops.", "",
                                     "check_rule('d', d, AtMostLoops(2), hint='')\n")) == []
    looser = ExerciseText("Rules: at most two Python loops.", "", "check_at_most_loops('d', d, 3)\n")
    assert len(findings(ex, looser)) == 1
    unstated = ExerciseText("Two loops.", "", "check_at_most_loops('d', d, 2)\n")
    assert "is not stated" in findings(ex, unstated)[0]
    other_function = ExerciseText("At most two loops.", "", "check_at_most_loops('d', helper, 2)\n")
    assert "is not checked" in findings(ex, other_function)[0]


def test_stated_thresholds_are_checked_when_the_spec_lists_them():
    ex = _FakeExercise("test_d", "d", (NoLoops(),), extra=("runs in under 2 seconds on 5000 points",))
    visible = "check_no_loops('d', d)\ncheck_true('d', timed(d, 5000) < 2, 'too slow')\n"
    good = ExerciseText("No Python loops. Must run in under 2 s on 5,000 training points.", "", visible)
    assert findings(ex, good) == []
    problems = findings(ex, ExerciseText("No Python loops.", "", "check_no_loops('d', d)\n"))
    assert len(problems) == 2 and all("runs in under 2 seconds on 5000 points" in p for p in problems)


@dataclass(frozen=True)
class _FakePair:
    grade_id: str
    object_names: tuple
    rules: tuple
    name: str = ""


def test_an_exercise_with_several_names_checks_each_of_them():
    ex = _FakePair("test_affine", ("affine_forward", "affine_backward"), (NoLoops(),))
    statement = "Rules: no Python loops."
    both = ExerciseText(statement, "", "check_no_loops('f', affine_forward)\ncheck_no_loops('b', affine_backward)\n")
    assert findings(ex, both) == []
    one = ExerciseText(statement, "", "check_no_loops('f', affine_forward)\n")
    problems = findings(ex, one)
    assert len(problems) == 1 and "check_rule on affine_backward" in problems[0]
