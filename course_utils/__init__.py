"""Shared helpers for every notebook of the course: devices, seeds, data,
gradient checks, self-checks, plots and widgets."""

from .runtime import device, seed_everything

__all__ = ["device", "seed_everything"]
