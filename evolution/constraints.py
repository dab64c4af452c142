"""Hard constraints on metrics: ``constraints: {params: {max: 50000}, latency_ms: {max: 2.0}}``.

A result that breaks one is ``infeasible``: it records each broken bound with the value and by
how much, and one ``violation``, the sum over broken bounds of the excess relative to the bound
(``(61000 - 50000) / 50000 = 0.22``), so bounds in different units add up. Strategies rank
infeasible results after every feasible one and among themselves by smaller violation (Deb's
rules, see :mod:`evolution.pareto`).

Constraints on metrics known before training (the built-in trainer's ``params``, ``flops`` and
``latency_ms``, measured on the built model) are checked then: an architecture that breaks one
is never trained.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from evolution.results import is_number
from genome.errors import EvonasError


class Infeasible(EvonasError):
    """Raised by :meth:`Constraints.check_before_training` to stop an evaluation before it
    trains an architecture that breaks a constraint."""

    def __init__(self, metrics: Mapping[str, Any], violation: float,
                 violations: dict[str, dict[str, float]]):
        self.metrics, self.violation, self.violations = dict(metrics), violation, violations
        super().__init__(describe(violations))


@dataclass(frozen=True)
class Constraint:
    """Bounds on one metric (either may be ``None``)."""

    metric: str
    min: Optional[float] = None
    max: Optional[float] = None

    def broken(self, value: float) -> Optional[dict[str, float]]:
        """``{"value", "max" or "min", "by"}`` when ``value`` breaks a bound, else ``None``."""
        if self.max is not None and value > self.max:
            return {"value": value, "max": self.max, "by": value - self.max}
        if self.min is not None and value < self.min:
            return {"value": value, "min": self.min, "by": self.min - value}
        return None

    def __str__(self) -> str:
        parts = [f"{self.metric} >= {self.min:g}" if self.min is not None else "",
                 f"{self.metric} <= {self.max:g}" if self.max is not None else ""]
        return " and ".join(p for p in parts if p)


def relative(broken: Mapping[str, float]) -> float:
    """How much a broken bound is exceeded relative to the bound (absolute for a bound 0)."""
    limit = broken.get("max", broken.get("min"))
    return broken["by"] / abs(limit) if limit else broken["by"]


def describe(violations: Mapping[str, Mapping[str, float]]) -> str:
    """``params 61,234 > max 50,000 (by 22.5%)``, one clause per broken bound."""
    clauses = []
    for metric, b in violations.items():
        bound, sign = ("max", ">") if "max" in b else ("min", "<")
        clauses.append(f"{metric} {b['value']:,.6g} {sign} {bound} {b[bound]:,.6g} "
                       f"(by {relative(b):.1%})")
    return "infeasible: " + "; ".join(clauses)


@dataclass(frozen=True)
class Constraints:
    """A run's constraints, in config order (possibly none)."""

    items: tuple[Constraint, ...] = ()

    @classmethod
    def from_dict(cls, data: Optional[Mapping[str, Mapping[str, Any]]]) -> "Constraints":
        """From the config's (or a task's) ``{metric: {min, max}}``."""
        return cls(tuple(Constraint(metric, bounds.get("min"), bounds.get("max"))
                         for metric, bounds in (data or {}).items()))

    @classmethod
    def from_config(cls, config: Any) -> "Constraints":
        return cls.from_dict({m: c.model_dump() for m, c in config.constraints.items()})

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {c.metric: {k: v for k, v in (("min", c.min), ("max", c.max)) if v is not None}
                for c in self.items}

    def __bool__(self) -> bool:
        return bool(self.items)

    def __str__(self) -> str:
        return ", ".join(map(str, self.items))

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.items)

    def check(self, metrics: Mapping[str, Any], *, partial: bool = False
              ) -> tuple[float, dict[str, dict[str, float]]]:
        """``(violation, broken bounds by metric)`` of ``metrics``; ``(0.0, {})`` when every
        constraint holds. With ``partial`` a metric not (yet) reported is skipped; otherwise it
        is an error, as for an objective."""
        from evolution.objectives import values_of

        broken: dict[str, dict[str, float]] = {}
        for c in self.items:
            if partial and not is_number(metrics.get(c.metric)):
                continue
            value = values_of(metrics, [c.metric])[0]
            b = c.broken(value)
            if b is not None:
                broken[c.metric] = b
        return sum(map(relative, broken.values())), broken

    def check_before_training(self, metrics: Mapping[str, Any]) -> None:
        """The trainer's hook with what it knows before training (``params``, ``flops``):
        raises :class:`Infeasible` when those break a constraint."""
        violation, broken = self.check(metrics, partial=True)
        if broken:
            raise Infeasible(metrics, violation, broken)
