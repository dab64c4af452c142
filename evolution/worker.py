"""What a worker does with one task: plain dict in, plain dict out, never raises.

A task is ``{"index", "seed", "genome", "space", "task", "data", "evaluation", "evaluator",
"objectives"}`` (all JSON values; ``task`` names what the model is trained for, ``objectives``
lists the metric names whose values the result carries), plus ``device`` (``"cpu"`` or ``"cuda:0"``: the device the evaluation must use
*inside* this worker, whose ``CUDA_VISIBLE_DEVICES`` holds only its own GPU) when a pool sets
it. The result is a :class:`~evolution.results.Result`: status ``ok`` or ``failed`` here (the
pools add ``timeout`` and ``crashed``), ``values``, ``metrics``, ``message`` (and
``traceback``), ``started`` and ``finished``. Without an evaluator the built-in trainer scores
the genome.

:func:`serve` is the loop of one local worker process (see ``evolution.pool.local``); the
worker imports nothing from the pool.
"""
from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
import traceback
from typing import Any, Mapping

from evolution.evaluator import shipped_for
from evolution.results import FAILED, INFEASIBLE, OK, Result, make_result

log = logging.getLogger(__name__)

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def set_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch (and BLAS/OpenMP libraries started later)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.get_num_interop_threads() != 1:
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set once torch ran parallel work in this process
            pass


def make_task(config: Any, space: Mapping[str, Any], *, index: int, seed: int,
              genome: Mapping[str, Any]) -> dict[str, Any]:
    """The task of evaluation ``index`` of ``genome`` (its dict form) with ``seed``, under the
    run's ``config`` and decoder ``space``: the one place a task is put together."""
    return {"index": index, "seed": seed, "genome": dict(genome), "space": dict(space),
            "task": config.task.name, "data": config.data.model_dump(mode="json"),
            "evaluation": config.evaluation.model_dump(mode="json"),
            "evaluator": config.evaluation.evaluator,
            "objective": shipped_for(config.evaluation.evaluator),  # a callable's, serialised
            "objectives": [o.metric for o in config.objectives],
            "constraints": {m: c.model_dump(exclude_none=True)
                            for m, c in config.constraints.items()}}


def evaluator_settings(task: Mapping[str, Any]) -> dict[str, Any]:
    """What a user evaluator receives besides the genome: the evaluation settings, the
    evaluation's seed and index, the search space's decoder settings, and the device it
    should use (``"cpu"``, or ``"cuda:0"`` in a GPU worker)."""
    return {**task["evaluation"], "seed": task["seed"], "index": task["index"],
            "space": task["space"], "device": task.get("device", "cpu")}


def _metrics(task: Mapping[str, Any], constraints: Any) -> dict[str, Any]:
    """The metrics of one evaluation (one step of it under multi-fidelity, where
    ``task["fidelity"]`` says the epochs it trains from and to, and holds the checkpoint to
    continue from): the evaluator's, or the built-in trainer's with its learning curve
    (``curve``), the epochs this step trained (``epochs_trained``) and, below the top rung,
    the checkpoint to continue from (``checkpoint``, bytes)."""
    from evolution.fidelity import task_step
    from evolution.tuning import split
    from genome import genome_from_dict

    genome, searched = split(genome_from_dict(task["genome"]))  # tuned: settings searched
    evaluation = {**task["evaluation"], **searched}
    step = task_step(task, evaluation["epochs"])
    task = {**task, "evaluation": {**evaluation, "epochs": step["stop"]}}
    if task.get("evaluator"):
        from evolution.evaluator import call_evaluator

        curve: list[dict[str, Any]] = []
        settings = {**evaluator_settings(task), "start_epoch": step["start"],
                    "report": reporter(curve, task["objectives"])}
        metrics = call_evaluator(task["evaluator"], genome, settings, task["objectives"],
                                 shipped=task.get("objective"))
        return {**metrics, "curve": curve, "epochs_trained": step["stop"] - step["start"]}
    from training import load_dataset, score

    metrics, _ = score(genome, task["space"], load_dataset(task["data"]),
                       {**evaluation, "epochs": step["top"]}, task["seed"],
                       device=task.get("device", "cpu"), task=task["task"],
                       before_training=constraints.check_before_training if constraints
                       else None,
                       measure={*task["objectives"], *(task.get("constraints") or {})},
                       stop_epoch=step["stop"], resume=step["checkpoint"],
                       checkpoint=step["stop"] < step["top"], curve=True)
    return metrics


def reporter(curve: list[dict[str, Any]], objectives: list[str]) -> Any:
    """The ``report(epoch, metrics)`` callback a user evaluator receives in its settings, as
    Optuna's ``trial.report``: each call adds a point to the evaluation's learning curve
    (``metrics``: a dict of numbers, or one number, the first objective's value)."""
    from evolution.evaluator import EvaluatorError
    from evolution.results import is_number

    def report(epoch: int, metrics: Any) -> None:
        if isinstance(metrics, (int, float)) and not isinstance(metrics, bool):
            metrics = {objectives[0]: metrics}
        if not isinstance(metrics, Mapping) or not all(map(is_number, metrics.values())):
            raise EvaluatorError(f"report({epoch!r}, ...) takes a number or a dict of finite "
                                 f"numbers, got {str(metrics)[:80]}")
        curve.append({"epoch": int(epoch), **{k: float(v) for k, v in metrics.items()}})
    return report


def _is_cuda_oom(exc: BaseException) -> bool:
    torch = sys.modules.get("torch")
    oom = getattr(getattr(torch, "cuda", None), "OutOfMemoryError", None)
    return oom is not None and isinstance(exc, oom)


