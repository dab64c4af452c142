"""Randomness for DEAP's own operators, from a strategy's seeded ``random.Random``.

DEAP's operators (``tools.mutFlipBit``, ``tools.selTournament``, ...) draw from the global
``random`` module (``random.choice``, ``random.random``, ... looked up when called).
:func:`lend` points those module functions at an explicit generator for the duration of a call,
so the operator draws exactly what the generator would have drawn, runs stay reproducible and
resumable (the generator's state is what is snapshotted), and the global module's own state is
never touched.
"""
from __future__ import annotations

import random
import threading
from contextlib import contextmanager
from typing import Iterator

FUNCTIONS = tuple(name for name in dir(random)
                  if isinstance(getattr(getattr(random, name), "__self__", None), random.Random))
"""The module-level functions that are methods of the module's hidden generator."""
_lending = threading.RLock()


@contextmanager
def lend(rng: random.Random, numpy: bool = False) -> Iterator[None]:
    """Within the block the global ``random`` module's functions draw from ``rng``, which
    advances by what was drawn; afterwards they are the module's own again. With ``numpy`` (for
    operators that draw from ``numpy.random``, such as ``selNSGA3``) numpy's global generator is
    seeded from ``rng`` too, and restored afterwards. Lends from several threads (two searches
    in one process) take turns; code in another thread that draws from the global module while
    an operator runs would draw from ``rng``, so operators run from the search loop only."""
    with _lending:
        module = vars(random)
        saved = {name: module[name] for name in FUNCTIONS}
        np_saved = None
        if numpy:
            import numpy as np

            np_saved = np.random.get_state()
            np.random.seed(rng.getrandbits(32))
        module.update({name: getattr(rng, name) for name in FUNCTIONS})
        try:
            yield
        finally:
            module.update(saved)
            if np_saved is not None:
                np.random.set_state(np_saved)
