"""Randomness for DEAP's own operators, from a strategy's seeded ``random.Random``.

DEAP's operators (``tools.mutFlipBit``, ``tools.selTournament``, ...) draw from the global
``random`` module. :func:`lend` gives the global module the state of an explicit generator for
the duration of a call and takes the advanced state back, so the operator draws exactly what
the generator would have drawn, runs stay reproducible and resumable (the generator's state is
what is snapshotted), and whatever else uses the global module is left as it was.
"""
from __future__ import annotations

import random
from contextlib import contextmanager
from typing import Iterator


@contextmanager
def lend(rng: random.Random, numpy: bool = False) -> Iterator[None]:
    """Within the block the global ``random`` module continues ``rng``'s sequence; afterwards
    ``rng`` has advanced by what was drawn and the global module is restored. With ``numpy``
    (for operators that draw from ``numpy.random``, such as ``selNSGA3``) numpy's global
    generator is seeded from ``rng`` too, and restored afterwards. Not thread-safe: the search
    loop calls operators from one thread."""
    saved = random.getstate()
    np_saved = None
    if numpy:
        import numpy as np

        np_saved = np.random.get_state()
        np.random.seed(rng.getrandbits(32))
    random.setstate(rng.getstate())
    try:
        yield
    finally:
        rng.setstate(random.getstate())
        random.setstate(saved)
        if np_saved is not None:
            np.random.set_state(np_saved)
