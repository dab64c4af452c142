"""What one evaluation produced: the one record every part of evonas exchanges.

A :class:`Result` is a plain dict (a ``TypedDict``), so it crosses pipes, Dask and the journal
unchanged; :func:`make_result` is the only place one is built, whatever happened: a worker's
finished evaluation, a pool's timeout or dead worker, the search's cache hit.

Statuses:

``ok``          the evaluation finished and gave every objective a finite value
``failed``      an exception, a NaN loss, out of memory, a missing objective metric
``timeout``     it ran past ``pool.timeout``; its worker was replaced
``crashed``     its worker died on every attempt (SIGKILL, segfault, the OOM killer)
``pruned``      stopped early by a multi-fidelity rule (partial metrics kept)
``infeasible``  broke a constraint (checked before training where it can be)
"""
from __future__ import annotations

import math
import numbers
import time
from typing import Any, Optional, Sequence, TypedDict

OK, FAILED, TIMEOUT, CRASHED, PRUNED, INFEASIBLE = (
    "ok", "failed", "timeout", "crashed", "pruned", "infeasible")
STATUSES = (OK, FAILED, TIMEOUT, CRASHED, PRUNED, INFEASIBLE)


class Result(TypedDict, total=False):
    """One evaluation's outcome. ``values`` are the objective values in config order (``None``
    unless ``ok``); ``started`` / ``finished`` are wall-clock times (``time.time()``)."""

    index: int
    status: str
    values: Optional[list[float]]
    metrics: dict[str, Any]
    message: str
    error: str           # the exception's type, for a failed evaluation
    traceback: str
    started: float
    finished: float
    worker: Any          # local slot number or Dask worker address
    pid: int
    device: str          # as the evaluation saw it: cpu, cuda:0
    gpu: str             # the worker's CUDA_VISIBLE_DEVICES
    attempts: int
    retried: list[str]   # why earlier attempts ended
    out_of_memory: str   # host | cuda
    violation: float     # infeasible: the summed relative excess over the broken bounds
    violations: dict[str, dict[str, float]]  # infeasible: {metric: {value, max|min, by}}
    precheck: bool       # infeasible before training: nothing was trained
    epochs: int          # epochs trained by this evaluation (this step, under multi-fidelity)
    curve: list[dict[str, Any]]  # validation metrics per epoch: {"epoch", metric: value}
    checkpoint: bytes    # multi-fidelity, below the top rung: the state to continue from
    rung: int            # pruned: the epochs it reached


def make_result(index: int, status: str = OK, *, values: Optional[Sequence[float]] = None,
                metrics: Optional[dict[str, Any]] = None, message: str = "",
                started: Optional[float] = None, finished: Optional[float] = None,
                **where: Any) -> Result:
    """A :class:`Result`. ``started`` / ``finished`` default to now; ``where`` adds any of
    the optional fields (``worker``, ``pid``, ``device``, ``attempts``, ``traceback`` ...)."""
    if status not in STATUSES:
        raise ValueError(f"unknown result status {status!r}; one of {', '.join(STATUSES)}")
    now = time.time()
    result: Result = {"index": index, "status": status,
                      "values": list(values) if values is not None else None,
                      "metrics": dict(metrics or {}), "message": message,
                      "started": now if started is None else started,
                      "finished": now if finished is None else finished}
    unknown = set(where) - set(Result.__annotations__)
    if unknown:
        raise TypeError(f"make_result got unknown fields {sorted(unknown)}")
    result.update(where)  # type: ignore[typeddict-item]
    return result


def is_failure(status: str) -> bool:
    """Whether ``status`` says the evaluation went wrong (failed, timed out, crashed), rather
    than succeeded, broke a constraint or was stopped early on purpose."""
    return status not in (OK, INFEASIBLE, PRUNED)


def violation_of(result: dict[str, Any]) -> float:
    """How badly a result misses: 0 when ok, its constraint ``violation`` when infeasible, the
    number of rungs it fell short when pruned (see :mod:`evolution.fidelity`), ``inf`` when it
    has nothing to compare (failed, timed out, crashed). What Deb's rules rank non-ok results
    by (see :mod:`evolution.pareto`)."""
    if result.get("status") == OK:
        return 0.0
    if result.get("status") in (INFEASIBLE, PRUNED) and is_number(result.get("violation")):
        return float(result["violation"])
    return math.inf


def is_number(value: Any) -> bool:
    """A real, finite number (not a bool)."""
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def result_event(ask: dict[str, Any], result: Result) -> dict[str, Any]:
    """The journal's ``result`` event of ``result``: the ask's genome, canonical key and seed,
    every field of the result, ``cached`` false and the evaluation's wall ``seconds``."""
    event = {"event": "result", "index": ask["index"], "genome": ask["genome"],
             "key": ask["key"], "seed": ask["seed"], **result, "cached": False}
    event["seconds"] = (result.get("finished") or 0.0) - (result.get("started") or 0.0)
    return event


def cache_hit(ask: dict[str, Any], cached: dict[str, Any]) -> dict[str, Any]:
    """The ``result`` event of an ask answered by an earlier evaluation of the same
    architecture: its status, values, metrics and message, ``cached`` true and ``cache_of``
    naming the evaluation that trained it. Nothing was trained, so it takes no time."""
    now = time.time()
    extra = {k: cached[k] for k in ("violation", "violations", "rung")
             if cached.get(k) is not None}
    event = result_event(ask, make_result(ask["index"], cached["status"],
                                          values=cached["values"], metrics=cached["metrics"],
                                          message=cached["message"], started=now, finished=now,
                                          **extra))
    event.update(cached=True, cache_of=cached["index"])
    return event


def cache_entry(event: dict[str, Any]) -> dict[str, Any]:
    """What the cache keeps of a result event: enough to answer a later identical ask."""
    return {k: event.get(k) for k in ("index", "genome", "status", "values", "metrics",
                                      "message", "violation", "violations", "rung")}


def user_frames(traceback_text: str, most: int = 3) -> str:
    """The last ``most`` frames of a formatted traceback that lie in the user's own code (not
    in evonas, the standard library or installed packages), with the exception line: what to
    show of a failure the user's evaluator raised. Empty when no frame is the user's."""
    import os
    import sysconfig

    ours = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    skipped = [os.path.join(ours, name) for name in ("evolution", "genome", "training", "evonas")]
    skipped += [p for p in {sysconfig.get_path("stdlib"), sysconfig.get_path("purelib"),
                            sysconfig.get_path("platlib")} if p]
    lines = traceback_text.rstrip().splitlines()
    frames: list[list[str]] = []
    for line in lines:
        stripped = line.strip()
        if stripped.startswith('File "'):
            path = stripped[6:stripped.find('"', 6)]
            frames.append([line] if not any(os.path.abspath(path).startswith(p + os.sep)
                                            for p in skipped) else [])
        elif frames and frames[-1] and line.startswith("    ") and len(frames[-1]) < 2:
            frames[-1].append(line)
    mine = [f for f in frames if f][-most:]
    if not mine:
        return ""
    return "\n".join([*(line for frame in mine for line in frame), lines[-1]])
