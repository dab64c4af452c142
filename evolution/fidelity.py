"""Multi-fidelity search: rungs, the rules that stop a candidate at one, and what a run keeps.

With ``fidelity.rule`` other than ``none`` a candidate trains in steps: to the first rung
(``min_epochs``), then, if the rule lets it, on to the next (``min_epochs * eta``, ...) and
finally to ``evaluation.epochs``, the top rung. Between two steps its weights, optimizer
state and random generators are a checkpoint in the run directory (safetensors, see
:mod:`training.checkpoint`), so the next step continues the same training, on any worker;
the learning-rate schedule always spans the top rung, so a promoted candidate ends with the
weights of an uninterrupted training.

At a rung the rule compares the candidate's first objective with what earlier candidates
scored at that rung:

``asha``    asynchronous successive halving (Li et al., 2020), deciding at once as Optuna's
            and Ray Tune's pruners do: continue when in the top ``1/eta`` of the results at
            the rung, itself included (the best always continues)
``median``  the median stopping rule (Golovin et al., 2017): continue unless worse than the
            median of the results at the rung, once ``min_reports`` are there

A promotion is a ``rung`` event in the journal (with the partial metrics and learning curve);
a candidate stopped at a rung is a ``pruned`` result with its partial metrics. Strategies are
told a pruned result as a constraint violation of the number of rungs it fell short (see
:mod:`evolution.pareto`): it ranks below every finished result, then by the rung it reached,
then by its value. A new rule is a :class:`Rule` subclass and one entry in :data:`RULES`.
"""
from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Optional, Sequence

from evolution.results import OK


class Rule(ABC):
    """When a candidate that reached a rung continues training."""

    name: ClassVar[str]
    stops: ClassVar[bool] = True  # ``none`` trains every candidate in one step

    def __init__(self, config: Any):
        self.config = config

    @abstractmethod
    def promote(self, value: float, others: Sequence[float]) -> tuple[bool, str]:
        """Whether a candidate with ``value`` (larger is better) at a rung continues, given
        the values ``others`` scored there before it; and why, in words."""


class Full(Rule):
    name, stops = "none", False

    def promote(self, value: float, others: Sequence[float]) -> tuple[bool, str]:
        return True, "trained in full"


