"""What a run optimises: objectives as a tuple in config order, and the one ranking of results.

``objectives: [{metric: val_accuracy, direction: max}, {metric: params, direction: min}]``
names metrics a result reports; a result's ``values`` are those metrics in that order. Every
consumer that needs "best" (the run's summary, ``evonas status``, the report, export) ranks
through :meth:`Objectives.rank_key`, so they agree, ties included.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping, Optional, Sequence

from evolution.pareto import default_reference, front_numbers, nondominated
from evolution.results import INFEASIBLE, OK, is_number, violation_of
from genome.errors import EvonasError

Direction = Literal["max", "min"]
TIE_BREAK = "val_loss"
"""Among results with equal objective values, the lower validation loss ranks first (when
results record one), then the earlier evaluation."""


class ObjectiveError(EvonasError):
    """A result reports an objective's value that is not a finite number."""


class MissingMetricError(ObjectiveError):
    """A result lacks an objective's metric altogether: the evaluator does not report it."""


def values_of(metrics: Mapping[str, Any], names: Sequence[str]) -> list[float]:
    """The values of the metrics ``names`` in ``metrics``, in that order; an
    :class:`ObjectiveError` when one is missing or not a finite number."""
    values = []
    for name in names:
        if name not in metrics:
            shown = ", ".join(sorted(map(str, metrics))[:20]) or "none"
            raise MissingMetricError(f"the evaluation reports no metric {name!r}, which the "
                                 f"objectives name; it reports: {shown}")
        value = metrics[name]
        if not is_number(value):
            raise ObjectiveError(f"objective metric {name!r} is {str(value)[:40]!r}, not a "
                                 f"finite number")
        values.append(float(value))
    return values


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: Direction = "max"
    reference: Optional[float] = None  # hypervolume's, in the metric's units

    @property
    def weight(self) -> float:
        """DEAP's weight: +1 to maximise, -1 to minimise."""
        return 1.0 if self.direction == "max" else -1.0

    def __str__(self) -> str:
        return f"{self.direction} {self.metric}"


@dataclass(frozen=True)
class Objectives:
    """The run's objectives, in config order."""

    items: tuple[Objective, ...]

    def __post_init__(self) -> None:
        if not self.items:
            raise ValueError("a run needs at least one objective")

    @classmethod
    def from_config(cls, config: Any) -> "Objectives":
        """From a :class:`~evolution.config.Config` (its ``objectives`` list)."""
        return cls(tuple(Objective(o.metric, o.direction, o.reference)
                         for o in config.objectives))

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(o.metric for o in self.items)

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(o.weight for o in self.items)

    @property
    def worst(self) -> tuple[float, ...]:
        """Values worse than any real ones (a failed evaluation's, for selection)."""
        return tuple(-math.inf * w for w in self.weights)

    def __str__(self) -> str:
        return ", ".join(map(str, self.items))

    # ------------------------------------------------------------------ values
    def values_of(self, metrics: Mapping[str, Any]) -> list[float]:
        """The objective values of ``metrics`` in config order (see :func:`values_of`)."""
        return values_of(metrics, self.metrics)

    def oriented(self, values: Sequence[float]) -> tuple[float, ...]:
        """``values`` turned so that larger is better for each objective (DEAP's wvalues)."""
        return tuple(v * w for v, w in zip(values, self.weights))

    def better(self, a: Sequence[float], b: Sequence[float]) -> bool:
        """Whether values ``a`` rank strictly before ``b`` (lexicographically, in direction)."""
        return self.oriented(a) > self.oriented(b)

    # ------------------------------------------------------------------ ranking
    def rank_key(self, result: Mapping[str, Any]) -> tuple:
        """Sort key for "best first", Deb's rules: ok results first, then infeasible ones by
        smaller constraint violation, then every other; among ok results the objective values
        lexicographically in their directions, then the lower validation loss, then the
        earlier evaluation index. (With several objectives the lexicographic best is on the
        Pareto front: it is the front's member best in the first objective.)"""
        values = result.get("values")
        status = result.get("status")
        ok = status == OK and values is not None and len(values) == len(self)
        tier = 0 if ok else 1 if status == INFEASIBLE else 2
        oriented = self.oriented(values) if ok else tuple(-math.inf for _ in self.items)
        loss = (result.get("metrics") or {}).get(TIE_BREAK)
        loss = float(loss) if is_number(loss) else math.inf
        return (tier, violation_of(result) if tier == 1 else 0.0, *(-v for v in oriented),
                loss, result.get("index", 0))

    def rank(self, results: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """``results`` best first: by :meth:`rank_key`, and with several objectives first by
        non-domination level (the Pareto front first, DEAP's ``sortNondominated``), so that
        ``rank(results)[0]`` is the best by :meth:`rank_key` either way."""
        results = list(results)
        if len(self) == 1:
            return sorted(results, key=self.rank_key)
        ok = [r for r in results if self.rank_key(r)[0] == 0]
        level = dict(zip(map(id, ok), front_numbers([r["values"] for r in ok], self.weights)))
        keys = {id(r): self.rank_key(r) for r in results}
        return sorted(results, key=lambda r: (keys[id(r)][0], level.get(id(r), 0), keys[id(r)]))

    def front(self, results: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The ok ``results`` no other ok result dominates, ranked by :meth:`rank_key`."""
        ok = [r for r in results if self.rank_key(r)[0] == 0]
        chosen = nondominated([r["values"] for r in ok], self.weights)
        return sorted((ok[i] for i in chosen), key=self.rank_key)

    def reference(self, values: Sequence[Sequence[float]],
                  constraints: Any = None) -> list[float]:
        """The hypervolume reference point, per objective: its ``reference`` where the config
        gives one; else the constraint's bound on its metric that limits it (``params: {max:
        50000}`` for a minimised ``params``); else just worse than the worst of ``values``
        (the first generation's or window's results, see
        :func:`~evolution.pareto.default_reference`)."""
        default = default_reference(values, self.weights) or [0.0] * len(self)
        bounds = {c.metric: c for c in (constraints.items if constraints else ())}
        point = []
        for o, d in zip(self.items, default):
            bound = getattr(bounds.get(o.metric), "max" if o.direction == "min" else "min",
                            None)
            point.append(o.reference if o.reference is not None
                         else bound if bound is not None else d)
        return point

    def summary(self, values: Sequence[Optional[Sequence[float]]]) -> dict[str, Any]:
        """Statistics of a group of results (``None``: not ok) for generation / window events:
        the best and the mean of the first objective."""
        first = [v[0] for v in values if v is not None]
        best = None
        if first:
            best = max(first) if self.items[0].direction == "max" else min(first)
        return {"best": best, "mean": sum(first) / len(first) if first else None}
