"""The one exception hierarchy of evonas.

It lives in the lowest layer so that ``genome``, ``training`` and ``evolution`` can all raise
subclasses of :class:`EvonasError` without importing each other.
"""
from __future__ import annotations


class EvonasError(Exception):
    """Base class of every error evonas raises on purpose. Messages say what was expected,
    what came, and what to do. ``exit_code`` is what the command line exits with: 2, an input
    error (config, genome, data, evaluator, run directory)."""

    exit_code = 2


class ResourceError(EvonasError):
    """The machine, not the input, stopped evonas: a full disk, a read-only folder, missing
    permissions, no network for a download, workers that cannot start (exit code 3)."""

    exit_code = 3


class GenomeError(EvonasError, ValueError):
    """A genome (or its text / dict form) is malformed or does not fit its search space."""
