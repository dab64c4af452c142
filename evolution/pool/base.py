"""The interface the search loop uses, and what every backend shares.

::

    pool.submit(task)            # a free slot starts it (raises if none is free)
    pool.wait(timeout) -> [...]  # finished results; blocks until at least one or timeout
    pool.free                    # slots free now
    pool.slots                   # slots in all
    pool.running                 # evaluations in progress
    pool.close()                 # also on leaving ``with pool:``

plus, for progress displays and benchmarks, ``busy_seconds`` (evaluation time so far, summed
over slots), ``utilization`` (busy time over wall time times slots since the pool started),
``stats()`` and ``wait_ready()``. A backend is a subclass that sets :attr:`Pool.name`, builds
itself from the ``pool`` config section in :meth:`Pool.from_config`, refuses settings it cannot
honour in :meth:`Pool.check_config`, and reports a failure it detects itself (a timeout, a dead
worker) with :meth:`Pool.failure`, never a hand-built dict.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Optional

from evolution.results import Result, make_result
from genome.errors import ResourceError


class PoolError(ResourceError):
    """The pool cannot run evaluations at all (for example, workers fail to start)."""


class Pool(ABC):
    """Where evaluations run. Subclasses implement the abstract members; counters that every
    backend keeps (``completed``, busy time) live here."""

    name: ClassVar[str]
    """The ``pool.backend`` value that selects this backend."""

    slots: int

    def __init__(self) -> None:
        self._created = time.monotonic()
        self._busy = 0.0
        self.completed = 0

    # ------------------------------------------------------------------ configuration
    @classmethod
    @abstractmethod
    def from_config(cls, pool: Any, workers: Optional[int] = None) -> "Pool":
        """The pool ``pool`` (the config's ``pool`` section) describes; ``workers`` overrides
        ``pool.workers``."""

    @classmethod
    def check_config(cls, pool: Any) -> None:
        """Raise ``ValueError`` naming a ``pool`` key this backend cannot honour."""

    # ------------------------------------------------------------------ the interface
    @property
    @abstractmethod
    def free(self) -> int:
        """Slots free now."""

    @property
    @abstractmethod
    def running(self) -> int:
        """Evaluations in progress."""

    @abstractmethod
    def submit(self, task: dict[str, Any]) -> None:
        """Start ``task`` on a free slot; ``RuntimeError`` when none is free."""

    @abstractmethod
    def wait(self, timeout: Optional[float] = None) -> list[Result]:
        """Finished results: block until there is at least one, or ``timeout`` seconds passed
        (then ``[]``); ``[]`` at once when nothing is running."""

    @abstractmethod
    def close(self) -> None:
        """Stop everything; safe to call twice."""

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Block until every slot can take work (benchmarks time evaluations without the
        start-up). Ready at once unless a backend says otherwise."""

    # ------------------------------------------------------------------ shared
    @property
    def busy_seconds(self) -> float:
        return self._busy

    @property
    def utilization(self) -> float:
        elapsed = time.monotonic() - self._created
        slots = max(self.slots, 1)
        return self.busy_seconds / (elapsed * slots) if elapsed > 0 else 0.0

    def stats(self) -> dict[str, Any]:
        """Counts for a progress display; backends add their own entries."""
        return {"slots": self.slots, "running": self.running, "completed": self.completed,
                "busy_seconds": self.busy_seconds, "utilization": self.utilization}

    def failure(self, index: int, status: str, message: str, *, seconds: float = 0.0,
                **where: Any) -> Result:
        """The result of an evaluation the pool itself ended (``timeout``, ``crashed``, or
        ``failed`` when it could not be run): counted as completed, ``seconds`` of busy
        time, ending now."""
        self.completed += 1
        self._busy += seconds
        now = time.time()
        return make_result(index, status, message=message, started=now - seconds,
                           finished=now, **where)

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
