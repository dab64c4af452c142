"""The read side of a run directory: one reader that every consumer uses.

:class:`RunRecord` reads a run directory once (finished, stopped, or being written right now)
and answers what ``evonas status``, the report, export and resume ask: the frozen config and
its objectives, every ask and result, the generations and windows, the best distinct
architectures ranked by :meth:`Objectives.rank_key`, counts, time spent and whether the run is
running, stopped or finished. It never changes the directory. Results are the journal's
``result`` events (one per evaluation index, in the order the search applied them), in the
current format (:func:`evolution.journal.upgrade`).
"""
from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Optional

from evolution.journal import (CONFIG, JOURNAL, RunDirectoryError, lock_owner, read_events,
                               upgrade)
from evolution.objectives import Objectives
from evolution.results import INFEASIBLE, OK, PRUNED, is_failure

log = logging.getLogger(__name__)

SUMMARY = "summary.json"
BEST = "best"


@dataclass
class Group:
    """One generation or window: its kind, the generation number (genetic), the indices of the
    results told in it, and whether the strategy closed it (an open group is the tail of an
    unfinished run)."""

    kind: str
    results: list[int] = field(default_factory=list)
    generation: Optional[int] = None
    closed: bool = True


class RunRecord:
    """Everything a run directory says, read once. ``events`` defaults to the journal on disk
    (a torn last line, as while a run writes, is left out)."""

    def __init__(self, path: str | os.PathLike, events: Optional[list[dict[str, Any]]] = None):
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunDirectoryError(f"run directory {str(self.path)!r} does not exist; give the "
                                    f"folder `evonas run` created, e.g. runs/<name>")
        if events is None:
            if not (self.path / JOURNAL).is_file():
                raise RunDirectoryError(f"{str(self.path)!r} is not an evonas run directory: it "
                                        f"has no {JOURNAL} (give the folder `evonas run` "
                                        f"created, e.g. runs/<name>)")
            events = read_events(self.path)[0]
        self.events = [upgrade(e) for e in events]
        self.asks: dict[int, dict[str, Any]] = {}
        by_index: dict[int, dict[str, Any]] = {}
        for event in self.events:
            kind, index = event.get("event"), event.get("index")
            if kind == "ask" and isinstance(index, int):
                self.asks[index] = event
            elif kind == "result" and isinstance(index, int):
                by_index.setdefault(index, event)  # a replayed duplicate keeps its first place
        self.results: list[dict[str, Any]] = list(by_index.values())
        rungs = {(e["index"], e.get("rung")): e for e in self.events
                 if e.get("event") == "rung" and isinstance(e.get("index"), int)}
        self.rungs: list[dict[str, Any]] = list(rungs.values())  # multi-fidelity promotions

    # ------------------------------------------------------------------ config
    @cached_property
    def config(self) -> Any:
        """The frozen :class:`~evolution.config.Config` (``config.yaml``)."""
        from evolution.config import load_config

        if not (self.path / CONFIG).is_file():
            raise RunDirectoryError(f"{str(self.path)!r} is not an evonas run directory: it "
                                    f"has no {CONFIG} (give the folder `evonas run` created, "
                                    f"e.g. runs/<name>)")
        return load_config(self.path / CONFIG)

    @cached_property
    def objectives(self) -> Objectives:
        return Objectives.from_config(self.config)

    # ------------------------------------------------------------------ results
    @property
    def ok(self) -> list[dict[str, Any]]:
        """Results with status ok (every objective has a finite value)."""
        return [r for r in self.results if r.get("status") == OK and r.get("values")]

    @property
    def not_ok(self) -> list[dict[str, Any]]:
        """Failed, crashed, timed-out, pruned and infeasible results."""
        return [r for r in self.results if not (r.get("status") == OK and r.get("values"))]

    @property
    def in_flight(self) -> list[int]:
        """Evaluations asked without a result yet (running, or interrupted by a stop)."""
        told = {r["index"] for r in self.results}
        return sorted(i for i in self.asks if i not in told)

    def best(self, k: Optional[int] = None) -> list[dict[str, Any]]:
        """The ``k`` (default: all) best distinct architectures, best first.

        One result per canonical key: the evaluation that trained it (not a cache hit), whose
        ``seed`` reproduces its metrics; ranked by the run's :meth:`Objectives.rank_key`
        (objective values, then lower validation loss, then earlier index)."""
        chosen: dict[str, dict[str, Any]] = {}
        for result in self.ok:
            if result.get("cached"):
                continue
            key = result.get("key") or json.dumps(result.get("genome"), sort_keys=True)
            if key not in chosen:
                chosen[key] = result
        ranked = self.objectives.rank(chosen.values())
        return ranked if k is None else ranked[:k]

    def front(self) -> list[dict[str, Any]]:
        """The distinct architectures no other dominates (several objectives; with one, the
        best and its ties), ranked by :meth:`Objectives.rank_key`."""
        return list(self.objectives.front(self.best()))

    def hypervolumes(self) -> list[tuple[int, float]]:
        """``(results so far, hypervolume)`` at every generation or window that measured the
        front (several objectives), in journal order."""
        out, seen = [], set()
        for event in self.events:
            kind = event.get("event")
            if kind == "result" and isinstance(event.get("index"), int):
                seen.add(event["index"])
            elif kind in ("generation", "window") and event.get("hypervolume") is not None:
                out.append((len(seen), float(event["hypervolume"])))
        return out

    @property
    def reference(self) -> Optional[list[float]]:
        """The hypervolume's reference point (several objectives), once the run fixed it."""
        for event in reversed(self.events):
            if event.get("event") in ("generation", "window") and event.get("reference"):
                return list(event["reference"])
        return None

    def counts(self) -> dict[str, Any]:
        """The run loop's counts (:data:`evolution.loop.COUNTS`) and results by status."""
        cached = sum(bool(r.get("cached")) for r in self.results)
        skipped = sum(bool(r.get("precheck")) and not r.get("cached") for r in self.results)
        return {"evaluations": len(self.results), "trained": len(self.results) - cached - skipped,
                "cache_hits": cached, "skipped": skipped,
                "infeasible": sum(r.get("status") == INFEASIBLE for r in self.results),
                "failures": sum(is_failure(r.get("status", "?")) for r in self.results),
                "pruned": sum(r.get("status") == PRUNED for r in self.results),
                "epochs": sum(e.get("epochs") or 0 for e in [*self.rungs, *self.results]
                              if not e.get("cached")),
                "statuses": dict(Counter(r.get("status", "?") for r in self.results))}

    # ------------------------------------------------------------------ groups
    def groups(self, tail: int) -> list[Group]:
        """The generations (genetic) or windows (aging, random) as the strategy closed them,
        then the results told after the last one split into open groups of ``tail``."""
        groups: list[Group] = []
        current: list[int] = []
        seen: set[int] = set()
        for event in self.events:
            kind = event.get("event")
            if kind == "result" and isinstance(event.get("index"), int):
                if event["index"] not in seen:
                    seen.add(event["index"])
                    current.append(event["index"])
            elif kind in ("generation", "window") and current:
                groups.append(Group(kind, current, event.get("generation")))
                current = []
        kind = groups[-1].kind if groups else "window"
        for start in range(0, len(current), max(tail, 1)):
            groups.append(Group(kind, current[start:start + tail], closed=False))
        return groups

    # ------------------------------------------------------------------ the run
    @cached_property
    def summary(self) -> Optional[dict[str, Any]]:
        """``summary.json`` of a finished run, else ``None``."""
        return _read_json(self.path / SUMMARY)

    @cached_property
    def final(self) -> dict[str, Any]:
        """The metrics of the best genome retrained at the end of the run (``best/``), else
        empty."""
        settings = _read_json(self.path / BEST / "settings.json") or {}
        return dict(settings.get("metrics") or {})

    @property
    def owner(self) -> Optional[int]:
        """The pid of a live process driving the run, else ``None``."""
        return lock_owner(self.path)

    @property
    def is_finished(self) -> bool:
        """The search ended and wrote its summary, and nothing is driving it now."""
        return self.owner is None and self.summary is not None \
            and len(self.results) >= self.config.strategy.budget

    @property
    def state(self) -> str:
        """``running (pid N)``, ``finished`` or ``stopped``."""
        owner = self.owner
        if owner is not None:
            return f"running (pid {owner})"
        return "finished" if self.is_finished else "stopped"

    def times(self) -> list[float]:
        """Wall-clock times of every event that has one (journal order)."""
        out = []
        for event in self.events:
            for name in ("time", "finished"):
                if isinstance(event.get(name), (int, float)):
                    out.append(float(event[name]))
        return out

    def seconds(self) -> float:
        """Wall time the run's sessions took (see :func:`sessions_seconds`)."""
        return sessions_seconds(self.events)

    @property
    def sessions(self) -> int:
        return sum(e.get("event") == "session" for e in self.events)


def sessions_seconds(events: list[dict[str, Any]]) -> float:
    """Wall time of every session of a journal, summed: each from its process's start (the
    ``session`` event's ``started``: starting workers and loading data included) to its last
    event (the ``end`` event after the final training, for a session that finished)."""
    spent, begin, last = 0.0, None, None
    for event in events:
        when = event.get("time")
        if not isinstance(when, (int, float)):
            continue
        if event.get("event") == "session":
            if begin is not None:
                spent += last - begin
            begin = event.get("started", when)
        last = when
    if begin is not None:
        spent += last - begin
    return spent


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s); ignoring it", path, exc)
        return None
    return data if isinstance(data, dict) else None
