"""Random search: draw every genome uniformly from the space. The baseline of every comparison,
with the same budget semantics (``evaluations`` results in all)."""
from __future__ import annotations

import math
import random
from typing import Any

from evolution.strategies.aging import window_event
from evolution.strategies.base import WORST, Ask, make_toolbox, rng_state, set_rng_state

REPORT_EVERY = 10


class RandomStrategy:
    def __init__(self, search: Any, config: Any, rng: random.Random):
        self.rng = rng
        self.toolbox = make_toolbox(search, config, rng)
        self.budget = config.budget
        self._asked: set[int] = set()
        self._handed = 0
        self._told: list[float] = []

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

    def tell(self, ticket: int, fitness: float) -> list[dict[str, Any]]:
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        self._asked.remove(ticket)
        self._told.append(fitness if math.isfinite(fitness) else WORST)
        if len(self._told) % REPORT_EVERY and len(self._told) != self.budget:
            return []
        return [window_event("window", len(self._told), self._told,
                             self._told[-REPORT_EVERY:])]

    def state_dict(self) -> dict[str, Any]:
        return {"asked": sorted(self._asked), "handed": self._handed,
                "told": [v if math.isfinite(v) else None for v in self._told],
                "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._asked = set(state["asked"])
        self._handed = state["handed"]
        self._told = [WORST if v is None else v for v in state["told"]]
        set_rng_state(self.rng, state["rng"])
