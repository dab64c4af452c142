"""Where evaluations run, behind one small interface::

    pool.submit(task)            # a free slot starts it (raises if none is free)
    pool.wait(timeout) -> [...]  # finished results; blocks until at least one or timeout
    pool.free                    # slots free now
    pool.close()

``SerialPool`` runs each task in this process when ``wait`` is called. ``LocalPool`` keeps one
spawned ``multiprocess`` worker per slot, started once per run and reused. Each worker gets its
own task queue, so the pool always knows which task is where: a worker that dies is replaced and
its task comes back as a ``crashed`` result instead of hanging the run.
"""
from __future__ import annotations

import logging
import os
import queue
import signal
import time
from collections import deque
from typing import Any, Callable, Protocol

from evolution.worker import evaluate_task
from genome.errors import EvonasError

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.5


class PoolError(EvonasError):
    """The pool cannot run evaluations at all (for example, workers fail to start)."""


class Pool(Protocol):
    slots: int

    @property
    def free(self) -> int: ...

    def submit(self, task: dict[str, Any]) -> None: ...

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch (and BLAS/OpenMP libraries started later)."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set once torch ran parallel work in this process
            pass


class SerialPool:
    """One slot, in this process: ``wait`` runs the submitted task and returns its result."""

    def __init__(self, threads: int = 1, evaluate: Callable[[dict], dict] = evaluate_task):
        self.slots = 1
        self._evaluate = evaluate
        self._queue: deque[dict[str, Any]] = deque()
        set_threads(threads)

    @property
    def free(self) -> int:
        return self.slots - len(self._queue)

    def submit(self, task: dict[str, Any]) -> None:
        if not self.free:
            raise RuntimeError("SerialPool.submit called with no free slot")
        self._queue.append(task)

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        if not self._queue:
            return []
        result = self._evaluate(self._queue.popleft())
        result["worker"] = 0
        return [result]

    def close(self) -> None:
        self._queue.clear()

    def __enter__(self) -> "SerialPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _worker_main(worker_id: int, threads: int, tasks: Any, results: Any) -> None:
    """Loop of one spawned worker: say it is ready, then take a task, evaluate it, put the
    result, until ``None`` comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    set_threads(threads)
    results.put({"ready": worker_id})
    while True:
        task = tasks.get()
        if task is None:
            return
        result = evaluate_task(task)
        result["worker"] = worker_id
        result["pid"] = os.getpid()
        results.put(result)


class _Worker:
    def __init__(self, ctx: Any, worker_id: int, threads: int, results: Any):
        self.id = worker_id
        self.tasks = ctx.Queue()
        self.process = ctx.Process(target=_worker_main, name=f"evonas-worker-{worker_id}",
                                   args=(worker_id, threads, self.tasks, results), daemon=True)
        self.process.start()
        self.task: dict[str, Any] | None = None
        self.ready = False


class LocalPool:
    """``workers`` spawned processes on this machine, each with ``threads`` torch threads."""

    def __init__(self, workers: int, threads: int = 1):
        import multiprocess

        self.slots = workers
        self._threads = threads
        self._ctx = multiprocess.get_context("spawn")
        self._results = self._ctx.Queue()
        self._workers = [_Worker(self._ctx, i, threads, self._results) for i in range(workers)]
        log.info("started %d local workers with %d torch thread(s) each", workers, threads)

    @property
    def free(self) -> int:
        return sum(w.task is None for w in self._workers)

    def submit(self, task: dict[str, Any]) -> None:
        worker = next((w for w in self._workers if w.task is None), None)
        if worker is None:
            raise RuntimeError("LocalPool.submit called with no free slot")
        worker.task = task
        worker.tasks.put(task)

    def wait(self, timeout: float | None = None) -> list[dict[str, Any]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while any(w.task is not None for w in self._workers):
            try:
                result = self._results.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                crashed = self._reap_dead()
                if crashed:
                    return crashed
                if deadline is not None and time.monotonic() >= deadline:
                    return []
                continue
            done = self._receive(result)
            while True:  # collect whatever else finished meanwhile
                try:
                    done += self._receive(self._results.get_nowait())
                except queue.Empty:
                    break
            if done:
                return done
        return []

    def _receive(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        if "ready" in message:
            self._workers[message["ready"]].ready = True
            return []
        self._workers[message["worker"]].task = None
        return [message]

    def _reap_dead(self) -> list[dict[str, Any]]:
        """Replace workers that died; their tasks come back as ``crashed`` results."""
        crashed = []
        for i, worker in enumerate(self._workers):
            if worker.task is None or worker.process.is_alive():
                continue
            code = worker.process.exitcode
            if not worker.ready and code is not None and code >= 0:  # exited, not killed
                raise PoolError(
                    f"worker process {worker.id} exited with code {code} before it could take "
                    f"work; its error output is above. A script that starts a run must guard it "
                    f"with `if __name__ == \"__main__\":` (workers are spawned processes).")
            log.warning("worker %d (pid %s) died with exit code %s during evaluation %s; "
                        "starting a new one", worker.id, worker.process.pid, code,
                        worker.task["index"])
            now = time.time()
            crashed.append({"index": worker.task["index"], "status": "crashed", "fitness": None,
                            "metrics": {}, "worker": worker.id, "pid": worker.process.pid,
                            "message": f"worker process died with exit code {code}",
                            "started": now, "finished": now})
            self._workers[i] = _Worker(self._ctx, worker.id, self._threads, self._results)
        return crashed

    def close(self) -> None:
        """Stop every worker: idle ones finish cleanly, busy ones are terminated now."""
        for worker in self._workers:
            if worker.task is not None:
                worker.process.terminate()
            elif worker.process.is_alive():
                worker.tasks.put(None)
        for worker in self._workers:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join(timeout=5)

    def __enter__(self) -> "LocalPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def make_pool(config: Any, workers: int | None = None) -> Pool:
    """The pool named by ``config.pool``; ``workers`` overrides ``config.pool.workers``."""
    pool = config.pool
    if pool.backend == "serial":
        return SerialPool(pool.threads_per_worker)
    return LocalPool(workers or pool.workers, pool.threads_per_worker)
