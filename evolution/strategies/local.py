"""Local search (White, Nolen, Zela & Hutter 2021: "Local search is state of the art for NAS
benchmarks"), as asynchronous ask/tell.

Start from a random architecture. The current centre is the best result of this climb; its
neighbours (every genome one ``mutate_one`` away: the encoding's :meth:`neighbours` where it
enumerates them, else distinct draws of ``mutate_one`` until :data:`MISSES` in a row bring
nothing new) are evaluated in random order, unevaluated ones only, and the first that beats the
centre becomes the new centre. When every neighbour of the centre is evaluated and none is
better, the centre is a local optimum: the climb restarts from a new random architecture. The
run trains ``evaluations`` distinct architectures.

With ``proposal.surrogate`` the search first trains an initial design of
:data:`~evolution.surrogate.MIN_RESULTS` random architectures (asked at once, so parallel
workers fill), the number the surrogate needs; the climb then starts from the best result so
far (it never waits for the whole design: parallel workers stay busy). The surrogate orders
every neighbourhood, best predicted first: the climb itself is the exploration, so
``proposal.exploration`` applies to restarts (which the surrogate picks among
``proposal.candidates`` random architectures), not to the neighbour order. Both raise local
search's mean best at 25 and 50 architectures on the NK and additive landscapes of
``tests/bench/bench_strategies.py``.
"""
from __future__ import annotations

import random
from typing import Any, Literal, Optional

from pydantic import Field

from evolution.objectives import Objectives
from evolution.strategies.base import (Ask, Individual, Strategy, Values, individuals_state,
                                       load_individuals, make_toolbox, rng_state, set_rng_state)
from genome import Encoding, genome_from_dict
from genome.section import Section

REPORT_EVERY = 10
"""Results per ``window`` event."""
MISSES = 32
"""Sampling a neighbourhood stops after this many draws in a row found nothing new ..."""
MOST = 512
"""... or at this many neighbours."""


class LocalConfig(Section):
    """Local search: the best architecture's unevaluated neighbours first, restart at a local
    optimum (White et al. 2021)."""

    name: Literal["local"] = "local"
    evaluations: int = Field(100, ge=1, description="distinct architectures trained")

    @property
    def budget(self) -> int:
        return self.evaluations


def neighbours(encoding: Encoding, genome: Any, space: Any, rng: random.Random) -> list[Any]:
    """Every genome one ``mutate_one`` from ``genome`` (distinct canonical keys, ``genome``'s
    own excluded), in random order: enumerated by the encoding where it offers
    ``neighbours(genome, space)``, else sampled."""
    enumerate_ = getattr(encoding, "neighbours", None)
    found: dict[str, Any] = {}
    if enumerate_ is not None:
        for other in enumerate_(genome, space):
            found.setdefault(other.key(), other)
    else:
        misses = 0
        while misses < MISSES and len(found) < MOST:
            other = encoding.mutate_one(genome, space, rng)
            if other.key() in found:
                misses += 1
            else:
                found[other.key()] = other
                misses = 0
    found.pop(genome.key(), None)
    out = list(found.values())
    rng.shuffle(out)
    return out


class LocalStrategy(Strategy):
    name = "local"
    title = "local search"
    Config = LocalConfig
    budget_key = "evaluations"

    def __init__(self, encoding: Encoding, space: Section, config: LocalConfig,
                 objectives: Objectives, rng: random.Random):
        super().__init__(encoding, space, config, objectives, rng)
        self.toolbox = make_toolbox(encoding, space, rng)
        self.centre: Optional[Individual] = None
        self.queue: list[Any] = []  # the centre's neighbours not yet asked
        self._asked: dict[int, Any] = {}
        self._handed = 0
        self._told: list[Values] = []
        self.restarts = 0

    @property
    def done(self) -> bool:
        return len(self._told) >= self.budget

    def ask(self, n: int) -> list[Ask]:
        asks = []
        while len(asks) < n and len(self._told) + len(self._asked) < self.budget:
            genome = self._next()
            if genome is None:
                break
            self._asked[self._handed] = genome
            asks.append(Ask(self._handed, genome))
            self._handed += 1
        return asks

    @property
    def initial(self) -> int:
        """Random architectures asked before the first climb: the surrogate's minimum, 1
        without it."""
        from evolution.surrogate import MIN_RESULTS

        return MIN_RESULTS if self.proposer.surrogate is not None else 1

    def _next(self) -> Optional[Any]:
        """The next unevaluated neighbour of the centre, a restart, or ``None`` (wait)."""
        if self._handed < self.initial:
            return self.toolbox.random_genome()  # the initial design
        while self.queue:
            genome = self._pick()
            if not self.proposer.known(genome.key()):
                return genome
        if self._asked:
            return None  # a result still to come may move the centre
        if self.centre is not None:
            self.restarts += 1  # a local optimum: every neighbour evaluated, none better
        self.centre = None
        return self.toolbox.random_genome()

    def _pick(self) -> Any:
        """Pop the next neighbour: the first, or the surrogate's best ranked."""
        surrogate = self.proposer.surrogate
        model = surrogate.model(self.proposer.observations()) if surrogate else None
        if model is None or len(self.queue) == 1:
            return self.queue.pop(0)
        scores = surrogate.score(model, self.queue)
        return self.queue.pop(max(range(len(scores)), key=lambda i: (scores[i], -i)))

    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        if ticket not in self._asked:
            raise ValueError(f"ticket {ticket} was not asked or was already told")
        member = self.individual(self._asked.pop(ticket), values, told=True,
                                 violation=violation)
        if self.centre is None or member.fitness.dominates(self.centre.fitness):
            self.centre = member
            self.queue = neighbours(self.encoding, member.genome, self.space, self.rng)
        self._told.append(list(values) if values is not None else None)
        if len(self._told) % REPORT_EVERY and len(self._told) != self.budget:
            return []
        return [self.group_event("window", self._told,
                                 evaluations=len(self._told))]

    def state_dict(self) -> dict[str, Any]:
        return {"centre": individuals_state([self.centre] if self.centre else []),
                "queue": [g.to_dict() for g in self.queue],
                "asked": {str(t): g.to_dict() for t, g in self._asked.items()},
                "handed": self._handed, "told": self._told, "restarts": self.restarts,
                "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        centre = load_individuals(state["centre"], self.objectives)
        self.centre = centre[0] if centre else None
        self.queue = [genome_from_dict(g) for g in state["queue"]]
        self._asked = {int(t): genome_from_dict(g) for t, g in state["asked"].items()}
        self._handed, self.restarts = state["handed"], state["restarts"]
        self._told = list(state["told"])
        set_rng_state(self.rng, state["rng"])
