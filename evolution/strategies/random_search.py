"""Random search: draw every genome uniformly from the space. The baseline of every comparison,
with the same budget semantics (``evaluations`` results in all)."""
from __future__ import annotations

import random
from typing import Any, Literal

from pydantic import Field

from evolution.objectives import Objectives
from evolution.strategies.base import (Ask, Strategy, Values, make_toolbox, rng_state,
                                       set_rng_state)
from genome import Encoding
from genome.section import Section

REPORT_EVERY = 10
"""Results per ``window`` event."""


class RandomConfig(Section):
    """Random search: the baseline every comparison needs."""

    name: Literal["random"] = "random"
    evaluations: int = Field(100, ge=1, description="genomes drawn and evaluated")

    @property
    def budget(self) -> int:
        return self.evaluations


class RandomStrategy(Strategy):
    name = "random"
    title = "random search"
    Config = RandomConfig
    budget_key = "evaluations"
    multi_objective = True  # it never compares results

    def __init__(self, encoding: Encoding, space: Section, config: RandomConfig,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.toolbox = make_toolbox(encoding, space, rng)
        self._asked: set[int] = set()
        self._handed = 0
        self._told: list[Values] = []

    @property
    def done(self) -> bool:
        return len(self._told) >= self.budget

    def ask(self, n: int) -> list[Ask]:
        asks = []
        while len(asks) < n and self._handed < self.budget:
            asks.append(Ask(self._handed, self.toolbox.random_genome()))
            self._asked.add(self._handed)
            self._handed += 1
        return asks

    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        self._asked.remove(ticket)
        self._told.append(list(values) if values is not None else None)
        if len(self._told) % REPORT_EVERY and len(self._told) != self.budget:
            return []
        return [self.group_event("window", self._told, evaluations=len(self._told))]

    def state_dict(self) -> dict[str, Any]:
        return {"asked": sorted(self._asked), "handed": self._handed, "told": self._told,
                "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._asked = set(state["asked"])
        self._handed = state["handed"]
        self._told = list(state["told"])
        set_rng_state(self.rng, state["rng"])
