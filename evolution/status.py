"""What a run directory says about its run, read without changing it (``evonas status``)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from evolution.journal import CONFIG, RunDirectoryError, lock_owner, read_events


def run_status(run_dir: str | Path, top: int = 5) -> dict[str, Any]:
    """Progress against the budget, the best genomes, failures by status, time spent, and
    whether the run is ``finished``, ``running`` (a live process holds its lock) or
    ``stopped``."""
    from evolution.config import load_config
    from genome import genome_from_dict

    path = Path(run_dir)
    if not (path / CONFIG).is_file():
        raise RunDirectoryError(f"{path} is not a run directory (no {CONFIG})")
    config = load_config(path / CONFIG)
    events, _ = read_events(path)
    results = [e for e in events if e["event"] == "result"]
    best: dict[str, dict[str, Any]] = {}
    for e in results:
        if e["status"] == "ok" and (e["key"] not in best
                                    or e["fitness"] > best[e["key"]]["fitness"]):
            best[e["key"]] = e
    ranked = sorted(best.values(), key=lambda e: (-e["fitness"], e["index"]))[:top]
    sessions = [e["time"] for e in events if e["event"] == "session"]
    times = [e["time"] for e in events if isinstance(e.get("time"), (int, float))]
    # time spent: each session from its start to its last event
    spent, bounds = 0.0, sessions + [float("inf")]
    for begin, end in zip(bounds, bounds[1:]):
        inside = [t for t in times if begin <= t < end]
        spent += (max(inside) - begin) if inside else 0.0
    owner = lock_owner(path)
    budget = config.strategy.budget
    if owner is not None:
        state = f"running (pid {owner})"
    elif len(results) >= budget and (path / "summary.json").exists():
        state = "finished"
    else:
        state = "stopped"
    summary = json.loads((path / "summary.json").read_text()) \
        if (path / "summary.json").exists() else None
    return {
        "run_dir": str(path), "state": state, "strategy": config.strategy.name,
        "completed": len(results), "budget": budget,
        "in_flight": sum(e["event"] == "ask" for e in events) - len(results),
        "statuses": dict(Counter(e["status"] for e in results)),
        "cache_hits": sum(bool(e.get("cached")) for e in results),
        "sessions": len(sessions), "seconds": spent,
        "best": [{"index": e["index"], "fitness": e["fitness"],
                  "params": e["metrics"].get("params"),
                  "genome": genome_from_dict(e["genome"]).to_string()} for e in ranked],
        "test_accuracy": (summary or {}).get("final", {}).get("test_accuracy"),
    }
