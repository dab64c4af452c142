"""The serial backend: one slot, in the run's own process. ``wait`` runs the submitted task."""
from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Optional

from evolution.pool.base import Pool
from evolution.results import Result
from evolution.worker import evaluate_task, set_threads


class SerialPool(Pool):
    """One slot, in this process: ``wait`` runs the submitted task and returns its result.
    ``device`` is passed to the evaluation as ``task["device"]``; ``evaluate`` replaces the
    worker's :func:`~evolution.worker.evaluate_task` (tests and benchmarks)."""

    name = "serial"

    def __init__(self, threads: int = 1, evaluate: Callable[[dict], Result] = evaluate_task,
                 device: str = "cpu"):
        super().__init__()
        self.slots = 1
        self.device = device
        self._evaluate = evaluate
        self._queue: deque[dict[str, Any]] = deque()
        set_threads(threads)

    @classmethod
    def from_config(cls, pool: Any, workers: Optional[int] = None) -> "SerialPool":
        from evolution.pool.slots import resolve_slots

        return cls(pool.threads_per_worker, device=resolve_slots(pool.devices, 1)[0].device)

    @classmethod
    def check_config(cls, pool: Any) -> None:
        for key in ("timeout", "memory_limit_mb", "max_tasks_per_worker"):
            if getattr(pool, key) is not None:
                raise ValueError(f"pool.{key} needs worker processes (backend local or dask); "
                                 f"backend serial evaluates in the run's own process, which "
                                 f"cannot be stopped or limited")

    @property
    def free(self) -> int:
        return self.slots - len(self._queue)

    @property
    def running(self) -> int:
        return len(self._queue)

    def submit(self, task: dict[str, Any]) -> None:
        if not self.free:
            raise RuntimeError("SerialPool.submit called with no free slot")
        self._queue.append(task)

    def wait(self, timeout: Optional[float] = None) -> list[Result]:
        if not self._queue:
            return []
        start = time.monotonic()
        result = self._evaluate({**self._queue.popleft(), "device": self.device})
        self._busy += time.monotonic() - start
        self.completed += 1
        result["worker"] = 0
        return [result]

    def close(self) -> None:
        self._queue.clear()
