"""The search loop: ask the strategy, evaluate on the pool, tell the strategy, record everything.

    strategy.ask ──► cache? ──► pool.submit(task) ──► pool.wait ──► journal ──► strategy.tell

Every asked genome gets the next evaluation index and a seed derived from (run seed, index), so
results do not depend on which worker ran what. Identical architectures (same canonical key;
settings are fixed per run) are trained once: later asks reuse the result and are journalled as
cache hits. A non-ok result is told to the strategy as ``None`` (worse than any values) and the
run goes on.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from evolution.config import Config, ConfigError
from evolution.journal import (CONFIG, FORMAT, IDENTITY, JOURNAL, SNAPSHOT, RunDirectory,
                               RunDirectoryError, differences, frozen_config, read_events,
                               read_snapshot)
from evolution.constraints import Constraints
from evolution.objectives import Objectives
from evolution.record import sessions_seconds
from evolution.pool import Pool, make_pool
from evolution.evaluator import EvaluatorError, check_resolvable
from evolution.fidelity import Fidelity
from evolution.pareto import Front
from evolution.results import (CRASHED, FAILED, INFEASIBLE, OK, PRUNED, cache_entry,
                               cache_hit, is_failure, result_event, user_frames, violation_of)
from evolution.strategies import STRATEGIES, Ask, make_strategy
from evolution.worker import make_task

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]
UNUSABLE = ("EvaluatorError", "MissingMetricError")
"""Failures that say the evaluator cannot work at all, not that a genome is bad."""
FAIL_FAST = 3
"""A run whose first this many evaluations raise the same exception in the user's code stops."""
ASKS_PER_BUDGET = 2
"""Without ``proposal.max_asks``, a run ends after this many times its budget in evaluations
(cache hits included): a search that only proposes what it has seen has converged."""
SNAPSHOT_SHARE = 20
"""A snapshot holds the cache, so it grows with the run: it is written at most every
``1 / SNAPSHOT_SHARE`` of the architectures evaluated so far (every 50 results at 1,000), which
keeps its cost per result flat and bounds what a resume replays to that share of the run."""
COUNTS = ("evaluations", "trained", "cache_hits", "skipped", "infeasible", "failures",
          "pruned", "epochs")
"""What a run counts: ``trained`` + ``cache_hits`` + ``skipped`` (infeasible before training)
= ``evaluations``; ``infeasible``, ``failures`` (failed, timed out, crashed) and ``pruned``
by status; ``epochs``: training epochs spent, every rung included."""


