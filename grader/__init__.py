"""The course's grading pipeline on top of nbgrader (``python -m grader --help``).

Kept free of imports: the sandboxed worker imports ``grader.worker`` and must
not pull in the rest of the package.
"""
