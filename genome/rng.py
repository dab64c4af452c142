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
from typing import Any, Optional

FUNCTIONS = tuple(name for name in dir(random)
                  if isinstance(getattr(getattr(random, name), "__self__", None), random.Random))
"""The module-level functions that are methods of the module's hidden generator."""
_lending = threading.RLock()


class lend:
    """Within the block the global ``random`` module's functions draw from ``rng``, which
    advances by what was drawn; afterwards they are the module's own again. With ``numpy`` (for
    operators that draw from ``numpy.random``, such as ``selNSGA3``) numpy's global generator is
    seeded from ``rng`` too, and restored afterwards. Lends from several threads (two searches
    in one process) take turns; code in another thread that draws from the global module while
    an operator runs would draw from ``rng``, so operators run from the search loop only.

    A lend inside a lend of the same generator (a proposal that lends for its whole batch of
    candidates, whose tournaments lend again) changes nothing and costs almost nothing.
    (A class rather than a generator-based context manager: a strategy lends a dozen times per
    proposal.)"""

    __slots__ = ("rng", "numpy", "saved", "np_saved")

    def __init__(self, rng: random.Random, numpy: bool = False):
        self.rng, self.numpy = rng, numpy
        self.saved: Optional[dict[str, Any]] = None
        self.np_saved: Any = None

    def __enter__(self) -> None:
        _lending.acquire()
        module = vars(random)
        if self.numpy:
            import numpy as np

            self.np_saved = np.random.get_state()
            np.random.seed(self.rng.getrandbits(32))
        if getattr(module["random"], "__self__", None) is not self.rng:
            self.saved = {name: module[name] for name in FUNCTIONS}
            module.update({name: getattr(self.rng, name) for name in FUNCTIONS})

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.saved is not None:
                vars(random).update(self.saved)
            if self.np_saved is not None:
                import numpy as np

                np.random.set_state(self.np_saved)
        finally:
            self.saved = self.np_saved = None
            _lending.release()
