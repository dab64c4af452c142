"""What every strategy shares: the ask/tell contract, DEAP fitness and individual classes, and
the one place that wires genome operators into a DEAP toolbox.

A strategy only proposes genomes and is told fitness values; it never trains, never touches the
pool and never writes files. The run loop gives every asked genome an evaluation index and seed.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Protocol

from deap import base

from evolution.strategies.selection import roulette, tournament
from genome import binary, cell, choice
from genome.binary import BinaryGenome
from genome.cell import CellGenome
from genome.choice import ChoiceGenome

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


def rng_state(rng: random.Random) -> list[Any]:
    """``rng``'s state as JSON (Mersenne Twister words, no pickle)."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: list[Any]) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def individuals_state(members: Any) -> list[dict[str, Any]]:
    """Population members as JSON: genome dict and fitness (``None`` when not told yet)."""
    return [{"genome": m.genome.to_dict(),
             "fitness": (m.value if math.isfinite(m.value) else None) if m.fitness.valid
             else None, "told": m.fitness.valid} for m in members]


def load_individuals(state: list[dict[str, Any]]) -> list[Individual]:
    from genome import genome_from_dict

    return [Individual(genome_from_dict(m["genome"]),
                       (WORST if m["fitness"] is None else m["fitness"]) if m["told"] else None)
            for m in state]


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

    def state_dict(self) -> dict[str, Any]:
        """Everything the strategy knows, RNG included, as JSON values."""

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the budget comes from the (possibly extended)
        config the strategy was built with."""


def sel_roulette(individuals: list[Individual], k: int, rng: random.Random) -> list[Individual]:
    """DEAP-shaped roulette selection: ``k`` copies drawn by :func:`roulette`."""
    return [individuals[i].copy() for i in roulette([ind.value for ind in individuals], k, rng)]


def sel_tournament(individuals: list[Individual], sample: int,
                   rng: random.Random) -> Individual:
    """The best of ``sample`` members drawn without replacement (:func:`tournament`)."""
    return individuals[tournament([ind.value for ind in individuals], sample, rng)]


def _sometimes(operator: Callable[[Any], Any], p: float, rng: random.Random) -> Callable:
    """``operator`` applied with probability ``p``; otherwise the genome is returned as is."""
    def apply(genome: Any) -> Any:
        return operator(genome) if rng.random() < p else genome
    return apply


def _operators(search: Any, strategy: Any, rng: random.Random) -> dict[str, Callable]:
    """The encoding's operators bound to the space and ``rng``: ``random_genome()``,
    ``mutate_one(g)`` (exactly one mutation, for aging evolution), and for the genetic algorithm
    ``mutate(g)`` and ``mate(a, b)`` with the strategy's rates."""
    ga = getattr(strategy, "name", None) == "genetic"
    if search.encoding == "binary":
        ops = {"random_genome": partial(BinaryGenome.random, tuple(search.stages), rng),
               "mutate_one": partial(binary.mutate_one, rng=rng)}
        if ga:
            ops["mutate"] = partial(binary.mutate, rng=rng, p_m=strategy.p_mutation,
                                    q_m=strategy.q_mutation)
            ops["mate"] = partial(binary.crossover, rng=rng, p_c=strategy.p_crossover,
                                  q_c=strategy.q_crossover)
    elif search.encoding == "cell":
        ops = {"random_genome": partial(CellGenome.random, rng, blocks=search.blocks,
                                        ops=tuple(search.ops)),
               "mutate_one": partial(cell.mutate, rng=rng, ops=tuple(search.ops),
                                     p_hidden=search.mutation.hidden_state,
                                     p_op=search.mutation.op,
                                     p_identity=search.mutation.identity)}
        if ga:  # one paper mutation with probability p_M; q_M has no meaning for cells
            ops["mutate"] = _sometimes(ops["mutate_one"], strategy.p_mutation, rng)
            ops["mate"] = partial(cell.crossover, rng=rng, p_c=strategy.p_crossover,
                                  q_c=strategy.q_crossover)
    elif search.encoding == "choice":
        choices = tuple(tuple(c) for c in search.choices)
        ops = {"random_genome": partial(ChoiceGenome.random, choices, rng),
               "mutate_one": partial(choice.mutate_one, choices=choices, rng=rng)}
        if ga:
            ops["mutate"] = partial(choice.mutate, choices=choices, rng=rng,
                                    p_m=strategy.p_mutation, q_m=strategy.q_mutation)
            ops["mate"] = partial(choice.crossover, rng=rng, p_c=strategy.p_crossover,
                                  q_c=strategy.q_crossover)
    else:
        raise ValueError(f"no operators for encoding {search.encoding!r}")
    return ops


def make_toolbox(search: Any, strategy: Any, rng: random.Random) -> base.Toolbox:
    """The one place that wires operators into a DEAP toolbox, for every encoding and strategy.

    Always registered: ``random_genome()``. Genetic: ``select(individuals, k)`` (roulette,
    copies), ``mate(a, b)``, ``mutate(g)``. Aging: ``select(individuals)`` (the tournament
    winner) and ``mutate(g)`` (exactly one mutation). Variation returns new genomes and never
    changes its arguments; all randomness comes from ``rng``.
    """
    ops = _operators(search, strategy, rng)
    toolbox = base.Toolbox()
    toolbox.register("random_genome", ops["random_genome"])
    if strategy.name == "genetic":
        toolbox.register("select", sel_roulette, rng=rng)
        toolbox.register("mate", ops["mate"])
        toolbox.register("mutate", ops["mutate"])
    elif strategy.name == "aging":
        toolbox.register("select", sel_tournament, sample=strategy.sample, rng=rng)
        toolbox.register("mutate", ops["mutate_one"])
    return toolbox
