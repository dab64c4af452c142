"""The generational genetic algorithm of Genetic-CNN (Xie & Yuille 2017), as ask/tell.

Generation 0 is N random genomes. Each later generation: Russian-roulette selection of N
copies, stage-wise crossover of neighbouring pairs (p_C, q_C), bit-flip mutation (p_M, q_M),
evaluation of all N. The run does N * (T + 1) evaluations; the run loop's cache trains each
distinct architecture once, so unchanged survivors cost nothing.
"""
from __future__ import annotations

import math
import random
from typing import Any

from evolution.strategies.base import (WORST, Ask, Individual, individuals_state,
                                       load_individuals, make_toolbox, rng_state, set_rng_state)


class GeneticStrategy:
    """Generational GA. ``ask`` hands out the current generation; the next one is bred only
    when every member of this one has been told (a generation is a barrier)."""

    def __init__(self, search: Any, config: Any, rng: random.Random):
        self.config = config
        self.rng = rng
        self.toolbox = make_toolbox(search, config, rng)
        self.size = config.population
        self.budget = config.budget
        self.generation = 0
        self.batch = [Individual(self.toolbox.random_genome()) for _ in range(self.size)]
        self._handed = 0
        self._told = 0

    @property
    def done(self) -> bool:
        return self._told == self.size and self.generation >= self.config.generations

    def ask(self, n: int) -> list[Ask]:
        if self._told == self.size and self.generation < self.config.generations:
            self.batch = self._breed(self.batch)  # bred on demand: a finished run can extend
            self.generation += 1
            self._handed = self._told = 0
        asks = []
        while len(asks) < n and self._handed < self.size:
            ticket = self.generation * self.size + self._handed
            asks.append(Ask(ticket, self.batch[self._handed].genome))
            self._handed += 1
        return asks

    def tell(self, ticket: int, fitness: float) -> list[dict[str, Any]]:
        generation, position = divmod(ticket, self.size)
        member = self.batch[position] if generation == self.generation else None
        if member is None or position >= self._handed or member.fitness.valid:
            raise ValueError(f"ticket {ticket} was not asked in generation {self.generation} "
                             f"or was already told")
        member.fitness.values = (fitness if math.isfinite(fitness) else WORST,)
        self._told += 1
        if self._told < self.size:
            return []
        values = [m.value for m in self.batch]
        finite = [v for v in values if math.isfinite(v)]
        return [{"event": "generation", "generation": self.generation,
                 "best": max(finite) if finite else None,
                 "mean": sum(finite) / len(finite) if finite else None,
                 "failures": len(values) - len(finite)}]

    def state_dict(self) -> dict[str, Any]:
        return {"generation": self.generation, "handed": self._handed, "told": self._told,
                "batch": individuals_state(self.batch), "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generation, self._handed, self._told = (state["generation"], state["handed"],
                                                     state["told"])
        self.batch = load_individuals(state["batch"])
        set_rng_state(self.rng, state["rng"])

    def _breed(self, population: list[Individual]) -> list[Individual]:
        offspring = self.toolbox.select(population, len(population))
        genomes = [ind.genome for ind in offspring]
        for i in range(1, len(genomes), 2):
            genomes[i - 1], genomes[i] = self.toolbox.mate(genomes[i - 1], genomes[i])
        return [Individual(self.toolbox.mutate(g)) for g in genomes]
