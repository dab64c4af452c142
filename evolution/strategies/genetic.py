"""The generational genetic algorithm of Genetic-CNN (Xie & Yuille 2017), as ask/tell.

Generation 0 is N random genomes. Each later generation: Russian-roulette selection of N
copies, stage-wise crossover of neighbouring pairs (p_C, q_C), bit-flip mutation (p_M, q_M),
evaluation of all N. The run does N * (T + 1) evaluations; the run loop's cache trains each
distinct architecture once, so unchanged survivors cost nothing.
"""
from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from evolution.objectives import Objectives
from evolution.strategies.base import (Ask, Individual, Strategy, Values, individuals_state,
                                       load_individuals, make_toolbox, rng_state, sel_roulette,
                                       set_rng_state)
from genome import Encoding
from genome.section import Section


class GeneticConfig(Section):
    """Genetic-CNN's generational algorithm (Xie & Yuille 2017)."""

    name: Literal["genetic"] = "genetic"
    population: int = Field(10, ge=2, description="individuals per generation N")
    generations: int = Field(5, ge=0, description="generations T after the initial one")
    p_crossover: float = Field(0.2, ge=0, le=1, description="probability a pair crosses, p_C")
    q_crossover: float = Field(0.2, ge=0, le=1,
                               description="probability a stage / cell / position swaps, q_C")
    p_mutation: float = Field(0.8, ge=0, le=1, description="probability an individual mutates")
    q_mutation: float = Field(0.1, ge=0, le=1,
                              description="probability a bit / position changes, q_M")

    @property
    def budget(self) -> int:
        return self.population * (self.generations + 1)


class GeneticStrategy(Strategy):
    """Generational GA. ``ask`` hands out the current generation; the next one is bred only
    when every member of this one has been told (a generation is a barrier)."""

    name = "genetic"
    title = "genetic algorithm"
    Config = GeneticConfig
    budget_key = "generations"

    def __init__(self, encoding: Encoding, space: Section, config: GeneticConfig,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.toolbox = make_toolbox(
            encoding, space, rng, select=(sel_roulette, {}),
            mutate={"p_m": config.p_mutation, "q_m": config.q_mutation},
            mate={"p_c": config.p_crossover, "q_c": config.q_crossover})
        self.size = config.population
        self.generation = 0
        self.batch = self.initial()
        self._handed = 0
        self._told = 0

    @property
    def done(self) -> bool:
        return self._told == self.size and self.generation >= self.config.generations

    def ask(self, n: int) -> list[Ask]:
        if self._told == self.size and self.generation < self.config.generations:
            self.batch = self.breed()  # bred on demand: a finished run can extend
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
        self.batch[position] = member = self.individual(member.genome, values, told=True,
                                                        violation=violation)
        self._told += 1
        if self._told < self.size:
            return []
        return [self.group_event("generation", [m.outcome for m in self.batch],
                                 generation=self.generation)]

    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "handed": self._handed, "told": self._told,
                "batch": individuals_state(self.batch), "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generation, self._handed, self._told = (state["generation"], state["handed"],
                                                     state["told"])
        self.batch = load_individuals(state["batch"], self.objectives)
        set_rng_state(self.rng, state["rng"])

    # ------------------------------------------------------------------ what subclasses change
    def initial(self) -> list[Individual]:
        """Generation 0: N random genomes."""
        return [self.individual(self.toolbox.random_genome()) for _ in range(self.size)]

    def breed(self) -> list[Individual]:
        """The next generation: N parents of this one by the paper's roulette, varied."""
        return self.vary([ind.genome for ind in self.toolbox.select(self.batch, self.size)])

    def vary(self, genomes: list[Any]) -> list[Individual]:
        """Crossover of neighbouring pairs (p_C, q_C), then mutation (p_M, q_M)."""
        for i in range(1, len(genomes), 2):
            genomes[i - 1], genomes[i] = self.toolbox.mate(genomes[i - 1], genomes[i])
        return [self.individual(self.toolbox.mutate(g)) for g in genomes]
