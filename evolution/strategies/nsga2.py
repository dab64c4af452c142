"""NSGA-II (Deb et al. 2002) through DEAP's own operators, generational, as ask/tell.

Generation 0 is N random genomes. Each later generation: N parents by DEAP's
``tools.selTournamentDCD`` (binary tournaments on domination, then crowding distance), the
encoding's crossover of neighbouring pairs (p_C, q_C) and mutation (p_M, q_M), evaluation of
all N; then DEAP's ``tools.selNSGA2`` keeps the best N of parents and offspring (non-dominated
sorting, then crowding distance). Children that repeat an architecture the run knows are varied
again by the run's proposer (:mod:`evolution.strategies.proposal`, duplicate elimination as in
pymoo's NSGA-II), and the random initial generation holds no architecture twice (:func:`novel`).
Constraints follow Deb's rules through the fitness'
``dominates`` (see :mod:`evolution.pareto`): a feasible result beats every infeasible one, and
of two infeasible ones the smaller violation wins. The run does N * (T + 1) evaluations.
"""
from __future__ import annotations

import math
import random
from typing import Any, Callable, Literal

from deap import tools
from pydantic import Field

from evolution.objectives import Objectives
from evolution.strategies.base import Individual, Values, individuals_state, load_individuals
from evolution.strategies.genetic import GeneticConfig, GeneticStrategy
from genome import Encoding
from genome.rng import lend
from genome.section import Section


NOVEL_TRIES = 20
"""Single mutations tried to turn a repeated proposal into a new architecture before proposing
the repeat anyway (a small space can run out of unseen neighbours)."""


def novel(genome: Any, seen: set[str], step: Callable[[Any], Any],
          tries: int = NOVEL_TRIES) -> Any:
    """``genome`` if its architecture (canonical ``key()``) is not in ``seen``; else the first
    of up to ``tries`` successive ``step(genome)`` (one more mutation each, or a fresh random
    genome) whose architecture is not, or the last one tried. The returned genome's key is
    added to ``seen``; nothing else changes (genomes are frozen)."""
    key = genome.key()
    for _ in range(tries):
        if key not in seen:
            break
        genome = step(genome)
        key = genome.key()
    seen.add(key)
    return genome


class NSGA2Config(GeneticConfig):
    """NSGA-II (Deb et al. 2002): non-dominated sorting and crowding distance."""

    name: Literal["nsga2"] = "nsga2"  # type: ignore[assignment]
    population: int = Field(12, ge=4, multiple_of=4,
                            description="individuals per generation N (a multiple of 4, as "
                                        "DEAP's selTournamentDCD pairs them)")
    p_crossover: float = Field(0.9, ge=0, le=1, description="probability a pair crosses, p_C")
    q_crossover: float = Field(0.5, ge=0, le=1,
                               description="probability a stage / cell / position swaps, q_C")
    p_mutation: float = Field(1.0, ge=0, le=1, description="probability an individual mutates")


class NSGA2Strategy(GeneticStrategy):
    """NSGA-II: the generational loop of :class:`GeneticStrategy` (a generation is a barrier)
    with parents drawn from the survivors and survivors chosen by DEAP."""

    name = "nsga2"
    title = "NSGA-II"
    Config = NSGA2Config
    budget_key = "generations"
    multi_objective = True

    def __init__(self, encoding: Encoding, space: Section, config: Any,
                 objectives: Objectives, rng: random.Random):
        self.population: list[Individual] = []  # the survivors, parents of the next batch
        super().__init__(encoding, space, config, objectives, rng)

    def initial(self) -> list[Individual]:
        """N random genomes, no architecture twice (drawn before the run's proposer knows the
        run)."""
        seen: set[str] = set()
        draw = self.toolbox.random_genome
        return [self.individual(novel(draw(), seen, lambda _: draw()))
                for _ in range(self.size)]

    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        events = super().tell(ticket, values, violation)
        if events:  # the generation is complete: parents and offspring compete
            self.population = self.survive(self.population + self.batch)
        return events

    # ------------------------------------------------------------------ DEAP's operators
    def survive(self, individuals: list[Individual]) -> list[Individual]:
        """The next parents: DEAP's ``selNSGA2`` (which also sets every survivor's crowding
        distance, for the tournaments)."""
        return tools.selNSGA2(individuals, self.size)

    def parents(self, population: list[Individual]) -> list[Individual]:
        """N parents by DEAP's ``selTournamentDCD``, its draws taken from the strategy's RNG."""
        with lend(self.rng):
            return tools.selTournamentDCD(population, len(population))

    def breed(self) -> list[Individual]:
        return self.vary([ind.genome for ind in self.parents(self.population)])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "population": individuals_state(self.population),
                "crowding": [_finite(getattr(m.fitness, "crowding_dist", None))
                             for m in self.population]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.population = load_individuals(state["population"], self.objectives)
        for member, crowding in zip(self.population, state["crowding"]):
            member.fitness.crowding_dist = math.inf if crowding is None else crowding


def _finite(x: Any) -> Any:
    """A crowding distance as JSON: ``None`` for infinity (a front's extreme)."""
    return None if x is None or math.isinf(x) else x