class SuccessiveHalving(Rule):
    name = "asha"

    def promote(self, value: float, others: Sequence[float]) -> tuple[bool, str]:
        eta = self.config.eta
        keep = max(1, (len(others) + 1) // eta)
        rank = sum(other > value for other in others)
        verdict = "within" if rank < keep else "outside"
        return rank < keep, (f"ranked {rank + 1} of {len(others) + 1} at this rung, {verdict} "
                             f"the top {keep} (1/{eta})")


class MedianStopping(Rule):
    name = "median"

    def promote(self, value: float, others: Sequence[float]) -> tuple[bool, str]:
        if len(others) < self.config.min_reports:
            return True, (f"{len(others)} earlier results at this rung, fewer than "
                          f"min_reports {self.config.min_reports}")
        median = statistics.median(others)
        return value >= median, (f"{'not ' if value >= median else ''}below the median of "
                                 f"the {len(others)} earlier results at this rung")


RULES: dict[str, type[Rule]] = {rule.name: rule for rule in (Full, SuccessiveHalving,
                                                            MedianStopping)}


def task_step(task: dict[str, Any], epochs: int) -> dict[str, Any]:
    """What a task trains: its ``fidelity`` step (``start`` and ``stop`` epochs, the ``top``
    rung, the ``checkpoint`` bytes to continue from), or all ``epochs`` in one step."""
    return task.get("fidelity") or {"start": 0, "stop": epochs, "top": epochs,
                                    "checkpoint": None}


def rung_epochs(min_epochs: int, eta: int, top: int) -> list[int]:
    """The epochs a candidate stops at for a decision, then ``top``: ``min_epochs * eta**k``
    below ``top``. ``rung_epochs(1, 3, 9) == [1, 3, 9]``."""
    rungs, epochs = [], min_epochs
    while epochs < top:
        rungs.append(epochs)
        epochs *= eta
    return rungs + [top]


class Fidelity:
    """A run's rungs and what it knows of them: the values scored at each rung, and for every
    candidate between two steps the epoch its checkpoint holds and its learning curve so far.
    Rebuilt from the journal's ``rung`` and ``result`` events (or a snapshot)."""

    def __init__(self, config: Any, weight: float):
        section = config.fidelity
        self.rule = RULES[section.rule](section)
        top = config.evaluation.epochs
        self.rungs = (rung_epochs(section.min_epochs, section.eta, top) if self.rule.stops
                      else [top])
        self.budget_epochs: Optional[int] = section.budget_epochs
        self.weight = weight  # turns the first objective into larger-is-better
        self.tables: dict[int, list[float]] = {epochs: [] for epochs in self.rungs[:-1]}
        self.reached: dict[int, int] = {}       # index -> epochs its checkpoint holds
        self.curves: dict[int, list[dict[str, Any]]] = {}  # index -> curve up to there
        self.saved: dict[int, bool] = {}        # index -> its checkpoint is in the run dir

    @property
    def active(self) -> bool:
        """Whether candidates train in steps (a rule other than ``none``)."""
        return len(self.rungs) > 1

    @property
    def top(self) -> int:
        return self.rungs[-1]

    def steps(self, index: int) -> tuple[int, int]:
        """The epochs the next step of candidate ``index`` trains from and to."""
        start = self.reached.get(index, 0)
        return start, next(e for e in self.rungs if e > start)

    def is_report(self, event: dict[str, Any]) -> bool:
        """Whether a result is a candidate arriving at a rung below the top (a decision is due)
        rather than its final result."""
        return (self.active and event["status"] == OK
                and self.steps(event["index"])[1] < self.top)

    def value(self, event: dict[str, Any]) -> float:
        return event["values"][0] * self.weight

    def decide(self, event: dict[str, Any]) -> tuple[bool, str]:
        """The rule's decision on a candidate arriving at its next rung, and why."""
        epochs = self.steps(event["index"])[1]
        return self.rule.promote(self.value(event), self.tables[epochs])

    def with_curve(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` with the candidate's learning curve from its first epoch."""
        earlier = self.curves.get(event["index"])
        if not earlier:
            return event
        return {**event, "curve": earlier + list(event.get("curve") or [])}

    def promoted(self, event: dict[str, Any]) -> None:
        """Record a ``rung`` event: the candidate's value at the rung, its checkpoint's epoch
        and its curve so far."""
        index = event["index"]
        self.tables[event["rung"]].append(self.value(event))
        self.reached[index] = event["rung"]
        self.saved[index] = bool(event.get("checkpoint"))
        self.curves[index] = list(event.get("curve") or [])

    def finished(self, event: dict[str, Any]) -> None:
        """Record a candidate's final result: a pruned one's value joins its rung's table."""
        index = event["index"]
        if event.get("rung") in self.tables and not event.get("cached"):
            self.tables[event["rung"]].append(self.value(event))
        for known in (self.reached, self.curves, self.saved):
            known.pop(index, None)

    def rungs_short(self, epochs: int) -> int:
        """How many rungs above ``epochs`` a candidate stopped there did not reach."""
        return sum(e > epochs for e in self.rungs)

    def spent(self, epochs: int) -> bool:
        """Whether ``budget_epochs`` is used up by ``epochs`` trained."""
        return self.budget_epochs is not None and epochs >= self.budget_epochs

    def state_dict(self) -> dict[str, Any]:
        return {"tables": {str(e): v for e, v in self.tables.items()},
                "reached": {str(i): e for i, e in self.reached.items()},
                "curves": {str(i): c for i, c in self.curves.items()},
                "saved": {str(i): s for i, s in self.saved.items()}}

    def load_state_dict(self, state: Optional[dict[str, Any]]) -> None:
        if not state:
            return
        self.tables = {int(e): list(v) for e, v in state["tables"].items()}
        self.reached = {int(i): e for i, e in state["reached"].items()}
        self.curves = {int(i): c for i, c in state["curves"].items()}
        self.saved = {int(i): s for i, s in state["saved"].items()}
