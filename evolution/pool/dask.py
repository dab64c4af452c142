"""The Dask backend: evaluations as tasks on a Dask cluster, behind the pool interface.

``pool.backend: dask`` with ``pool.address`` connects to a running scheduler; without an
address a ``LocalCluster`` of ``pool.workers`` single-threaded worker processes is started on
this machine (with GPUs, one worker per GPU slot, each seeing only its GPU). Each task is
:func:`run_task` on a plain dict, submitted with ``pure=False``; it never raises (a failed
evaluation is a ``failed`` result), so a Dask-level error is the worker's death:

- a worker that dies re-runs its task elsewhere (Dask's ``distributed.scheduler.
  allowed-failures``, set to ``pool.max_retries`` for a LocalCluster); when every attempt
  killed its worker, Dask's ``KilledWorker`` becomes a ``crashed`` result;
- ``pool.timeout`` counts from when the task starts on a worker (the worker says so with an
  event); past it the task is cancelled and its worker restarted by its nanny (``timeout``
  result);
- GPU tasks ask for the worker resource ``GPU=1``, so a worker started with
  ``--resources GPU=1`` runs one at a time.

Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; glibc then stops adapting
its mmap threshold, so every large tensor is a fresh ``mmap`` and torch training on CPU slows
down (``tests/bench/bench_pool.py`` measures it). A LocalCluster here is started without it
and without Dask's sampling profiler, and its workers ignore SIGINT (Ctrl-C is the run's);
workers of an existing cluster need the same in their Dask config (see the README).
"""
from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from typing import Any, Optional, Sequence, Union

from evolution.pool.base import Pool, PoolError
from evolution.pool.slots import resolve_slots
from evolution.results import CRASHED, FAILED, TIMEOUT, Result
from evolution.worker import THREAD_VARIABLES, evaluate_task, set_threads, where

log = logging.getLogger(__name__)

_POLL_SECONDS = 2.0           # longest wait between two looks at the cluster
_NO_WORKER_WARNING_SECONDS = 60.0
_MALLOC = "MALLOC_TRIM_THRESHOLD_"
STARTED = "evonas-started"
"""The worker event topic a task reports its start on: ``pool.timeout`` counts from there, so
an evaluation queued behind a worker's restart is not timed meanwhile."""


def run_task(task: dict[str, Any], threads: int, device: str,
             timed: bool = True) -> dict[str, Any]:
    """What a Dask worker runs: :func:`evolution.worker.evaluate_task` with ``threads`` torch
    threads on ``device``, with the worker's address and pid added. Never raises. ``timed``
    (a ``pool.timeout`` is set): first tell the pool the task started (a message to the
    scheduler), since its clock counts from there."""
    from distributed import get_worker

    worker = get_worker()
    if timed:
        worker.log_event(STARTED, {"key": worker.get_current_task()})
    set_threads(threads)
    result = evaluate_task({**task, "device": device}, in_worker=True)
    result.update(worker=get_worker().address, pid=os.getpid(), **where(device))
    return result


