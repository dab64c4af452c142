"""What a worker does with one task: plain dict in, plain dict out, never raises.

A task is ``{"index", "seed", "genome", "space", "data", "training"}`` (all JSON values); the
result is ``{"index", "status", "fitness", "metrics", "message", "started", "finished"}`` plus
``traceback`` for a failure. Status is ``ok`` or ``failed``; the pool adds ``crashed``.
"""
from __future__ import annotations

import logging
import math
import time
import traceback
from typing import Any, Mapping

log = logging.getLogger(__name__)


def evaluate_task(task: Mapping[str, Any]) -> dict[str, Any]:
    """Train and score ``task["genome"]``; any exception becomes a ``failed`` result."""
    from genome import genome_from_dict
    from training import NonFiniteLoss, load_dataset, score

    result: dict[str, Any] = {"index": task["index"], "status": "ok", "fitness": None,
                              "metrics": {}, "message": "", "started": time.time()}
    try:
        genome = genome_from_dict(task["genome"])
        data = load_dataset(task["data"])
        metrics, _ = score(genome, task["space"], data, task["training"], task["seed"])
        result["metrics"] = metrics
        result["fitness"] = metrics["val_accuracy"]
        if not math.isfinite(result["fitness"]):
            raise NonFiniteLoss(f"validation accuracy is {result['fitness']}")
    except NonFiniteLoss as exc:
        result.update(status="failed", fitness=None, message=str(exc))
    except Exception as exc:  # a failed evaluation is a result, not a crash of the run
        log.debug("evaluation %s failed", task["index"], exc_info=True)
        result.update(status="failed", fitness=None, message=f"{type(exc).__name__}: {exc}",
                      traceback=traceback.format_exc())
    result["finished"] = time.time()
    return result
