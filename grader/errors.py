"""Errors the person running the grader can fix, as opposed to bugs in the grader.

The command line (:mod:`grader.cli`) prints a :class:`UserError` as one line,
``error: <message>``, and exits with status 2; any other exception is a bug in
the grader and is shown with its traceback.  So raise a :class:`UserError`
(usually one of the subclasses below, which are also the matching built-in
exception for code that catches those) wherever the input is wrong: a bad
argument, an unknown assignment, a file or folder that is not there, a sandbox
or service that is not available.  Its message says what is wrong and how to
fix it.
"""

from __future__ import annotations


class UserError(Exception):
    """Wrong input or environment; the message says what to do about it."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BadArgument(UserError, ValueError):
    """A value given on the command line (or to the API) is malformed or unknown."""


class UnknownName(UserError, KeyError):
    """An assignment, exercise or function that does not exist."""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder the user named (or that a step before should have made) is not there."""


class Unreachable(UserError, ConnectionError):
    """A service the user pointed the grader at (a Dask scheduler, a database) cannot be reached."""
