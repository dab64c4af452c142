"""Aging (regularized) evolution, Real et al. 2019, Algorithm 1, as asynchronous ask/tell.

The first P asks are random genomes. After that, every ask samples S members of the current
population uniformly with replacement, mutates the best of them once, and proposes the child;
it never waits for a generation, so a free worker always gets work. Every told result joins the
population on the right and, once the population holds more than P, the oldest member leaves
on the left: age, not fitness, decides who dies. Failed evaluations are members with the worst
fitness. The run trains P + C distinct architectures (C = ``cycles``): a repeat the run's cache
answers is free and (unless ``proposal.repeats`` asks for the paper's behaviour) never joins
the population, so the same architecture cannot crowd it.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Any, Literal

from pydantic import Field, model_validator

from evolution.objectives import Objectives
from evolution.strategies.base import (Ask, Individual, Strategy, Values, individuals_state,
                                       load_individuals, make_toolbox, rng_state,
                                       sel_tournament, set_rng_state)
from genome import Encoding, genome_from_dict
from genome.section import Section


class AgingConfig(Section):
    """Aging (regularized) evolution (Real et al. 2019, Algorithm 1), steady-state."""

    name: Literal["aging"] = "aging"
    population: int = Field(20, ge=2, description="population size P")
    sample: int = Field(5, ge=1, description="tournament sample size S")
    cycles: int = Field(80, ge=0, description="children after the initial population")

    @model_validator(mode="after")
    def _check(self) -> "AgingConfig":
        if self.sample > self.population:
            raise ValueError(f"strategy.sample ({self.sample}) cannot exceed "
                             f"strategy.population ({self.population})")
        return self

    @property
    def budget(self) -> int:
        return self.population + self.cycles


class AgingStrategy(Strategy):
    name = "aging"
    title = "aging evolution"
    Config = AgingConfig
    budget_key = "cycles"

    def __init__(self, encoding: Encoding, space: Section, config: AgingConfig,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.toolbox = make_toolbox(encoding, space, rng,
                                    select=(sel_tournament, {"tournsize": config.sample}))
        self.size = config.population
        self.population: deque[Individual] = deque()
        self._asked: dict[int, Any] = {}
        self._handed = 0
        self._told = 0

    @property
    def done(self) -> bool:
        return self._told >= self.budget

    def ask(self, n: int) -> list[Ask]:
        asks = []
        while len(asks) < n and self._told + len(self._asked) < self.budget:
            if self._handed < self.size:
                genome = self.toolbox.random_genome()
            elif self.population:
                genome = self.proposer.propose(self._child, draw_again=False)
            else:  # every initial member is still being evaluated
                break
            self._asked[self._handed] = genome
            asks.append(Ask(self._handed, genome))
            self._handed += 1
        return asks

    def _child(self) -> Any:
        """A tournament's winner mutated once (each surrogate candidate has its own
        tournament)."""
        parent = self.toolbox.select(list(self.population))
        return self.encoding.mutate_one(parent.genome, self.space, self.rng)

    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        self.population.append(self.individual(self._asked.pop(ticket), values, told=True,
                                               violation=violation))
        if len(self.population) > self.size:
            self.population.popleft()
        return self._told_one()

    def tell_repeat(self, ticket: int, values: Values, violation: float = 0.0
                    ) -> list[dict[str, Any]]:
        """A cache hit: free (the budget grows by one); it joins the population only with
        ``proposal.repeats`` (the paper's behaviour, where every child is trained anew)."""
        if self.proposer.repeats:
            return super().tell_repeat(ticket, values, violation)
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        del self._asked[ticket]
        self.budget += 1
        return self._told_one()

    def _told_one(self) -> list[dict[str, Any]]:
        self._told += 1
        if self._told % self.size and self._told != self.budget:
            return []
        return [self.group_event("window", [m.outcome for m in self.population],
                                 evaluations=self._told)]

    def state_dict(self) -> dict[str, Any]:
        return {"population": individuals_state(self.population),
                "asked": {str(t): g.to_dict() for t, g in self._asked.items()},
                "handed": self._handed, "told": self._told, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.population = deque(load_individuals(state["population"], self.objectives))
        self._asked = {int(t): genome_from_dict(g) for t, g in state["asked"].items()}
        self._handed, self._told = state["handed"], state["told"]
        set_rng_state(self.rng, state["rng"])
