"""What a run directory says about its run, read without changing it (``evonas status``)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from evolution.constraints import Constraints
from evolution.curves import rung_table
from evolution.fidelity import Fidelity
from evolution.record import RunRecord
from genome import genome_from_dict


def run_status(run_dir: str | Path, top: int = 5) -> dict[str, Any]:
    """Progress against the budget, the best genomes (ranked as the report and export rank
    them), failures by status, time spent, and whether the run is ``finished``, ``running``
    (a live process holds its lock) or ``stopped``; with several objectives the current
    Pareto front and its hypervolume. With a multi-fidelity rule, ``rungs``: per rung (the top
    last) the candidates that reached it, were promoted and pruned there, and the rank
    correlation of its values with the final ones (:func:`evolution.curves.rung_table`)."""
    from evolution.strategies import STRATEGIES

    record = RunRecord(run_dir)
    config = record.config
    counts = record.counts()
    key = STRATEGIES[config.strategy.name].budget_key
    several = len(record.objectives) > 1
    hypervolumes = record.hypervolumes()
    return {
        "run_dir": str(record.path), "state": record.state, "strategy": config.strategy.name,
        "budget_key": key, "budget_value": getattr(config.strategy, key),
        "objectives": [str(o) for o in record.objectives],
        "completed": counts["evaluations"], "budget": config.strategy.budget,
        "in_flight": len(record.in_flight), "statuses": counts["statuses"],
        "cache_hits": counts["cache_hits"], "trained": counts["trained"],
        "epochs": counts["epochs"], "pruned": counts["pruned"],
        "epochs_budget": (f" of fidelity.budget_epochs {config.fidelity.budget_epochs:,}"
                          if config.fidelity.budget_epochs else ""),
        "fidelity": (f"{config.fidelity.rule}, rungs at {Fidelity(config, 1.0).rungs} epochs"
                     if config.fidelity.rule != "none" else None),
        "rungs": [rung.to_dict() for rung in rung_table(record)],
        "sessions": record.sessions,
        "seconds": record.seconds(),
        "best": [{"index": e["index"], "values": e["values"],
                  "params": e["metrics"].get("params"),
                  "genome": genome_from_dict(e["genome"]).to_string()}
                 for e in record.best(top)],
        "test_accuracy": record.final.get("test_accuracy"),
        "constraints": str(Constraints.from_config(config)),
        "front": [{"index": e["index"], "values": e["values"], "genome": e["genome"]}
                  for e in record.front()] if several else [],
        "hypervolume": hypervolumes[-1][1] if hypervolumes else None,
        "reference": record.reference,
    }
