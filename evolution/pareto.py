"""Pareto dominance under constraints, fronts and hypervolume: DEAP's and moocore's, wired once.

A :class:`Fitness` carries a ``violation`` besides its values: 0 for a feasible result, by how
much it broke the constraints for an infeasible one, ``inf`` for one that failed. Its
``dominates`` is Deb's constraint domination (a feasible result dominates every infeasible one,
of two infeasible ones the smaller violation dominates, two feasible ones compare by Pareto
dominance), and its ordering is (smaller violation, then the values). So DEAP's own operators
(``tools.sortNondominated``, ``selNSGA2``, ``selNSGA3``, ``selTournamentDCD``,
``selTournament``) apply Deb's rules without a copy of any of them.

Hypervolume is moocore's (DEAP's own backend for ``deap.benchmarks.tools.hypervolume``),
measured against a reference point given in the objectives' own units.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

from deap import base, tools


class Fitness(base.Fitness):
    """DEAP fitness whose weights (+1 maximise, -1 minimise, one per objective) are given per
    instance, so one module-level class serves every run (never made with
    ``creator.create``), and which knows a constraint ``violation``."""

    weights: tuple[float, ...] = ()

    def __init__(self, weights: Sequence[float], values: Sequence[float] = (),
                 violation: float = 0.0):
        self.weights = tuple(weights)
        self.violation = float(violation)
        super().__init__(tuple(values))

    def __deepcopy__(self, memo: Any) -> "Fitness":
        copy = Fitness(self.weights, violation=self.violation)
        copy.wvalues = self.wvalues
        return copy

    def dominates(self, other: "Fitness", obj: slice = slice(None)) -> bool:
        """Deb's constraint domination."""
        if self.violation or other.violation:
            return self.violation < other.violation
        return super().dominates(other, obj)

    def _key(self) -> tuple:
        return (-self.violation, self.wvalues)

    def __hash__(self) -> int:
        return hash(self._key())

    def __le__(self, other: "Fitness") -> bool:
        return self._key() <= other._key()

    def __lt__(self, other: "Fitness") -> bool:
        return self._key() < other._key()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fitness) and self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        return not self == other


class Point:
    """Something with a fitness, for DEAP's sorting: a value vector and what it stands for."""

    __slots__ = ("fitness", "item")

    def __init__(self, fitness: Fitness, item: Any = None):
        self.fitness, self.item = fitness, item


def front_numbers(values: Sequence[Sequence[float]], weights: Sequence[float],
                  violations: Optional[Sequence[float]] = None) -> list[int]:
    """The non-domination level of each of ``values`` (0: the Pareto front), by DEAP's
    ``tools.sortNondominated`` under constraint domination."""
    violations = violations if violations is not None else [0.0] * len(values)
    points = [Point(Fitness(weights, v, c), i) for i, (v, c) in enumerate(zip(values, violations))]
    levels = [0] * len(points)
    for level, front in enumerate(tools.sortNondominated(points, len(points))):
        for point in front:
            levels[point.item] = level
    return levels


def nondominated(values: Sequence[Sequence[float]], weights: Sequence[float]) -> list[int]:
    """Indices of the ``values`` that no other dominates (the first front), in input order."""
    if not values:
        return []
    levels = front_numbers(values, weights)
    return [i for i, level in enumerate(levels) if level == 0]


def hypervolume(values: Sequence[Sequence[float]], weights: Sequence[float],
                reference: Sequence[float]) -> float:
    """The volume the points ``values`` dominate up to ``reference`` (all in the objectives'
    own units and directions; points not better than the reference in every objective add
    nothing), by moocore."""
    import moocore
    import numpy as np

    if not values:
        return 0.0
    w = np.asarray(weights, dtype=float)
    points = -np.asarray(values, dtype=float) * w   # moocore minimises
    return float(moocore.hypervolume(points, ref=-np.asarray(reference, dtype=float) * w))


def default_reference(values: Sequence[Sequence[float]],
                      weights: Sequence[float]) -> Optional[list[float]]:
    """A reference point just worse than the worst of ``values`` in every objective (by a
    tenth of their range, or of the value itself when all are equal), or ``None`` without
    values: the point a run fixes from its first generation or window."""
    if not values:
        return None
    reference = []
    for j, w in enumerate(weights):
        column = [v[j] * w for v in values]
        worst, best = min(column), max(column)
        margin = 0.1 * (best - worst) or 0.1 * abs(worst) or 1.0
        reference.append(_round_down(worst - margin) * w)
    return reference


def _round_down(x: float) -> float:
    """``x`` rounded down to 4 significant digits: a reference point people can read and type,
    still worse than every value."""
    if x == 0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(abs(x))) - 3)
    return float(f"{math.floor(x / step) * step:.4g}")


def dominates(a: Sequence[float], b: Sequence[float], weights: Sequence[float]) -> bool:
    """Whether values ``a`` Pareto-dominate ``b``: no worse in every objective, better in one."""
    better = False
    for x, y, w in zip(a, b, weights):
        x, y = x * w, y * w
        if x < y:
            return False
        better = better or x > y
    return better


class Front:
    """The non-dominated set of the feasible results seen so far, kept as they arrive (a run's
    current Pareto front): ``(values, item)`` pairs in arrival order. Equal values all stay."""

    def __init__(self, weights: Sequence[float]):
        self.weights = tuple(weights)
        self.members: list[tuple[list[float], Any]] = []

    def add(self, values: Sequence[float], item: Any) -> bool:
        """Add ``values`` unless a member dominates them (dropping the members they dominate);
        whether they joined."""
        values = list(values)
        if any(dominates(v, values, self.weights) for v, _ in self.members):
            return False
        self.members = [(v, i) for v, i in self.members
                        if not dominates(values, v, self.weights)]
        self.members.append((values, item))
        return True

    def __len__(self) -> int:
        return len(self.members)

    @property
    def values(self) -> list[list[float]]:
        return [v for v, _ in self.members]

    @property
    def items(self) -> list[Any]:
        return [i for _, i in self.members]

    def hypervolume(self, reference: Sequence[float]) -> float:
        return hypervolume(self.values, self.weights, reference)
