"""The local backend: spawned ``multiprocess`` worker processes on this machine, one per slot,
started once per run and reused. Every failure comes back as a result, never as a crashed or
hung run:

- an exception, a NaN or infinite loss, ``MemoryError`` or CUDA out-of-memory in the
  evaluation: ``failed``, with the traceback (the worker itself goes on);
- an evaluation longer than ``timeout`` seconds: ``timeout``; its worker is killed and replaced;
- a worker that dies (SIGKILL, segfault, the OOM killer): it is noticed at once (the parent
  waits on every worker's pipe *and* process sentinel), replaced, and the evaluation is run
  again with the same seed up to ``max_retries`` times, then comes back ``crashed``.

A worker that exits by itself before it is ready (an import error; a script without an
``if __name__ == "__main__":`` guard) is a :class:`PoolError`: no evaluation could ever run.
The standard ``multiprocessing.Pool`` is not used: it hangs when a worker dies.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from evolution.pool.base import Pool, PoolError
from evolution.pool.slots import Slot, child_environ, resolve_slots
from evolution.results import CRASHED, TIMEOUT, Result
from evolution.worker import THREAD_VARIABLES, serve

log = logging.getLogger(__name__)

_HEARTBEAT_SECONDS = 5.0  # longest wait between two looks at the workers; deaths wake us sooner
_STARTUP_DEATHS = 3       # a slot whose worker dies this often in a row before it is ready


def _exit_text(code: Optional[int]) -> str:
    """``exit code -9 (SIGKILL)`` for a process that ended with ``code``."""
    if code is not None and code < 0:
        try:
            return f"exit code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"exit code {code}"


# ------------------------------------------------------------------------------------- local
@dataclass
class _Job:
    """A task and what happened to it so far."""

    task: dict[str, Any]
    attempts: int = 0                 # workers it was given to
    started: Optional[float] = None   # monotonic time the current attempt started
    failures: list[str] = field(default_factory=list)   # why earlier attempts ended


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies have ended); ``False`` where
    ``/proc`` does not say."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # ended meanwhile
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class _Worker:
    """One spawned worker process, its pipe, and the job it holds."""

    def __init__(self, ctx: Any, worker_id: int, slot: Slot, threads: int,
                 memory_limit_mb: Optional[int]):
        self.id, self.slot = worker_id, slot
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=serve, name=f"evonas-worker-{worker_id}", daemon=True,
            args=(child, worker_id, threads, slot.worker_device, memory_limit_mb))
        with child_environ({**{name: str(threads) for name in THREAD_VARIABLES}, **slot.env}):
            self.process.start()
        child.close()  # the child holds its end; ours closing lets either side see EOF
        self.pid = self.process.pid
        self.spawned = time.monotonic()
        self.ready = False
        self.job: Optional[_Job] = None
        self.done = 0  # evaluations finished
        self.busy = 0.0

    def kill_group(self, wait: float = 5.0) -> None:
        """SIGKILL whatever is left of the worker's process group: processes an evaluation
        forked (the worker leads its own group) must not outlive it. A signal is delivered
        asynchronously, so this waits (up to ``wait`` seconds, where ``/proc`` shows process
        groups) until none of them runs any more."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):  # gone, or never got its own group
            return
        deadline = time.monotonic() + wait
        while _group_running(self.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def give(self, job: _Job) -> None:
        self.job = job
        job.attempts += 1
        job.started = None
        try:
            self.conn.send(job.task)
        except OSError:  # it died meanwhile: noticed on the next look, the job moves on
            pass


class LocalPool(Pool):
    """Spawned worker processes on this machine, one per slot, started once and reused.

    ``workers`` CPU slots with ``threads`` torch threads each, or the given ``slots`` (see
    :func:`resolve_slots`; a GPU slot's worker starts with ``CUDA_VISIBLE_DEVICES`` set to its
    GPU and evaluates on ``cuda:0``). ``timeout``: seconds an evaluation may run before its
    worker is killed (``timeout`` result). ``max_retries``: re-runs of an evaluation whose
    worker died (default 0 here; the config's default is 1). ``max_tasks_per_worker``: a
    worker is replaced after that many evaluations. ``memory_limit_mb``: ``RLIMIT_DATA`` of
    each worker. ``start_timeout``: seconds a worker may take to become ready (import torch and
    say so) before it is killed and replaced.
    """

    name = "local"

    def __init__(self, workers: int = 1, threads: int = 1, *,
                 slots: Optional[Sequence[Slot]] = None, timeout: Optional[float] = None,
                 max_retries: int = 0, max_tasks_per_worker: Optional[int] = None,
                 memory_limit_mb: Optional[int] = None, start_timeout: float = 300.0):
        import multiprocess

        super().__init__()
        self._slots = list(slots) if slots is not None else [Slot("cpu")] * workers
        self.slots = len(self._slots)
        self.threads = threads
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_tasks_per_worker = max_tasks_per_worker
        self.memory_limit_mb = memory_limit_mb
        self.start_timeout = start_timeout
        self._ctx = multiprocess.get_context("spawn")
        self._retired: list[Any] = []  # recycled processes on their way out
        self._pending: list[Result] = []  # results seen by wait_ready
        self._startup_deaths = [0] * self.slots
        self._closed = False
        self.restarts = self.retries = self.timeouts = self.recycled = 0
        self._workers = [self._start(i) for i in range(self.slots)]
        devices = sorted({s.device for s in self._slots})
        log.info("started %d local workers on %s with %d torch thread(s) each", self.slots,
                 ", ".join(devices), threads)

    @classmethod
    def from_config(cls, pool: Any, workers: Optional[int] = None) -> "LocalPool":
        slots = resolve_slots(pool.devices, workers or pool.workers, pool.slots_per_gpu)
        if workers is not None and slots[0].device != "cpu":
            log.warning("%d worker(s) asked for, but pool.devices gives %d GPU slot(s); using "
                        "the GPU slots", workers, len(slots))
        return cls(threads=pool.threads_per_worker, slots=slots, timeout=pool.timeout,
                   max_retries=pool.max_retries, max_tasks_per_worker=pool.max_tasks_per_worker,
                   memory_limit_mb=pool.memory_limit_mb, start_timeout=pool.start_timeout)

    def _start(self, worker_id: int) -> _Worker:
        return _Worker(self._ctx, worker_id, self._slots[worker_id], self.threads,
                       self.memory_limit_mb)

    # ------------------------------------------------------------------ the interface
    @property
    def free(self) -> int:
        return sum(w.job is None for w in self._workers)

    @property
    def running(self) -> int:
        return sum(w.job is not None for w in self._workers)

    @property
    def busy_seconds(self) -> float:
        now = time.monotonic()
        return self._busy + sum(now - w.job.started for w in self._workers
                                if w.job is not None and w.job.started is not None)

    def stats(self) -> dict[str, Any]:
        """Counts for a progress display, and one entry per worker (slot)."""
        now = time.monotonic()
        return {
            **super().stats(), "restarts": self.restarts, "retries": self.retries, "timeouts": self.timeouts,
            "recycled": self.recycled,
            "workers": [{"worker": w.id, "pid": w.pid, "device": w.slot.device,
                         "ready": w.ready, "done": w.done, "busy_seconds": w.busy,
                         "index": w.job.task["index"] if w.job else None,
                         "running_seconds": (now - w.job.started
                                             if w.job and w.job.started else 0.0)}
                        for w in self._workers]}

    def submit(self, task: dict[str, Any]) -> None:
        worker = next((w for w in self._workers if w.job is None), None)
        if worker is None:
            raise RuntimeError("LocalPool.submit called with no free slot")
        if not worker.process.is_alive():  # died while idle: replace it first
            self._died(worker)
            worker = self._workers[worker.id]
        worker.give(_Job(task))

    def wait(self, timeout: float | None = None) -> list[Result]:
        """Results of finished evaluations: blocks until there is at least one, or ``timeout``
        seconds passed (then ``[]``); ``[]`` at once when nothing is running."""
        end = None if timeout is None else time.monotonic() + timeout
        if self._pending:
            done, self._pending = self._pending, []
            return done
        while self.running:
            done = self._look(end)
            if done:
                return done
            if end is not None and time.monotonic() >= end:
                break
        return []

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Block until every worker has started (imported torch) and said so; benchmarks use
        it to time evaluations without the start-up. Raises :class:`PoolError` on timeout
        or when workers cannot start."""
        end = None if timeout is None else time.monotonic() + timeout
        while not all(w.ready for w in self._workers):
            if end is not None and time.monotonic() >= end:
                raise PoolError(f"local workers not ready after {timeout} s")
            self._pending += self._look(end)

    # ------------------------------------------------------------------ the machinery
    def _look(self, end: Optional[float]) -> list[Result]:
        """Sleep until a worker says something or dies, the next evaluation deadline, or
        ``end``; then handle whatever happened."""
        from multiprocess.connection import wait as wait_any

        now = time.monotonic()
        limit = _HEARTBEAT_SECONDS if end is None else min(_HEARTBEAT_SECONDS, end - now)
        for w in self._workers:
            if self.timeout is not None and w.job is not None and w.job.started is not None:
                limit = min(limit, w.job.started + self.timeout - now)
            if not w.ready:
                limit = min(limit, w.spawned + self.start_timeout - now)
        handles = [h for w in self._workers for h in (w.conn, w.process.sentinel)]
        wait_any(handles, timeout=max(0.0, limit))
        done: list[Result] = []
        for w in list(self._workers):
            done += self._drain(w)
            if self._workers[w.id] is w and not w.process.is_alive():
                done += self._died(w)
        done += self._expire()
        self._unstarted()
        for process in [p for p in self._retired if not p.is_alive()]:
            process.join()
            self._retired.remove(process)
        return done

    def _drain(self, w: _Worker) -> list[Result]:
        done = []
        while True:
            try:
                if not w.conn.poll():
                    break
                message = w.conn.recv()
            except (EOFError, OSError):  # it died; its sentinel tells the rest
                break
            done += self._receive(w, message)
            if self._workers[w.id] is not w:  # recycled after that result
                break
        return done

    def _receive(self, w: _Worker, message: tuple[str, Any]) -> list[Result]:
        kind, body = message
        if kind == "ready":
            w.ready = True
            self._startup_deaths[w.id] = 0
            limit = self.memory_limit_mb
            if limit is not None and body["memory_mb"] >= limit:
                raise PoolError(
                    f"pool.memory_limit_mb is {limit} MB, but a worker already holds "
                    f"{body['memory_mb']:.0f} MB of data after importing torch, before any "
                    f"evaluation; raise the limit well above that")
            return []
        job = w.job
        if kind == "started":
            job.started = time.monotonic()
            return []
        result = body
        w.job = None
        w.done += 1
        seconds = result["finished"] - result["started"]
        w.busy += seconds
        self._busy += seconds
        self.completed += 1
        result["attempts"] = job.attempts
        if job.failures:
            result["retried"] = job.failures
        if self.max_tasks_per_worker is not None and w.done >= self.max_tasks_per_worker:
            self._recycle(w)
        return [result]

    def _recycle(self, w: _Worker) -> None:
        """Replace an idle worker that did its share: it gets ``None`` and exits by itself."""
        try:
            w.conn.send(None)
        except OSError:
            pass
        w.conn.close()
        self._retired.append(w.process)
        self._workers[w.id] = self._start(w.id)
        self.recycled += 1
        log.debug("worker %d (pid %s) retired after %d evaluations", w.id, w.pid, w.done)

    def _replace(self, w: _Worker) -> _Worker:
        w.conn.close()
        w.process.join(timeout=1)
        new = self._workers[w.id] = self._start(w.id)
        self.restarts += 1
        return new

    def _died(self, w: _Worker, reason: Optional[str] = None,
              advice: str = "is the machine out of memory, or pool.memory_limit_mb too low?"
              ) -> list[Result]:
        """``w`` is dead: replace it and run its job again, or give the job back ``crashed``.
        A worker that dies before it is ready costs its job no attempt; ``advice`` ends the
        error when that happens too often."""
        code = w.process.exitcode
        how = reason or _exit_text(code)
        w.kill_group()
        if not w.ready:
            if reason is None and code is not None and code >= 0:  # exited by itself
                raise PoolError(
                    f"worker process {w.id} exited with code {code} before it could take "
                    f"work; its error output is above. A script that starts a run must guard it "
                    f"with `if __name__ == \"__main__\":` (workers are spawned processes).")
            self._startup_deaths[w.id] += 1
            if self._startup_deaths[w.id] >= _STARTUP_DEATHS:
                raise PoolError(f"worker process {w.id} died {_STARTUP_DEATHS} times in a row "
                                f"before it was ready (last: {how}); {advice}")
        job = w.job
        new = self._replace(w)
        if job is not None and not w.ready:  # it never started the job: not the job's fault
            job.attempts -= 1
            new.give(job)
            return []
        if job is None:
            log.warning("idle worker %d (pid %s) died with %s; started a new one", w.id, w.pid,
                        how)
            return []
        seconds = time.monotonic() - job.started if job.started is not None else 0.0
        w.busy += seconds
        index = job.task["index"]
        job.failures.append(f"attempt {job.attempts}: worker process {w.pid} died with {how}")
        if job.attempts <= self.max_retries:
            log.warning("worker %d (pid %s) died with %s during evaluation %s; running it "
                        "again on a new worker (attempt %d of %d)", w.id, w.pid, how, index,
                        job.attempts + 1, self.max_retries + 1)
            self.retries += 1
            self._busy += seconds
            new.give(job)
            return []
        log.warning("worker %d (pid %s) died with %s during evaluation %s; recorded as "
                    "crashed after %d attempt(s)", w.id, w.pid, how, index, job.attempts)
        message = f"worker process died with {how}"
        if job.attempts > 1:
            message += f" on each of {job.attempts} attempts"
        retried = {"retried": job.failures[:-1]} if len(job.failures) > 1 else {}
        return [self.failure(index, CRASHED, message, seconds=seconds, worker=w.id, pid=w.pid,
                             attempts=job.attempts, device=w.slot.worker_device, **retried)]

    def _unstarted(self) -> None:
        """Kill workers not ready ``start_timeout`` seconds after they were spawned (stopped,
        or stuck importing torch); they count as deaths before ready, and a job they held goes
        to their replacement without costing it an attempt."""
        now = time.monotonic()
        for w in list(self._workers):
            if not w.ready and now - w.spawned >= self.start_timeout:
                log.warning("worker %d (pid %s) was not ready %g s after it started "
                            "(pool.start_timeout); killing it and starting another", w.id,
                            w.pid, self.start_timeout)
                w.process.kill()
                w.process.join(timeout=5)
                self._died(w, reason=f"not ready after pool.start_timeout "
                                     f"({self.start_timeout:g} s)",
                           advice="a worker imports torch before it is ready, which takes "
                                  "longer on a busy machine: raise pool.start_timeout")

    def _expire(self) -> list[Result]:
        """Kill and replace workers whose evaluation ran past ``timeout``."""
        if self.timeout is None:
            return []
        done = []
        now = time.monotonic()
        for w in list(self._workers):
            job = w.job
            if job is None or job.started is None or now - job.started < self.timeout:
                continue
            w.process.kill()
            w.process.join(timeout=5)
            w.kill_group()
            self._replace(w)
            seconds = now - job.started
            w.busy += seconds
            self.timeouts += 1
            log.warning("evaluation %s ran longer than pool.timeout (%g s): killed worker %d "
                        "(pid %s) and started a new one", job.task["index"], self.timeout,
                        w.id, w.pid)
            done.append(self.failure(
                job.task["index"], TIMEOUT, f"evaluation ran longer than pool.timeout "
                f"({self.timeout:g} s); its worker process was killed and replaced",
                seconds=seconds, worker=w.id, pid=w.pid, attempts=job.attempts,
                device=w.slot.worker_device))
        return done

    def close(self) -> None:
        """Stop every worker: idle ones finish cleanly, busy or starting ones are terminated
        now. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if w.job is not None or not w.ready:
                w.process.terminate()
            else:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
        for process in [w.process for w in self._workers] + self._retired:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for w in self._workers:
            w.kill_group()
            w.conn.close()
