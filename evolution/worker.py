"""What a worker does with one task: plain dict in, plain dict out, never raises.

A task is ``{"index", "seed", "genome", "space", "data", "training", "evaluator", "objective"}``
(all JSON values); the result is ``{"index", "status", "fitness", "metrics", "message",
"started", "finished"}`` plus ``traceback`` for a failure. Status is ``ok`` or ``failed``; the
pool adds ``crashed``. Without an evaluator the built-in trainer scores the genome.
"""
from __future__ import annotations

import logging
import time
import traceback
from typing import Any, Mapping

log = logging.getLogger(__name__)


def evaluator_settings(task: Mapping[str, Any]) -> dict[str, Any]:
    """What a user evaluator receives besides the genome: the evaluation settings, the
    evaluation's seed and index, and the search space's decoder settings."""
    return {**task["training"], "seed": task["seed"], "index": task["index"],
            "space": task["space"]}


def _metrics(task: Mapping[str, Any]) -> dict[str, Any]:
    from genome import genome_from_dict

    genome = genome_from_dict(task["genome"])
    if task.get("evaluator"):
        from evolution.evaluator import call_evaluator

        return call_evaluator(task["evaluator"], genome, evaluator_settings(task),
                              task["objective"])
    from training import load_dataset, score

    metrics, _ = score(genome, task["space"], load_dataset(task["data"]), task["training"],
                       task["seed"])
    return metrics


def evaluate_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Evaluate ``task["genome"]``; any exception becomes a ``failed`` result."""
    from genome.errors import EvonasError

    result: dict[str, Any] = {"index": task["index"], "status": "ok", "fitness": None,
                              "metrics": {}, "message": "", "started": time.time()}
    try:
        result["metrics"] = _metrics(task)
        result["fitness"] = result["metrics"][task.get("objective", "val_accuracy")]
    except EvonasError as exc:  # ours (NaN loss, bad evaluator value): the message says it all
        result.update(status="failed", fitness=None, message=f"{type(exc).__name__}: {exc}")
    except Exception as exc:  # a failed evaluation is a result, not a crash of the run
        log.debug("evaluation %s failed", task["index"], exc_info=True)
        result.update(status="failed", fitness=None, message=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    result["finished"] = time.time()
    return result