def dask_setup(worker: Any) -> None:
    """Preload of the LocalCluster workers this pool starts: Ctrl-C (SIGINT to the whole
    process group) is the run's to handle, as in the local pool; the pool stops them."""
    import signal

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def worker_info(threads: int) -> dict[str, Any]:
    """Run once on every worker when the pool starts: imports evonas and torch there (so the
    first evaluation does not pay for it) and says what the pool should know."""
    set_threads(threads)
    return {"pid": os.getpid(), _MALLOC: os.environ.get(_MALLOC),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


class DaskPool(Pool):
    """Evaluations on a Dask cluster: the one at ``address``, or a LocalCluster it starts.

    ``workers``: LocalCluster worker processes (one thread each) on CPU. ``devices``,
    ``slots_per_gpu``: as for the local pool; on a LocalCluster, GPU slots become one worker
    each with ``CUDA_VISIBLE_DEVICES`` set and resource ``GPU=1``; with ``address``, naming
    GPUs (or ``gpu_resources``) makes every task need ``GPU=1``. ``unset_malloc_trim``: start
    LocalCluster workers without ``MALLOC_TRIM_THRESHOLD_`` (the benchmark turns it off).

    With ``address`` the pool keeps as many evaluations in flight as the cluster has worker
    threads (or ``GPU`` resources), re-read as workers come and go; ``workers`` is unused.
    """

    name = "dask"

    def __init__(self, workers: int = 2, threads: int = 1, *, address: Optional[str] = None,
                 devices: Union[str, Sequence[str]] = "auto", slots_per_gpu: int = 1,
                 gpu_resources: bool = False, timeout: Optional[float] = None,
                 max_retries: int = 1, memory_limit_mb: Optional[int] = None,
                 unset_malloc_trim: bool = True, connect_timeout: float = 30.0):
        import dask
        from distributed import Client

        super().__init__()
        # Dask logs every scheduler and nanny event at INFO; keep them for -vv (debug) runs
        logging.getLogger("distributed").setLevel(
            logging.INFO if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
        self.threads = threads
        self.timeout = timeout
        self.address = address
        self._cluster: Any = None
        self._environ: dict[str, Optional[str]] = {}
        self._futures: dict[Any, dict[str, Any]] = {}   # future -> task, submitted, started
        self._by_key: dict[str, Any] = {}               # task key -> its future
        self._lock = threading.Lock()                   # start events arrive on Dask's thread
        self._done: "queue.Queue[Any]" = queue.Queue()
        self._no_worker_since: Optional[float] = None
        self._restarts: list[threading.Thread] = []
        self.crashed = self.timeouts = 0
        self._client: Any = None
        self._fixed_slots: Optional[int] = None
        try:
            if address is None:
                slots = resolve_slots(devices, workers, slots_per_gpu)
                self.gpu = slots[0].device != "cpu"
                self._cluster = self._local_cluster(dask, slots, threads, max_retries,
                                                    memory_limit_mb, unset_malloc_trim)
                self._fixed_slots = len(slots)
                self._client = Client(self._cluster)
            else:
                self.gpu = gpu_resources or isinstance(devices, list)
                try:
                    self._client = Client(address, timeout=connect_timeout)
                except (OSError, TimeoutError) as exc:
                    raise PoolError(f"cannot reach the Dask scheduler at pool.address "
                                    f"{address!r}: {exc}. Start one with `dask scheduler "
                                    f"--port 8786` and check the address.") from None
            self.device = "cuda:0" if self.gpu else "cpu"
            self._client.subscribe_topic(STARTED, self._started)
            self.slots = self._capacity()
            self.worker_info = self._probe()
        except BaseException:  # do not leave a LocalCluster behind
            self.close()
            raise
        log.info("Dask pool on %s: %d slot(s)%s", address or "a LocalCluster", self.slots,
                 " (GPU=1 per task)" if self.gpu else "")

    @classmethod
    def from_config(cls, pool: Any, workers: Optional[int] = None) -> "DaskPool":
        return cls(workers or pool.workers, pool.threads_per_worker, address=pool.address,
                   devices=pool.devices, slots_per_gpu=pool.slots_per_gpu,
                   gpu_resources=pool.gpu_resources, timeout=pool.timeout,
                   max_retries=pool.max_retries, memory_limit_mb=pool.memory_limit_mb)

    @classmethod
    def check_config(cls, pool: Any) -> None:
        if pool.max_tasks_per_worker is not None:
            raise ValueError("pool.max_tasks_per_worker is for the local pool; Dask workers are "
                             "recycled with `dask worker --lifetime`")
        if pool.memory_limit_mb is not None and pool.address:
            raise ValueError("pool.memory_limit_mb cannot limit the workers of an existing Dask "
                             "cluster (pool.address); start them with `dask worker "
                             "--memory-limit`")

    def _local_cluster(self, dask: Any, slots: list, threads: int, max_retries: int,
                       memory_limit_mb: Optional[int], unset_malloc_trim: bool) -> Any:
        from distributed import LocalCluster, Nanny, Scheduler, SpecCluster

        spawn_env: dict[str, Any] = {name: threads for name in THREAD_VARIABLES}
        if unset_malloc_trim:
            spawn_env[_MALLOC] = None  # None drops the variable from the nanny's list
        # The nanny writes its pre-spawn variables into this process's environment, and a
        # variable already here reaches the workers anyway: keep ours as it was, restore at close
        self._environ = {name: os.environ.get(name) for name in [*spawn_env, _MALLOC]}
        if unset_malloc_trim:
            os.environ.pop(_MALLOC, None)
        settings = {"distributed.scheduler.allowed-failures": max_retries,
                    # the statistical profiler samples the running thread every 10 ms; one
                    # evaluation per worker does not need it, and it costs ~8% of the time
                    "distributed.worker.profile.enabled": False,
                    "distributed.worker.preload": [__name__],  # dask_setup: ignore SIGINT
                    **{f"distributed.nanny.pre-spawn-environ.{k}": v
                       for k, v in spawn_env.items()}}
        memory = f"{memory_limit_mb}MiB" if memory_limit_mb else "auto"
        with dask.config.set(settings):
            if not self.gpu:
                return LocalCluster(n_workers=len(slots), threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None,
                                    memory_limit=memory)
            specs = {f"gpu-slot-{i}": {"cls": Nanny, "options": {
                "nthreads": 1, "resources": {"GPU": 1}, "env": dict(slot.env),
                "memory_limit": memory, "host": "127.0.0.1"}} for i, slot in enumerate(slots)}
            return SpecCluster(workers=specs, scheduler={"cls": Scheduler, "options": {
                "host": "127.0.0.1", "dashboard_address": None}})

    def _workers(self) -> dict[str, Any]:
        """The scheduler's view of every worker (address -> nthreads, resources, ...)."""
        try:
            info = self._client.scheduler_info(n_workers=-1)  # newer Dask lists only a few
        except TypeError:  # older Dask: always all of them
            info = self._client.scheduler_info()
        return info.get("workers", {})

    def _capacity(self) -> int:
        """Evaluations the cluster can run at once: its worker threads, or ``GPU`` resources
        when tasks need a GPU."""
        if self._fixed_slots is not None:
            return self._fixed_slots
        workers = self._workers().values()
        if self.gpu:
            return int(sum(w.get("resources", {}).get("GPU", 0) for w in workers))
        return sum(int(w.get("nthreads", 1)) for w in workers)

    def _probe(self) -> dict[str, Any]:
        """Import evonas and torch on every worker now; warn about ``MALLOC_TRIM_THRESHOLD_``."""
        if self._cluster is not None:
            self._client.wait_for_workers(self.slots, timeout=120)
        try:
            info = self._client.run(worker_info, self.threads)
        except Exception as exc:
            raise PoolError(f"the Dask workers cannot run evonas tasks: {type(exc).__name__}: "
                            f"{exc}. Install evonas (and your evaluator's module) in the "
                            f"workers' environment, and start them from the directory that "
                            f"holds the evaluator module.") from None
        trimmed = sorted(addr for addr, i in info.items() if i.get(_MALLOC) is not None)
        if trimmed:
            log.warning("Dask workers %s run with %s=%s, which slows torch training on CPU; "
                        "start them with it unset (README: Running on a cluster)",
                        ", ".join(trimmed), _MALLOC, info[trimmed[0]][_MALLOC])
        return info

    def wait_ready(self, timeout: Optional[float] = None) -> None:
        """Workers are ready once the pool is created (LocalCluster) or as they join."""

    # ------------------------------------------------------------------ the interface
    @property
    def free(self) -> int:
        # at least one task in flight even while no worker is connected: it waits for one
        return max(0, max(self.slots, 1) - len(self._futures))

    @property
    def running(self) -> int:
        return len(self._futures)

    @property
    def busy_seconds(self) -> float:
        """Finished evaluations' time plus the time the running ones have run so far."""
        now = time.monotonic()
        return self._busy + sum(now - job["started"] for job in list(self._futures.values())
                                if job["started"] is not None)

    def stats(self) -> dict[str, Any]:
        return {**super().stats(), "crashed": self.crashed, "timeouts": self.timeouts}

    def submit(self, task: dict[str, Any]) -> None:
        if not self.free:
            raise RuntimeError("DaskPool.submit called with no free slot")
        future = self._client.submit(
            run_task, task, self.threads, self.device, self.timeout is not None, pure=False,
            key=f"evonas-evaluation-{task['index']}-{uuid.uuid4().hex[:8]}",
            resources={"GPU": 1} if self.gpu else None)
        with self._lock:
            now = time.monotonic()  # untimed, a task is taken to start when submitted to a
            self._futures[future] = {"task": task, "submitted": now,  # free slot
                                     "started": None if self.timeout is not None else now}
            self._by_key[future.key] = future
        future.add_done_callback(self._done.put)

    def wait(self, timeout: float | None = None) -> list[Result]:
        """Results of finished evaluations: blocks until there is at least one, or ``timeout``
        seconds passed (then ``[]``); ``[]`` at once when nothing is running."""
        end = None if timeout is None else time.monotonic() + timeout
        while self._futures:
            now = time.monotonic()
            limit = _POLL_SECONDS if end is None else min(_POLL_SECONDS, end - now)
            with self._lock:
                starts = [job["started"] for job in self._futures.values()
                          if job["started"] is not None]
            if self.timeout is not None and starts:
                limit = min(limit, min(starts) + self.timeout - now)
            done: list[Result] = []
            try:
                done.append(self._done.get(timeout=max(0.0, limit)))
                while True:
                    done.append(self._done.get_nowait())
            except queue.Empty:
                pass
            results = [r for r in map(self._collect, done) if r is not None]
            results += self._expire()
            self._refresh()
            if results:
                return results
            if end is not None and time.monotonic() >= end:
                break
        return []

    # ------------------------------------------------------------------ the machinery
    def _started(self, event: Any) -> None:
        """A worker began a task (``STARTED`` event): its ``pool.timeout`` clock starts."""
        _, message = event
        with self._lock:
            future = self._by_key.get(message.get("key"))
            job = self._futures.get(future) if future is not None else None
            if job is not None and job["started"] is None:
                job["started"] = time.monotonic()

    def _collect(self, future: Any) -> Optional[Result]:
        with self._lock:
            job = self._futures.pop(future, None)
            self._by_key.pop(future.key, None)
        if job is None:  # cancelled by us after a timeout
            return None
        from distributed.scheduler import KilledWorker

        if future.status == "finished":
            result = future.result()
            self.completed += 1
            self._busy += result["finished"] - result["started"]
            future.release()
            return result
        exc = future.exception() if future.status == "error" else None
        index = job["task"]["index"]
        seconds = time.monotonic() - job["submitted"]
        where: dict[str, Any] = {"device": self.device}
        status = CRASHED
        if isinstance(exc, KilledWorker):
            self.crashed += 1
            attempts = exc.allowed_failures + 1
            where.update(worker=exc.last_worker.address, attempts=attempts)
            message = (f"the Dask worker running it died on each of {attempts} attempt(s) "
                       f"(KilledWorker; last on {exc.last_worker.address})")
        elif exc is not None:  # run_task never raises: Dask could not run it at all
            import traceback

            if isinstance(exc, ImportError):
                raise PoolError(f"a Dask worker could not run evaluation {index}: "
                                f"{type(exc).__name__}: {exc}. Install evonas in the "
                                f"workers' environment.") from None
            status = FAILED
            message = f"Dask could not run it: {type(exc).__name__}: {exc}"
            where["traceback"] = "".join(traceback.format_tb(future.traceback()))
        else:
            self.crashed += 1
            message = f"the Dask task ended as {future.status}"
        log.warning("evaluation %s: %s", index, message)
        future.release()
        return self.failure(index, status, message, seconds=seconds, **where)

    def _expire(self) -> list[Result]:
        """Cancel evaluations past ``timeout`` and restart the workers that ran them."""
        if self.timeout is None:
            return []
        now = time.monotonic()
        with self._lock:
            late = [f for f, job in self._futures.items()
                    if job["started"] is not None and now - job["started"] >= self.timeout]
        if not late:
            return []
        running_on = {key: addr for addr, keys in self._client.processing().items()
                      for key in keys}
        results = []
        for future in late:
            with self._lock:
                job = self._futures.pop(future)
                self._by_key.pop(future.key, None)
            worker = running_on.get(future.key)
            self._client.cancel([future], force=True)
            if worker is not None:  # its nanny takes seconds to stop it: do not wait here
                thread = threading.Thread(target=self._restart, args=(worker,), daemon=True,
                                          name=f"evonas-restart-{worker}")
                thread.start()
                self._restarts.append(thread)
            self.timeouts += 1
            log.warning("evaluation %s ran longer than pool.timeout (%g s): cancelled%s",
                        job["task"]["index"], self.timeout,
                        f", worker {worker} restarted" if worker else "")
            results.append(self.failure(
                job["task"]["index"], TIMEOUT, f"evaluation ran longer than pool.timeout "
                f"({self.timeout:g} s, counted from its start on a worker); cancelled and its "
                f"worker restarted", seconds=now - job["started"], worker=worker,
                device=self.device))
        return results

    def _restart(self, worker: str) -> None:
        try:
            status = self._client.restart_workers([worker], raise_for_error=False)
        except Exception as exc:  # the pool may be closing
            status = {worker: f"{type(exc).__name__}: {exc}"}
        if status.get(worker) != "OK":
            log.warning("could not restart Dask worker %s (%s); the timed-out evaluation may "
                        "still be running there", worker, status.get(worker))

    def _refresh(self) -> None:
        """Follow workers joining and leaving a cluster we did not start."""
        if self._fixed_slots is not None:
            return
        self.slots = self._capacity()
        if self.slots:
            self._no_worker_since = None
            return
        now = time.monotonic()
        if self._no_worker_since is None:
            self._no_worker_since = now
        elif now - self._no_worker_since >= _NO_WORKER_WARNING_SECONDS:
            log.warning("no Dask worker%s is connected to %s; %d evaluation(s) wait for one",
                        " with resource GPU" if self.gpu else "", self.address,
                        len(self._futures))
            self._no_worker_since = now

    def close(self) -> None:
        """Cancel what is running, disconnect, stop a LocalCluster we started. Safe twice."""
        if self._futures and self._client is not None:
            try:
                self._client.cancel(list(self._futures), force=True)
            except Exception:  # the cluster may be gone already
                pass
            self._futures.clear()
        for thread in self._restarts:  # let a restart after a timeout finish first
            thread.join(timeout=30)
        self._restarts = []
        if self._client is not None:
            self._client.close(timeout=10)
        if self._cluster is not None:
            self._cluster.close(timeout=20)
            self._cluster = None
        for name, value in self._environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._environ = {}
