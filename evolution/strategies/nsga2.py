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
from evolution.strategies.base import (Ask, Individual, Strategy, Values, individuals_state,
                                       load_individuals, make_toolbox, rng_state,
                                       set_rng_state)
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


class NSGA2Config(Section):
    """NSGA-II (Deb et al. 2002): non-dominated sorting and crowding distance."""

    name: Literal["nsga2"] = "nsga2"
    population: int = Field(12, ge=4, multiple_of=4,
                            description="individuals per generation N (a multiple of 4, as "
                                        "DEAP's selTournamentDCD pairs them)")
    generations: int = Field(5, ge=0, description="generations T after the initial one")
    p_crossover: float = Field(0.9, ge=0, le=1, description="probability a pair crosses, p_C")
    q_crossover: float = Field(0.5, ge=0, le=1,
                               description="probability a stage / cell / position swaps, q_C")
    p_mutation: float = Field(1.0, ge=0, le=1, description="probability an individual mutates")
    q_mutation: float = Field(0.1, ge=0, le=1,
                              description="probability a bit / position changes, q_M")

    @property
    def budget(self) -> int:
        return self.population * (self.generations + 1)


class NSGA2Strategy(Strategy):
    """NSGA-II. ``ask`` hands out the current generation's offspring; the next one is bred
    when every member of this one has been told (a generation is a barrier)."""

    name = "nsga2"
    title = "NSGA-II"
    Config = NSGA2Config
    budget_key = "generations"
    multi_objective = True

    def __init__(self, encoding: Encoding, space: Section, config: Any,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.toolbox = make_toolbox(
            encoding, space, rng,
            mutate={"p_m": config.p_mutation, "q_m": config.q_mutation},
            mate={"p_c": config.p_crossover, "q_c": config.q_crossover})
        self.size = config.population
        self.generation = 0
        self.population: list[Individual] = []  # the survivors, parents of the next batch
        seen: set[str] = set()  # drawn before the run's proposer knows the run: dedup here
        self.batch = [self.individual(novel(self.toolbox.random_genome(), seen,
                                            lambda _: self.toolbox.random_genome()))
                      for _ in range(self.size)]
        self._handed = 0
        self._told = 0

    @property
    def done(self) -> bool:
        return self._told == self.size and self.generation >= self.config.generations

    def ask(self, n: int) -> list[Ask]:
        if self._told == self.size and self.generation < self.config.generations:
            self.batch = self.breed(self.population)  # on demand: a finished run can extend
            self.generation += 1
            self._handed = self._told = 0
        asks = []
        while len(asks) < n and self._handed < self.size:
            ticket = self.generation * self.size + self._handed
            asks.append(Ask(ticket, self.batch[self._handed].genome))
            self._handed += 1
        return asks

    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        generation, position = divmod(ticket, self.size)
        member = self.batch[position] if generation == self.generation else None
        if member is None or position >= self._handed or member.told:
            raise ValueError(f"ticket {ticket} was not asked in generation {self.generation} "
                             f"or was already told")
        self.batch[position] = self.individual(member.genome, values, told=True,
                                               violation=violation)
        self._told += 1
        if self._told < self.size:
            return []
        self.population = self.survive(self.population + self.batch)
        return [self.group_event("generation", [m.outcome for m in self.batch],
                                 generation=self.generation)]

    # ------------------------------------------------------------------ DEAP's operators
    def survive(self, individuals: list[Individual]) -> list[Individual]:
        """The next parents: DEAP's ``selNSGA2`` (which also sets every survivor's crowding
        distance, for the tournaments)."""
        return tools.selNSGA2(individuals, self.size)

    def parents(self, population: list[Individual]) -> list[Individual]:
        """N parents by DEAP's ``selTournamentDCD``, its draws taken from the strategy's RNG."""
        with lend(self.rng):
            return tools.selTournamentDCD(population, len(population))

    def breed(self, population: list[Individual]) -> list[Individual]:
        genomes = [ind.genome for ind in self.parents(population)]
        for i in range(1, len(genomes), 2):
            genomes[i - 1], genomes[i] = self.toolbox.mate(genomes[i - 1], genomes[i])
        return [self.individual(self.toolbox.mutate(g)) for g in genomes]

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "handed": self._handed, "told": self._told,
                "population": individuals_state(self.population),
                "crowding": [_finite(getattr(m.fitness, "crowding_dist", None))
                             for m in self.population],
                "batch": individuals_state(self.batch), "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generation, self._handed, self._told = (state["generation"], state["handed"],
                                                     state["told"])
        self.batch = load_individuals(state["batch"], self.objectives)
        self.population = load_individuals(state["population"], self.objectives)
        for member, crowding in zip(self.population, state["crowding"]):
            member.fitness.crowding_dist = math.inf if crowding is None else crowding
        set_rng_state(self.rng, state["rng"])


def _finite(x: Any) -> Any:
    """A crowding distance as JSON: ``None`` for infinity (a front's extreme)."""
    return None if x is None or math.isinf(x) else x
