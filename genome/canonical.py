"""Canonical keys, computed once per genome.

A genome is frozen, so its canonical key never changes; the search asks for it several times
per candidate (no-repeat filter, surrogate, cache, journal), and for graph encodings it is a
search over node numberings. :func:`once` keeps it in the genome's ``__dict__``, outside the
dataclass fields, so equality, hashing, ``repr`` and ``to_dict`` are unchanged."""
from __future__ import annotations

import functools
from typing import Any, Callable

_KEY = "_canonical_key"


def once(key: Callable[[Any], str]) -> Callable[[Any], str]:
    """Decorate a frozen genome's ``key`` method: computed on the first call, then recalled."""
    @functools.wraps(key)
    def remembered(self: Any) -> str:
        known = self.__dict__.get(_KEY)
        if known is None:
            known = self.__dict__[_KEY] = key(self)
        return known
    return remembered