def _release_memory(cuda: bool) -> None:
    """Drop what a failed evaluation left behind; after a CUDA out-of-memory error also
    return the caching allocator's blocks to the GPU, so the next evaluation starts clean."""
    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()


def evaluate_task(task: Mapping[str, Any], *, in_worker: bool = False) -> Result:
    """Evaluate ``task["genome"]``; any exception becomes a ``failed`` result, and so does a
    result without a finite value for every objective metric. ``sys.exit()`` in the evaluation
    is its failure too; so is ``KeyboardInterrupt`` ``in_worker`` (a worker process ignores
    Ctrl-C, so only the evaluation can have raised it; in the run's own process it is the
    user's Ctrl-C and goes through).

    ``MemoryError`` (for example from ``pool.memory_limit_mb``) and CUDA out-of-memory are
    ``failed`` too; after either the worker collects garbage (and empties the CUDA cache), so
    it can take the next task.

    With ``task["constraints"]``, a result that breaks one is ``infeasible`` (with its
    ``violation`` and ``violations``); the built-in trainer checks them before training where
    it can (``precheck``: nothing was trained)."""
    from evolution.constraints import Constraints, Infeasible, describe
    from evolution.objectives import values_of
    from genome.errors import EvonasError

    started = time.time()
    index = task["index"]
    constraints = Constraints.from_dict(task.get("constraints"))
    release = None
    try:
        metrics = _metrics(task, constraints)
        steps = {k: metrics.pop(k) for k in ("curve", "checkpoint", "epochs_trained")
                 if k in metrics}
        violation, broken = constraints.check(metrics)
        if broken:
            result = make_result(index, INFEASIBLE, metrics=metrics, message=describe(broken),
                                 started=started, violation=violation, violations=broken)
        else:
            result = make_result(index, OK, values=values_of(metrics, task["objectives"]),
                                 metrics=metrics, started=started)
        if steps.get("curve"):
            result["curve"] = steps["curve"]
        if steps.get("checkpoint") is not None:
            result["checkpoint"] = steps["checkpoint"]
        result["epochs"] = steps.get("epochs_trained", 0)
    except Infeasible as exc:  # broke a constraint before training: nothing was trained
        result = make_result(index, INFEASIBLE, metrics=exc.metrics, message=str(exc),
                             started=started, violation=exc.violation,
                             violations=exc.violations, precheck=True)
    except EvonasError as exc:  # ours (NaN loss, bad evaluator value): the message says it all
        result = make_result(index, FAILED, message=f"{type(exc).__name__}: {exc}",
                             started=started, error=type(exc).__name__)
    except (Exception, SystemExit, KeyboardInterrupt) as exc:  # a result, not a crash
        if isinstance(exc, KeyboardInterrupt) and not in_worker:
            raise
        log.debug("evaluation %s failed", index, exc_info=True)
        what = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, SystemExit):  # the evaluator called sys.exit(): its failure
            what = f"SystemExit: the evaluation called sys.exit({exc.code!r})"
        result = make_result(index, FAILED, message=what, started=started,
                             error=type(exc).__name__, traceback=traceback.format_exc())
        if isinstance(exc, MemoryError) or _is_cuda_oom(exc):
            release = _is_cuda_oom(exc)
            result["out_of_memory"] = "cuda" if release else "host"
    if release is not None:  # outside the except block: the traceback's frames are gone
        _release_memory(cuda=release)
    result["finished"] = time.time()
    return result


def where(device: str) -> dict[str, Any]:
    """What a result says about where it ran: ``device`` as the evaluation saw it, and for a
    GPU the worker's ``CUDA_VISIBLE_DEVICES`` (the machine's GPU id)."""
    out: dict[str, Any] = {"device": device}
    if device != "cpu":
        out["gpu"] = os.environ.get("CUDA_VISIBLE_DEVICES")
    return out


def data_megabytes() -> float:
    """This process's data segment (heap and private anonymous mappings), the size that
    ``RLIMIT_DATA`` bounds, in MiB (0 where /proc is not available)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def limit_memory(megabytes: int) -> None:
    """Cap this process's data segment at ``megabytes`` MiB (``RLIMIT_DATA``): a larger
    allocation fails with ``MemoryError`` (or torch's "can't allocate memory") instead of
    pushing the machine into swap or the OOM killer. ``RLIMIT_DATA`` rather than
    ``RLIMIT_AS``: CUDA reserves far more address space than it uses, which ``RLIMIT_AS``
    would refuse, while reserved (not writable) mappings do not count towards data."""
    import resource

    limit = megabytes * 2**20
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))


def serve(conn: Any, worker_id: int, threads: int, device: str,
          memory_limit_mb: int | None) -> None:
    """The loop of one local worker process.

    Sends ``("ready", {"pid", "memory_mb"})``; then for every task ``("started", index)``,
    evaluates it on ``device`` and sends ``("result", result)`` with ``worker``, ``pid`` and
    ``device`` added; ``None`` (or the parent going away) ends it. Ctrl-C is the parent's to handle: the worker
    ignores SIGINT and the parent stops it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.setpgid(0, 0)  # its own process group: what an evaluation forks dies with the worker
    set_threads(threads)
    memory = data_megabytes()  # after importing torch: what a worker holds before any task
    if memory_limit_mb is not None:
        limit_memory(memory_limit_mb)
    try:
        conn.send(("ready", {"pid": os.getpid(), "memory_mb": memory}))
        while True:
            task = conn.recv()
            if task is None:
                return
            conn.send(("started", task["index"]))
            result = evaluate_task({**task, "device": device}, in_worker=True)
            result.update(worker=worker_id, pid=os.getpid(), **where(device))
            conn.send(("result", result))
    except (EOFError, BrokenPipeError, ConnectionResetError):  # the parent is gone
        return
