"""The one exception hierarchy of evonas.

It lives in the lowest layer so that ``genome``, ``training`` and ``evolution`` can all raise
subclasses of :class:`EvonasError` without importing each other.
"""
from __future__ import annotations


class EvonasError(Exception):
    """Base class of every error evonas raises on purpose. Messages say what was expected,
    what came, and what to do."""


class GenomeError(EvonasError, ValueError):
    """A genome (or its text / dict form) is malformed or does not fit its search space."""
