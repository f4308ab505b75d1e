"""Shared helpers for every notebook of the course: devices, seeds, data,
gradient checks, self-checks, plots and widgets.

Importing the package sets the thread pools up for small-matrix teaching work on a
laptop (see :func:`course_utils.runtime.configure_threads`)."""

from .runtime import budget, configure_threads, device, quick_mode, seed_everything

configure_threads()

__all__ = ["budget", "configure_threads", "device", "quick_mode", "seed_everything"]
