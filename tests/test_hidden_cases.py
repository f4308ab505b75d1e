"""Every hidden case of every assignment runs on the reference solution and yields the outputs
its exercise names (a forward-only case of a layer exercise yields just "out").

That a wrong answer fails its hidden cases is checked end to end, through the real grader, by
test_autograde.py (each spec's WRONG_ANSWERS loses exactly its exercise's points)."""

from __future__ import annotations

import pytest

from grader.evaluate import named_outputs, reference_outputs
from grader.paths import assignments
from grader.specs import exercises

MIN_CASES = 4

PAIRS = [(aid, gid) for aid in assignments() for gid in sorted(exercises(aid))]


@pytest.mark.parametrize("aid,grade_id", PAIRS, ids=[f"{a}/{g}" for a, g in PAIRS])
def test_every_hidden_case_runs_on_the_reference_and_names_its_outputs(aid, grade_id):
    ex = exercises(aid)[grade_id]
    cases, outputs = reference_outputs(aid, ex, "cpu")
    assert len(cases) == len(outputs) >= MIN_CASES, f"{grade_id}: fewer than {MIN_CASES} hidden cases"
    for case, out in zip(cases, outputs, strict=True):
        if ex.output_tols is None:  # one unnamed output
            assert out is not None, case.label
            continue
        named, problem = named_outputs(ex, out)
        assert problem is None, (case.label, problem)
        if ex.parts and case.part == "forward":
            assert set(named) == {"out"}, case.label
        elif ex.output_tols:
            assert set(ex.output_tols) <= set(named), case.label
