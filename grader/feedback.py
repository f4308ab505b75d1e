"""Per-student, per-notebook HTML feedback: ``OUT/feedback/<student>/<assignment>/<notebook>.html``.

Feedback lists every graded cell with its score and, for the autograded ones,
every check with why it failed.  It is built from the result records only, so
it can never show hidden test code or the reference's values.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, select_autoescape

from .results import SubmissionRecord, feedback_path, write_atomic

__all__ = ["feedback_path", "render", "write_feedback"]

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ assignment }} / {{ notebook }}: feedback for {{ student }}</title>
<style>
 body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
        color: #1b1b1b; background: #fff; }
 h1 { font-size: 1.4rem; } table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }
 .passed { color: #17631f; } .failed, .error, .timeout, .killed, .missing { color: #a3161b; }
 .pending { color: #6b5b00; } code, pre { background: #f4f4f4; padding: 0 .2rem; white-space: pre-wrap; }
 .problem { background: #fff0f0; border: 1px solid #e0b4b4; padding: .6rem; }
</style></head><body>
<h1>{{ assignment }} / {{ notebook }}.ipynb: {{ "%g"|format(score) }} of {{ "%g"|format(max_score) }} points</h1>
<p>Student: <b>{{ student }}</b>.
 Autograded cells are scored by hidden tests that compare your functions with the reference on
 inputs you have not seen; written answers are graded by your instructor.</p>
{% if problem %}<p class="problem"><b>This notebook could not be graded:</b> {{ problem }}</p>{% endif %}
<table><tr><th>Exercise</th><th>Kind</th><th>Status</th><th>Points</th><th>Details</th></tr>
{% for c in cells %}
<tr><td><code>{{ c.grade_id }}</code></td><td>{{ c.kind }}</td>
<td class="{{ c.status }}">{{ c.status }}</td><td>{{ "%g"|format(c.score) }} / {{ "%g"|format(c.max_score) }}</td>
<td>{% if c.message %}<p>{{ c.message }}</p>{% endif %}
{% if c.parts %}<p>Points by part: {% for p, v in c.parts.items() %}{{ p }} <span class="{{ 'passed' if v.passed else 'failed' }}">{{ "%g"|format(v.score) }} / {{ "%g"|format(v.max_score) }}</span>{% if not loop.last %}, {% endif %}{% endfor %}</p>{% endif %}
{% set failed = c.checks|rejectattr("passed")|list %}
{% if failed %}<ul>{% for k in failed %}<li><b>{{ k.name }}</b>: <pre>{{ k.message }}</pre></li>{% endfor %}</ul>
{% elif c.checks %}all {{ c.checks|length }} checks passed{% endif %}</td></tr>
{% endfor %}
</table></body></html>
"""

_env = Environment(autoescape=select_autoescape(default=True))
_template = _env.from_string(TEMPLATE)


def render(record: dict, nb: dict) -> str:
    score = sum(c["score"] for c in nb["cells"])
    max_score = sum(c["max_score"] for c in nb["cells"])
    return _template.render(student=record["student_id"], assignment=record["assignment"],
                            notebook=nb["notebook"], cells=nb["cells"], problem=nb.get("problem"),
                            score=score, max_score=max_score)


def write_feedback(out: Path, record: SubmissionRecord) -> list[Path]:
    paths = []
    notebooks = record["notebooks"] or [{"notebook": "submission", "cells": [],
                                         "problem": record.get("problem")}]
    for nb in notebooks:
        path = feedback_path(out, record["student_id"], record["assignment"], nb["notebook"])
        write_atomic(path, render(record, nb))
        paths.append(path)
    return paths
