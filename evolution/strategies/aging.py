"""Aging (regularized) evolution, Real et al. 2019, Algorithm 1, as asynchronous ask/tell.

The first P asks are random genomes. After that, every ask samples S members of the current
population, mutates the best of them once, and proposes the child; it never waits for a
generation, so a free worker always gets work. Every told result joins the population on the
right and, once the population holds more than P, the oldest member leaves on the left: age,
not fitness, decides who dies. Failed evaluations are members with the worst fitness.
The run does P + C evaluations (C = ``cycles``).
"""
from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

from evolution.strategies.base import (WORST, Ask, Individual, individuals_state,
                                       load_individuals, make_toolbox, rng_state, set_rng_state)


def window_event(kind: str, evaluations: int, values: list[float],
                 window: list[float]) -> dict[str, Any]:
    """Statistics of a population (``values``) after ``evaluations`` results; ``window`` holds
    the fitness told since the last event, for its failure count."""
    finite = [v for v in values if math.isfinite(v)]
    return {"event": kind, "evaluations": evaluations,
            "best": max(finite) if finite else None,
            "mean": sum(finite) / len(finite) if finite else None,
            "failures": sum(not math.isfinite(v) for v in window)}


class AgingStrategy:
    def __init__(self, search: Any, config: Any, rng: random.Random):
        self.config = config
        self.rng = rng
        self.toolbox = make_toolbox(search, config, rng)
        self.size = config.population
        self.budget = config.budget
        self.population: deque[Individual] = deque()
        self._asked: dict[int, Any] = {}
        self._handed = 0
        self._told = 0
        self._window: list[float] = []

    @property
    def done(self) -> bool:
        return self._told >= self.budget

    def ask(self, n: int) -> list[Ask]:
        asks = []
        while len(asks) < n and self._handed < self.budget:
            if self._handed < self.size:
                genome = self.toolbox.random_genome()
            elif self.population:
                parent = self.toolbox.select(list(self.population))
                genome = self.toolbox.mutate(parent.genome)
            else:  # every initial member is still being evaluated
                break
            self._asked[self._handed] = genome
            asks.append(Ask(self._handed, genome))
            self._handed += 1
        return asks

    def tell(self, ticket: int, fitness: float) -> list[dict[str, Any]]:
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        fitness = fitness if math.isfinite(fitness) else WORST
        self.population.append(Individual(self._asked.pop(ticket), fitness))
        if len(self.population) > self.size:
            self.population.popleft()
        self._told += 1
        self._window.append(fitness)
        if self._told % self.size and self._told != self.budget:
            return []
        event = window_event("window", self._told, [m.value for m in self.population],
                             self._window)
        self._window = []
        return [event]

    def state_dict(self) -> dict[str, Any]:
        return {"population": individuals_state(self.population),
                "asked": {str(t): g.to_dict() for t, g in self._asked.items()},
                "handed": self._handed, "told": self._told,
                "window": [v if math.isfinite(v) else None for v in self._window],
                "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        from genome import genome_from_dict

        self.population = deque(load_individuals(state["population"]))
        self._asked = {int(t): genome_from_dict(g) for t, g in state["asked"].items()}
        self._handed, self._told = state["handed"], state["told"]
        self._window = [WORST if v is None else v for v in state["window"]]
        set_rng_state(self.rng, state["rng"])