def derive_seed(run_seed: int, index: int) -> int:
    """The seed of evaluation ``index``: a stable 31-bit hash of (run seed, index)."""
    digest = hashlib.sha256(f"evonas:{run_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class RunSummary:
    """What a finished run found. ``best`` is ``None`` when no evaluation succeeded."""

    run_dir: Path
    evaluations: int
    trained: int
    cache_hits: int
    failures: int
    seconds: float
    best: Optional[dict[str, Any]] = None
    final: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"
    total_seconds: Optional[float] = None  # every session of the run; ``seconds``: this one
    evaluator: bool = False  # a user evaluator computed the metrics (nothing was trained)
    skipped: int = 0  # infeasible before training: not trained
    infeasible: int = 0
    front: list[dict[str, Any]] = field(default_factory=list)  # several objectives
    hypervolume: Optional[float] = None
    reference: Optional[list[float]] = None
    initial_hypervolume: Optional[float] = None  # the first generation's / window's front
    pruned: int = 0  # stopped at a rung (multi-fidelity)
    epochs: int = 0  # training epochs spent

    @property
    def best_genome(self) -> Optional[str]:
        """The best genome's text form."""
        from genome import genome_from_dict

        return genome_from_dict(self.best["genome"]).to_string() if self.best else None

    @property
    def primary(self) -> str:
        """The task's headline metric (``accuracy``), read from ``final`` as ``val_`` /
        ``test_`` + it."""
        from training.tasks import get_task

        return get_task(self.task).primary

    @property
    def best_values(self) -> Optional[list[float]]:
        """The best result's objective values, in config order."""
        return self.best["values"] if self.best else None

    def to_dict(self) -> dict[str, Any]:
        out = {"run_dir": str(self.run_dir), "evaluations": self.evaluations,
               "trained": self.trained, "cache_hits": self.cache_hits,
               "skipped": self.skipped, "infeasible": self.infeasible,
               "failures": self.failures, "pruned": self.pruned, "epochs": self.epochs,
               "seconds": self.seconds,
               "total_seconds": self.total_seconds, "best": self.best, "final": self.final}
        if self.reference is not None:
            out.update(front=self.front, hypervolume=self.hypervolume, reference=self.reference,
                       initial_hypervolume=self.initial_hypervolume)
        return out


class Search:
    """The loop over a given pool and run directory, without data loading or final training
    (which :func:`run` adds). Tests and benchmarks drive it with a trivial evaluator.

    Live, every ask and every applied result is journalled in the order it happens, so replaying
    the journal through a fresh strategy (same seed) rebuilds the search exactly: that is how a
    run resumes. A snapshot (``state.json``) shortens the replay. In deterministic mode (and
    with the serial pool) at most ``pool.workers`` evaluations are outstanding
    (:attr:`max_in_flight`) and results are applied in proposal order, so the journal does not
    depend on timing.
    """

    def __init__(self, config: Config, run_dir: RunDirectory, pool: Pool, space: dict[str, Any],
                 progress: Optional[Progress] = None):
        self.config, self.run_dir, self.pool = config, run_dir, pool
        self.progress = progress or (lambda event: None)
        self.rng = random.Random(config.seed)
        self.strategy = make_strategy(config, self.rng, history=self)
        self.max_asks = config.proposal.max_asks or ASKS_PER_BUDGET * config.strategy.budget
        self.objectives = Objectives.from_config(config)
        self.deterministic = config.deterministic or config.pool.backend == "serial"
        self.max_in_flight = config.pool.workers  # deterministic mode: asks not yet applied
        self.space = space
        self.next_index = 0
        self.asked: dict[int, dict[str, Any]] = {}       # index -> ask event, until applied
        self.cache: dict[str, dict[str, Any]] = {}       # key -> result that trained it
        self.observed: list[tuple[dict[str, Any], float, float]] = []  # for the surrogate
        self.best: Optional[dict[str, Any]] = None
        self.counts = dict.fromkeys(COUNTS, 0)
        self.front = Front(self.objectives.weights) if len(self.objectives) > 1 else None
        self.reference: Optional[list[float]] = None  # hypervolume's (several objectives)
        self.initial_hypervolume: Optional[float] = None  # at that first measurement
        self.group_counts: dict[str, int] = {}  # counts at the last generation / window
        self.unreferenced: list[list[float]] = []  # ok values until the reference is fixed
        self.constraints = Constraints.from_config(config)
        self.fidelity = Fidelity(config, self.objectives.weights[0])
        # transient: rebuilt from ``asked`` on resume, never snapshotted
        self.running: dict[str, int] = {}                # key -> index being trained
        self.waiting: dict[str, list[int]] = {}          # key -> indices waiting on it
        self.ready: deque[dict[str, Any]] = deque()      # tasks to submit when a slot frees
        self.held: dict[int, dict[str, Any]] = {}        # deterministic: results held for order
        self.reports: dict[int, dict[str, Any]] = {}     # deterministic: rung arrivals held
        self.replaying = False
        self._unwritten: list[dict[str, Any]] = []  # replay: strategy events not yet seen
        self._first_failures: Optional[list] = []  # live: the run's first, alike failures
        self._since_snapshot = 0

    # ------------------------------------------------------------------------------ live loop
    @property
    def done(self) -> bool:
        """The strategy has its results, or the run may ask no more (``max_asks`` asks, or
        ``fidelity.budget_epochs`` spent) and has every answer."""
        return self.strategy.done or (self.capped and not self.asked)

    @property
    def capped(self) -> bool:
        """The run asked ``max_asks`` times or spent ``fidelity.budget_epochs``: it starts
        no more candidates."""
        return self.next_index >= self.max_asks or self.fidelity.spent(self.counts["epochs"])

    # ----------------------------------------------------------------------- the history
    def known(self, key: str) -> bool:
        """Whether an architecture was evaluated (cached) or is asked and not yet applied."""
        return key in self.cache or any(e["key"] == key for e in self.asked.values())

    def observations(self) -> list[tuple[dict[str, Any], float, float]]:
        """Trained results that finished or were pruned, in training order (see
        :data:`evolution.surrogate.Observation`)."""
        return self.observed

    def _observe(self, entry: dict[str, Any]) -> None:
        """Keep a trained result for the surrogate: a finished one, or a pruned one with its
        value at the rung and the rungs it fell short (its violation)."""
        values, status = entry.get("values"), entry["status"]
        if status == OK:
            short = 0.0
        elif status == PRUNED and values and math.isfinite(values[0]):
            short = float(entry.get("violation") or 0.0)
        else:
            return
        self.observed.append((entry["genome"], values[0] * self.objectives.weights[0], short))

    # ------------------------------------------------------------------------------ live loop
    def loop(self) -> None:
        while not self.done:
            self._fill()
            self._drain()  # deterministic: cache hits held behind nothing that runs
            if self.done:
                break
            if not self.running and self.capped:
                break  # capped: what is left waits on nothing
            if not self.running:
                raise RuntimeError("search stalled: nothing is running and the strategy asks "
                                   "for nothing")
            for result in self.pool.wait():
                self._stop_if_unusable(result)
                self._arrived(result)
            self._drain()
        if not self.strategy.done and not self.fidelity.spent(self.counts["epochs"]):
            log.warning("the run made %d evaluations (%d trained, %d cache hits), its limit "
                        "proposal.max_asks: the strategy kept proposing architectures already "
                        "evaluated (a small space, or a converged search)", self.next_index,
                        self.counts["trained"], self.counts["cache_hits"])
        self.snapshot()

    def _fill(self) -> None:
        """Submit ready tasks, then ask for new genomes while a slot is free (deterministic
        mode: while fewer than ``pool.workers`` evaluations are outstanding)."""
        while not self.strategy.done:
            if self.ready and self.pool.free > 0:
                self.pool.submit(self.ready.popleft())
                continue
            if self.capped:
                return
            if self.deterministic:  # never ask on timing, only on what has been applied
                if len(self.asked) >= self.max_in_flight:
                    return
            elif self.ready or self.pool.free <= 0:
                return
            asks = self.strategy.ask(1)
            if not asks:
                return
            self._start(asks[0])

    def _stop_if_unusable(self, result: dict[str, Any]) -> None:
        """While nothing has succeeded, an evaluator that cannot be imported, returns the wrong
        type or lacks an objective's metric stops the run: every evaluation would fail alike.
        The result is not recorded (its ask stays outstanding), so once the evaluator is fixed
        ``evonas resume`` runs it again. This replaces a check before the run: the first
        evaluations are the check, in the workers, under the pool's timeout."""
        if (result.get("status") != FAILED or result.get("error") not in UNUSABLE
                or self.counts["evaluations"] > self.counts["failures"]):
            return
        raise EvaluatorError(
            f"evaluation {result['index']} could not use evaluation.evaluator "
            f"{self.config.evaluation.evaluator!r}: {result.get('message')}. Nothing was "
            f"recorded for it; fix the evaluator and continue with `evonas resume "
            f"{self.run_dir.path}`")

    def _stop_if_failing_alike(self, event: dict[str, Any]) -> None:
        """The first :data:`FAIL_FAST` evaluations all raised the same exception in the user's
        own code (an evaluator that fails on every genome): stop instead of spending the budget.
        They stay recorded as failures; fix the evaluator and start the run again."""
        if event["status"] != FAILED or self.counts["evaluations"] > self.counts["failures"]:
            self._first_failures = None  # a success, or something else: not failing alike
            return
        if self._first_failures is None:
            return
        frames = user_frames(event.get("traceback") or "")
        same = (frames and (not self._first_failures
                            or self._first_failures[0]["message"] == event["message"]))
        if not same:
            self._first_failures = None
            return
        self._first_failures.append(event)
        if len(self._first_failures) >= FAIL_FAST:
            raise EvaluatorError(
                f"the first {FAIL_FAST} evaluations all failed alike in your code: "
                f"{event['message']}\n{frames}\nThey are recorded as failures in "
                f"{self.run_dir.path}; fix the evaluator and start the run again")

    def _start(self, ask: Ask) -> None:
        index = self.next_index
        self.next_index += 1
        event = {"event": "ask", "index": index, "ticket": ask.ticket,
                 "seed": derive_seed(self.config.seed, index), "genome": ask.genome.to_dict(),
                 "key": ask.genome.key(), "time": time.time()}
        self.asked[index] = event
        self.strategy.proposer.handed(event["key"])
        self.run_dir.append(event)
        self._dispatch(index)

    def _dispatch(self, index: int) -> None:
        """Answer an outstanding ask from the cache, park it behind an identical one being
        trained, or send it to the pool."""
        key = self.asked[index]["key"]
        if key in self.cache:
            self._deliver(cache_hit(self.asked[index], self.cache[key]))
        elif self.running.get(key, index) != index:
            self.waiting.setdefault(key, []).append(index)
        else:
            self._submit(index)

    def _submit(self, index: int) -> None:
        """Send evaluation ``index`` to the pool: whole, or under multi-fidelity its next step,
        from its checkpoint when it was promoted at a rung."""
        event = self.asked[index]
        self.running[event["key"]] = index
        task = make_task(self.config, self.space, index=index, seed=event["seed"],
                         genome=event["genome"])
        if self.fidelity.active:
            start, stop = self.fidelity.steps(index)
            task["fidelity"] = {"start": start, "stop": stop, "top": self.fidelity.top,
                                "checkpoint": self.run_dir.read_checkpoint(index)
                                if self.fidelity.saved.get(index) else None}
        if self.pool.free > 0:
            self.pool.submit(task)
        else:
            self.ready.append(task)

    def _arrived(self, result: dict[str, Any]) -> None:
        """A result from the pool: a candidate at a rung below the top (a decision is due; in
        deterministic mode held for :meth:`_drain`), or an evaluation's final result."""
        event = result_event(self.asked[result["index"]], result)
        if self.fidelity.is_report(event):
            if self.deterministic:
                self.reports[event["index"]] = event
            else:
                self._decide(event)
            return
        event.pop("checkpoint", None)
        self._deliver(self.fidelity.with_curve(event))

    def _decide(self, event: dict[str, Any]) -> None:
        """The rule's decision on a candidate at a rung: promoted, its checkpoint is kept and a
        ``rung`` event journalled before its next step is submitted; stopped, its result is
        ``pruned`` with the metrics and curve it reached (see :mod:`evolution.fidelity`)."""
        index = event["index"]
        state = event.pop("checkpoint", None)
        promote, why = self.fidelity.decide(event)
        event = self.fidelity.with_curve(event)
        rung = self.fidelity.steps(index)[1]
        if not promote:
            self._apply({**event, "status": PRUNED, "rung": rung,
                         "violation": float(self.fidelity.rungs_short(rung)),
                         "message": f"pruned at epoch {rung}: {why}"})
            return
        if state is not None:  # a user evaluator keeps its own state, if any
            self.run_dir.write_checkpoint(index, state)  # before the journal says it exists
        promoted = {**{k: v for k, v in event.items() if k != "status"}, "event": "rung",
                    "rung": rung, "checkpoint": state is not None,
                    "message": f"promoted at epoch {rung}: {why}"}
        self.run_dir.append(promoted)
        self._promoted(promoted)
        self.progress(promoted)
        self._submit(index)

    def _promoted(self, event: dict[str, Any]) -> None:
        """Record a ``rung`` event, live or replayed."""
        self.fidelity.promoted(event)
        self.counts["epochs"] += event.get("epochs") or 0

    def _deliver(self, event: dict[str, Any]) -> None:
        """Apply a result now, or (deterministic mode) hold it for :meth:`_drain`."""
        if self.deterministic:
            self.held[event["index"]] = event
        else:
            self._apply(event)

    def _drain(self) -> None:
        """Deterministic mode: apply held results in proposal order, asking for new genomes
        after each one, so the order of asks and results never depends on timing."""
        while self.asked:
            first = min(self.asked)
            if first in self.held:
                self._apply(self.held.pop(first))
                self._fill()
            elif first in self.reports:  # multi-fidelity: rung decisions in proposal order
                self._decide(self.reports.pop(first))
                self._fill()
            else:
                break

    def _apply(self, event: dict[str, Any]) -> None:
        """Journal a result, update the cache and counts, tell the strategy. Replay calls this
        with journalled events, which are not written again."""
        index = event["index"]
        ask = self.asked.pop(index)
        key = ask["key"]
        if not self.replaying:
            self.run_dir.append(event)
        status = event["status"]
        self._count(event)
        if not event["cached"]:
            self.fidelity.finished(event)
            self.run_dir.drop_checkpoint(index)
            if self.running.get(key) == index:
                del self.running[key]
            if status != CRASHED:  # a crash is not the architecture's fault
                self.cache[key] = cache_entry(event)
            self._observe(event)
        ok = status == OK
        if ok:
            if self.best is None or (self.objectives.rank_key(event)
                                     < self.objectives.rank_key(self.best)):
                self.best = event
            if self.front is not None and self.reference is None:
                self.unreferenced.append(event["values"])
            if self.front is not None and not event["cached"]:
                self.front.add(event["values"], {k: event[k] for k in
                                                 ("index", "genome", "key", "values")})
        if not self.replaying:
            self._stop_if_failing_alike(event)
        if not self.replaying:
            self.progress({**event, "best": self.best and self.best["values"][0],
                           **self.counts, "running": self.pool.running,
                           "utilization": self.pool.utilization})
        if event.get("curve") and not event["cached"]:
            self.strategy.tell_curve(ask["ticket"], event["curve"])
        tell = self.strategy.tell_repeat if event["cached"] else self.strategy.tell
        extras = [self._measured(extra) for extra in tell(
            ask["ticket"], event["values"] if ok or status == PRUNED else None,
            violation=0.0 if ok else violation_of(event))]
        if self.replaying:
            self._unwritten += extras  # replay checks them against the journal
            return
        for extra in extras:
            self.run_dir.append({**extra, "time": time.time()})
            self.progress(extra)
        self._since_snapshot += 1
        if ((extras or self._since_snapshot >= self.config.snapshot_every)
                and self._since_snapshot >= len(self.cache) // SNAPSHOT_SHARE):
            self.snapshot()
        if not event["cached"]:
            waiting = self.waiting.pop(key, [])
            if event["status"] == CRASHED and waiting:  # train it again for those waiting
                self._submit(waiting[0])
                if waiting[1:]:
                    self.waiting[key] = waiting[1:]
            else:
                for other in waiting:
                    self._deliver(cache_hit(self.asked[other], self.cache[key]))

    def _count(self, event: dict[str, Any]) -> None:
        """Count an applied result: every one is an evaluation; it was trained unless a cache
        hit answered it or a constraint refused it before training (``skipped``)."""
        counts, status = self.counts, event["status"]
        counts["evaluations"] += 1
        if event["cached"]:
            counts["cache_hits"] += 1
        elif event.get("precheck"):
            counts["skipped"] += 1
        else:
            counts["trained"] += 1
            counts["epochs"] += event.get("epochs") or 0
        if status == INFEASIBLE:
            counts["infeasible"] += 1
        elif status == PRUNED:
            counts["pruned"] += 1
        elif is_failure(status):
            counts["failures"] += 1

    def _measured(self, extra: dict[str, Any]) -> dict[str, Any]:
        """A strategy's generation / window event with how many results since the previous
        one failed or were infeasible, and with several objectives the run's front: its size
        and hypervolume against the reference point, fixed at the first such event with a
        feasible result (the objectives' ``reference`` values where given)."""
        since = {k: self.counts[k] - self.group_counts.get(k, 0)
                 for k in ("failures", "infeasible")}
        self.group_counts = {k: self.counts[k] for k in since}
        extra = {**extra, **since}
        if self.front is None or not self.front:
            return extra
        if self.reference is None:
            self.reference = self.objectives.reference(self.unreferenced, self.constraints)
            self.unreferenced = []
        hypervolume = self.front.hypervolume(self.reference)
        if self.initial_hypervolume is None:
            self.initial_hypervolume = hypervolume
        return {**extra, "front": len(self.front), "hypervolume": hypervolume,
                "reference": self.reference}

    def front_summary(self) -> dict[str, Any]:
        """Several objectives: the front (its members ranked by :meth:`Objectives.rank_key`,
        each with the evaluation that found it), its hypervolume and the reference point."""
        if self.front is None or not self.front:
            return {}
        reference = self.reference or self.objectives.reference(self.unreferenced,
                                                                self.constraints)
        return {"front": [dict(m) for m in self.objectives.rank(
                    {**item, "status": OK} for item in self.front.items)],
                "hypervolume": self.front.hypervolume(reference), "reference": reference,
                "initial_hypervolume": self.initial_hypervolume}

    # --------------------------------------------------------------------------- persistence
    def snapshot(self) -> None:
        """Write ``state.json``: the strategy (with its RNG), the outstanding asks, the cache
        and counts, and how many journal lines they cover."""
        self.run_dir.write_snapshot({
            "strategy": self.strategy.state_dict(),
            "search": {"next_index": self.next_index, "asked": list(self.asked.values()),
                       "cache": self.cache, "best": self.best, "counts": self.counts,
                       "front": self.front.members if self.front is not None else None,
                       "reference": self.reference, "unreferenced": self.unreferenced,
                       "initial_hypervolume": self.initial_hypervolume,
                       "group_counts": self.group_counts,
                       "fidelity": self.fidelity.state_dict()}})
        self._since_snapshot = 0

    def load_snapshot(self, state: dict[str, Any]) -> None:
        self.strategy.load_state_dict(state["strategy"])
        search = state["search"]
        self.next_index = search["next_index"]
        self.asked = {event["index"]: event for event in search["asked"]}
        self.cache, self.best = search["cache"], search["best"]
        self.counts = {**dict.fromkeys(COUNTS, 0), **search["counts"]}
        self.fidelity.load_state_dict(search.get("fidelity"))
        self.strategy.budget = self.config.strategy.budget + self.counts["cache_hits"]
        self.observed = []
        for entry in self.cache.values():  # in the order they were trained
            self._observe(entry)
        self.strategy.proposer.pending.clear()  # what it proposed is asked (or replayed)
        if self.front is not None:
            self.front.members = [(list(v), i) for v, i in search["front"]]
        self.reference, self.group_counts = search["reference"], search["group_counts"]
        self.unreferenced = search["unreferenced"]
        self.initial_hypervolume = search["initial_hypervolume"]

    def replay(self, events: list[dict[str, Any]]) -> None:
        """Re-apply journalled asks and results through the strategy. Each replayed ask must
        propose exactly the genome the journal holds, or the run cannot be continued.

        The strategy's events (a finished generation) follow their result in the journal; one
        the journal lacks (the run died between the two lines) is written now."""
        self.replaying = True
        self._unwritten = []
        try:
            for event in events:
                if event["event"] == "ask":
                    asks = self.strategy.ask(1)
                    if (not asks or event["index"] != self.next_index
                            or asks[0].ticket != event["ticket"]
                            or asks[0].genome.to_dict() != event["genome"]):
                        raise RunDirectoryError(
                            f"{self.run_dir.path}: replaying the journal diverges at evaluation "
                            f"{event['index']}; the run was written by another evonas version "
                            f"or config and cannot be continued")
                    self.asked[self.next_index] = event
                    self.strategy.proposer.handed(event["key"])
                    self.next_index += 1
                elif event["event"] == "result":
                    self._apply(event)
                elif event["event"] == "rung":
                    self._promoted(event)
                elif event["event"] in ("generation", "window") and self._unwritten:
                    self._unwritten.pop(0)
        finally:
            self.replaying = False
        for extra in self._unwritten:
            log.info("writing the %s event the journal lacks (the run stopped between a result "
                     "and it)", extra["event"])
            self.run_dir.append({**extra, "time": time.time()})
        self._unwritten = []

    def resume_in_flight(self) -> None:
        """Send every outstanding ask (asked, no result yet) back out with its original seed.
        Nothing is applied here: as live, the loop first fills the window, then applies held
        results in proposal order (the journal of a resumed deterministic run is the
        uninterrupted one)."""
        for index in sorted(self.asked):
            if index in self.asked:  # a cache hit may have applied it meanwhile
                self._dispatch(index)


def _prepare(config: Config) -> tuple[dict[str, Any], str]:
    """The decoder space and a description of the task; checks an evaluator, or loads (and if
    needed downloads) the data set, so problems show before any evaluation."""
    evaluator = config.evaluation.evaluator
    if evaluator:  # checked by the first evaluation, in a worker (see Search.loop)
        check_resolvable(evaluator)  # a Python callable's or ask/tell run's: how to continue
        return config.model_space(), f"evaluator {evaluator}"
    from training import load_dataset  # torch: only when the built-in trainer is used

    splits = load_dataset(config.data.model_dump(mode="json"))
    return config.model_space(splits), splits.describe()


def _execute(config: Config, open_run_dir: Callable[[], tuple[RunDirectory, list]],
             workers: Optional[int], progress: Optional[Progress]) -> RunSummary:
    """Shared by :func:`run` and :func:`resume`: start the pool, open the run directory,
    rebuild the search from its journal (if any), search, retrain the best, summarise."""
    progress = progress or (lambda event: None)
    start = time.time()
    with ExitStack() as stack:
        pool = stack.enter_context(make_pool(config, workers))  # workers start meanwhile
        space, task = _prepare(config)
        run_dir, events = open_run_dir()
        stack.enter_context(run_dir)
        log.info("run directory %s; %s", run_dir.path, task)
        search = _rebuild(config, run_dir, pool, space, progress, events)
        run_dir.append({"event": "session", "time": time.time(), "started": start,
                        "pid": os.getpid(), "resumed": bool(events), "workers": pool.slots,
                        "format": FORMAT})
        progress({"event": "start", "run_dir": str(run_dir.path),
                  "budget": config.strategy.budget, "workers": pool.slots, "data": task,
                  "done": search.counts["evaluations"],
                  "evaluator": bool(config.evaluation.evaluator)})
        search.resume_in_flight()
        search.loop()
        pool.close()  # free the cores for the final training
        final = {}
        if search.best is not None and not config.evaluation.evaluator:
            from evolution.export import save_best

            progress({"event": "final_training", "index": search.best["index"]})
            final = save_best(run_dir.path, config, search.best)
        now = time.time()
        run_dir.append({"event": "end", "time": now, "seconds": now - start,
                        "evaluations": search.counts["evaluations"],
                        "trained": search.counts["trained"],
                        "cache_hits": search.counts["cache_hits"]})
        summary = RunSummary(run_dir.path, seconds=now - start,
                             total_seconds=sessions_seconds(read_events(run_dir.path)[0]),
                             best=search.best, final=final, task=config.task.name,
                             evaluator=bool(config.evaluation.evaluator), **search.counts,
                             **search.front_summary())
        run_dir.write_json("summary.json", summary.to_dict())
        return summary


def _rebuild(config: Config, run_dir: RunDirectory, pool: Pool, space: dict[str, Any],
             progress: Progress, events: list[dict[str, Any]]) -> Search:
    """A search at the end of ``events``: from the snapshot plus the journal after it, or,
    when the snapshot is missing or does not fit, from the whole journal."""
    search = Search(config, run_dir, pool, space, progress)
    if not events:
        return search
    snapshot = read_snapshot(run_dir.path, run_dir.identity,
                             (run_dir.path / JOURNAL).read_bytes(), len(events))
    if snapshot is not None:
        try:
            search.load_snapshot(snapshot)
            search.replay(events[snapshot["lines"]:])
            return search
        except (KeyError, TypeError, ValueError, IndexError, RunDirectoryError) as exc:
            log.warning("%s/%s does not fit the journal (%s); replaying the whole journal",
                        run_dir.path, SNAPSHOT, exc)
    search = Search(config, run_dir, pool, space, progress)
    search.replay(events)
    return search


def run(config: Config, *, name: Optional[str] = None, workers: Optional[int] = None,
        progress: Optional[Progress] = None, resume: bool = False) -> RunSummary:
    """Run the search ``config`` describes, in a new run directory, and return its summary.

    ``name`` (the CLI's ``--name``) names the run directory exactly; without it the config's
    name is used, with ``-2``, ``-3``, ... appended when that directory is taken. ``workers``
    overrides ``pool.workers``. ``progress`` receives every journal event as it happens. With
    ``resume``, an existing ``runs_dir/name`` is continued (see :func:`resume`; the config must
    match its frozen one) and a missing one is started.
    """
    if name is not None:
        config = config.replace(name=name)
    path = Path(config.runs_dir) / config.name
    if resume and (path / CONFIG).exists():
        return _resume(path, config=config, workers=workers, progress=progress)
    return _execute(config, lambda: (RunDirectory.create(
        config.runs_dir, config.name, config.to_dict(), exact=name is not None or resume), []),
        workers, progress)


def _resume(run_dir: str | os.PathLike, *, extend: Optional[int] = None,
           config: Optional[Config] = None, workers: Optional[int] = None,
           progress: Optional[Progress] = None) -> RunSummary:
    """Continue a stopped run where it stopped: load its snapshot, replay the journal after
    it, resubmit the evaluations that were in flight with their original seeds, and go on.

    ``extend`` raises the strategy's budget key (``generations``, ``cycles`` or
    ``evaluations``) to continue a finished run for more. ``config`` (from ``run --resume``)
    must equal the run's frozen config; any other change is refused with the differing keys.
    """
    from evolution.config import config_from_dict

    path = Path(run_dir)
    frozen = config_from_dict(frozen_config(path), str(path / IDENTITY))
    target = frozen
    if extend is not None:
        key = STRATEGIES[frozen.strategy.name].budget_key
        current = getattr(frozen.strategy, key)
        if extend < current:
            raise ConfigError(f"strategy.{key} is {current}; extending needs a value of at "
                              f"least {current}, got {extend}")
        target = frozen.replace(**{f"strategy.{key}": extend})
    if config is not None:
        changed = differences(config.to_dict(), target.to_dict(), ignore=("name", "runs_dir"))
        if changed:
            raise ConfigError(f"the config differs from the one {path} was started with, in: "
                              f"{', '.join(changed)}. Resume with the same config (to extend "
                              f"a finished run: evonas resume {path} --"
                              f"{STRATEGIES[frozen.strategy.name].budget_key} N)")

    def open_run_dir() -> tuple[RunDirectory, list]:
        opened, events = RunDirectory.open(path)
        if target != frozen:
            opened.freeze(target.to_dict(), {k: v for k, v in opened.identity.items()
                                             if k not in ("config", "config_sha256")})
            opened.append({"event": "extend", "time": time.time(),
                           "budget": target.strategy.budget})
        return opened, events

    return _execute(target, open_run_dir, workers, progress)


resume = _resume  # public name; ``run`` has a ``resume`` flag, so it calls ``_resume``
