"""NSGA-III (Deb & Jain 2014) through DEAP's own ``tools.selNSGA3``, for three or more
objectives: NSGA-II's loop (see :mod:`evolution.strategies.nsga2`) with survivors chosen by
non-dominated sorting and niching around reference points (DEAP's
``uniform_reference_points``, Das and Dennis' simplex lattice with ``divisions`` steps), and
parents drawn at random (DEAP's ``selRandom``) as in the paper.

Constraints as Jain & Deb's constrained NSGA-III: feasible results survive before infeasible
ones, which are ranked by smaller violation; NSGA-III's niching runs on the feasible ones.
"""
from __future__ import annotations

import random
from typing import Any, Literal

from deap import tools
from pydantic import Field

from evolution.objectives import Objectives
from evolution.strategies.base import Individual
from evolution.strategies.nsga2 import NSGA2Config, NSGA2Strategy
from genome import Encoding
from genome.rng import lend
from genome.section import Section


class NSGA3Config(NSGA2Config):
    """NSGA-III (Deb & Jain 2014): reference-point niching, for three or more objectives."""

    name: Literal["nsga3"] = "nsga3"  # type: ignore[assignment]
    divisions: int = Field(4, ge=1, le=64,
                           description="reference points: steps along each objective of the "
                                       "simplex lattice (3 objectives, 4 steps: 15 points)")


class NSGA3Strategy(NSGA2Strategy):
    name = "nsga3"
    title = "NSGA-III"
    Config = NSGA3Config
    budget_key = "generations"
    multi_objective = True

    def __init__(self, encoding: Encoding, space: Section, config: Any,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.reference_points = tools.uniform_reference_points(len(objectives),
                                                                config.divisions)

    def survive(self, individuals: list[Individual]) -> list[Individual]:
        """Feasible results first (NSGA-III's niching among them, DEAP's ``selNSGA3``, its
        draws from the strategy's RNG), then the rest by smaller violation."""
        feasible = [m for m in individuals if m.violation == 0 and m.outcome is not None]
        rest = sorted((m for m in individuals if m.violation or m.outcome is None),
                      key=lambda m: m.violation)
        if len(feasible) <= self.size:
            return feasible + rest[:self.size - len(feasible)]
        with lend(self.rng, numpy=True):
            return tools.selNSGA3(feasible, self.size, self.reference_points, nd="standard")

    def parents(self, population: list[Individual]) -> list[Individual]:
        with lend(self.rng):
            return tools.selRandom(population, len(population))

