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

from evolution.results import OK, is_number
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
        return cls(tuple(Objective(o.metric, o.direction) for o in config.objectives))

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
        """Sort key for "best first": ok results before every other, then the objective values
        lexicographically in their directions, then the lower validation loss, then the earlier
        evaluation index."""
        values = result.get("values")
        ok = result.get("status") == OK and values is not None and len(values) == len(self)
        oriented = self.oriented(values) if ok else tuple(-math.inf for _ in self.items)
        loss = (result.get("metrics") or {}).get(TIE_BREAK)
        loss = float(loss) if is_number(loss) else math.inf
        return (0 if ok else 1, *(-v for v in oriented), loss, result.get("index", 0))

    def rank(self, results: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """``results`` best first by :meth:`rank_key`."""
        return sorted(results, key=self.rank_key)

    def summary(self, values: Sequence[Optional[Sequence[float]]]) -> dict[str, Any]:
        """Statistics of a group of results (``None``: not ok) for generation / window events:
        the best and the mean of the first objective, and how many were not ok."""
        first = [v[0] for v in values if v is not None]
        best = None
        if first:
            best = max(first) if self.items[0].direction == "max" else min(first)
        return {"best": best, "mean": sum(first) / len(first) if first else None,
                "failures": sum(v is None for v in values)}
