"""What every strategy shares: the ask/tell contract, DEAP fitness and individual classes, and
the one place that wires genome operators into a DEAP toolbox.

A strategy only proposes genomes and is told fitness values; it never trains, never touches the
pool and never writes files. The run loop gives every asked genome an evaluation index and seed.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Protocol

from deap import base

from evolution.strategies.selection import roulette
from genome import binary
from genome.binary import BinaryGenome

WORST = -math.inf
"""Fitness of a failed evaluation: worse than any real fitness."""


class FitnessMax(base.Fitness):
    """Single-objective fitness to maximise (validation accuracy). A module-level class, so
    spawned and remote processes can import it; never made with ``creator.create``."""

    weights = (1.0,)


class Individual:
    """A population member: a frozen genome plus its DEAP fitness. Copying an individual shares
    the genome (it cannot change) and copies the fitness."""

    __slots__ = ("genome", "fitness")

    def __init__(self, genome: Any, fitness: float | None = None):
        self.genome = genome
        self.fitness = FitnessMax()
        if fitness is not None:
            self.fitness.values = (fitness,)

    @property
    def value(self) -> float:
        return self.fitness.values[0] if self.fitness.valid else WORST

    def copy(self) -> "Individual":
        return Individual(self.genome, self.fitness.values[0] if self.fitness.valid else None)


@dataclass(frozen=True)
class Ask:
    """One genome a strategy wants evaluated; ``ticket`` comes back with its result."""

    ticket: int
    genome: Any


class Strategy(Protocol):
    """The ask/tell contract every search strategy follows."""

    budget: int

    @property
    def done(self) -> bool:
        """True once every evaluation the strategy will ask for has been told."""

    def ask(self, n: int) -> list[Ask]:
        """Up to ``n`` genomes to evaluate now; fewer (even none) while it waits for results."""

    def tell(self, ticket: int, fitness: float) -> list[dict[str, Any]]:
        """The fitness of an asked genome (``WORST`` for a failed one). Returns events worth
        recording, such as a finished generation."""


def sel_roulette(individuals: list[Individual], k: int, rng: random.Random) -> list[Individual]:
    """DEAP-shaped roulette selection: ``k`` copies drawn by :func:`roulette`."""
    return [individuals[i].copy() for i in roulette([ind.value for ind in individuals], k, rng)]


def make_toolbox(search: Any, strategy: Any, rng: random.Random) -> base.Toolbox:
    """Bind the encoding's operators with their rates and ``rng`` into a DEAP toolbox.

    Registered names: ``select(individuals, k)``, ``random_genome()``, ``mutate(genome)``,
    ``mate(a, b)``. Selection returns copies; variation returns new genomes and never changes its
    arguments.
    """
    toolbox = base.Toolbox()
    toolbox.register("select", sel_roulette, rng=rng)
    if search.encoding == BinaryGenome.encoding:
        toolbox.register("random_genome", BinaryGenome.random, tuple(search.stages), rng)
        toolbox.register("mutate", binary.mutate, rng=rng,
                         p_m=strategy.p_mutation, q_m=strategy.q_mutation)
        toolbox.register("mate", binary.crossover, rng=rng,
                         p_c=strategy.p_crossover, q_c=strategy.q_crossover)
        return toolbox
    raise ValueError(f"no operators for encoding {search.encoding!r}")
