"""Benchmarks of the course (commands, not tests: timings depend on the machine).

``python -m bench``
    executes every source notebook under ``solutions/`` (wall time, peak
    memory) and grades one reference submission of every assignment, against
    the course's budgets; writes ``docs/benchmarks.md``. ``--assignment ID``
    (repeatable) measures only those and keeps the other rows of the file.
``python -m bench scale [--students 40]``
    grades the same generated class three ways (stock ``nbgrader autograde``,
    this grader with one worker, with every core), prints the times and
    ratios, checks that the scores agree; writes ``docs/benchmarks_scale.md``.
``python -m bench suite [--assignments 14]``
    runs the test suite once, attributes its time to each assignment and to the
    platform, and projects it to the whole course; writes ``docs/benchmarks_suite.md``.
"""
