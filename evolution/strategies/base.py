"""What every strategy shares: the ask/tell contract, the DEAP fitness and individual classes,
and the one place that wires an encoding's operators into a DEAP toolbox.

A strategy only proposes genomes and is told objective values; it never trains, never touches
the pool and never writes files. The run loop gives every asked genome an evaluation index and
seed. A new strategy is a module with a :class:`Strategy` subclass (its name, title, config
section and budget key) and one line in ``evolution/strategies/__init__.py``.
"""
from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping, Optional, Sequence

from deap import base, tools

from evolution.objectives import Objectives
from evolution.pareto import Fitness
from evolution.strategies.proposal import Proposer
from evolution.strategies.selection import roulette
from genome import Encoding, genome_from_dict
from genome.rng import lend
from genome.section import Section

Values = Optional[Sequence[float]]
"""What a strategy is told: the objective values in config order, or ``None`` for a result
that is not ok, which ranks below every real one; with a ``violation`` (Deb's rules, see
:mod:`evolution.pareto`): 0 when ok, how much an infeasible result broke the constraints,
``inf`` when it failed, timed out or crashed."""


class Individual:
    """A population member: a frozen genome plus its DEAP fitness (with the constraint
    violation). Copying an individual shares the genome (it cannot change) and copies the
    fitness."""

    __slots__ = ("genome", "fitness")

    def __init__(self, genome: Any, weights: Sequence[float],
                 values: Optional[Sequence[float]] = None, violation: float = 0.0):
        self.genome = genome
        self.fitness = Fitness(weights, values if values is not None else (), violation)

    @property
    def told(self) -> bool:
        return self.fitness.valid

    @property
    def violation(self) -> float:
        return self.fitness.violation

    @property
    def outcome(self) -> Values:
        """The told values, or ``None`` when untold, infeasible or failed (told the worst
        values)."""
        values = self.fitness.values if self.told else None
        ok = values is not None and not self.violation and all(map(math.isfinite, values))
        return values if ok else None

    @property
    def value(self) -> float:
        """The first objective turned so that larger is better (``-inf`` if failed or untold):
        what the single-objective operators select on."""
        return self.fitness.wvalues[0] if self.fitness.valid else -math.inf

    def copy(self) -> "Individual":
        return Individual(self.genome, self.fitness.weights,
                          self.fitness.values if self.fitness.valid else None, self.violation)


def rng_state(rng: random.Random) -> list[Any]:
    """``rng``'s state as JSON (Mersenne Twister words, no pickle)."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: list[Any]) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def individuals_state(members: Any) -> list[dict[str, Any]]:
    """Population members as JSON: genome dict, values (``None`` when untold, failed or
    infeasible; a pruned member keeps its partial values) and violation (``None`` for
    ``inf``)."""
    return [{"genome": m.genome.to_dict(), "values": _told_values(m), "told": m.told,
             "violation": m.violation if math.isfinite(m.violation) else None}
            for m in members]


def _told_values(member: Individual) -> Optional[list[float]]:
    values = member.fitness.values if member.told else ()
    return list(values) if values and all(map(math.isfinite, values)) else None


def load_individuals(state: list[dict[str, Any]], objectives: Objectives) -> list[Individual]:
    members = []
    for m in state:
        violation = m["violation"] if m["violation"] is not None else math.inf
        values = None
        if m["told"]:
            values = m["values"] if m["values"] is not None else objectives.worst
        members.append(Individual(genome_from_dict(m["genome"]), objectives.weights, values,
                                  violation if m["told"] else 0.0))
    return members


@dataclass(frozen=True)
class Ask:
    """One genome a strategy wants evaluated; ``ticket`` comes back with its result."""

    ticket: int
    genome: Any


class Strategy(ABC):
    """The ask/tell contract every search strategy follows.

    Subclasses set ``name`` (``strategy.name``), ``title``, ``Config`` (the ``strategy:``
    section, with ``name: Literal[...]`` and a ``budget`` property counting evaluations) and
    ``budget_key`` (the one key of that section a resume may raise); ``multi_objective`` says
    whether it handles several objectives."""

    name: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type[Section]]
    budget_key: ClassVar[str]
    multi_objective: ClassVar[bool] = False

    def __init__(self, encoding: Encoding, space: Section, config: Any,
                 objectives: Objectives, rng: random.Random):
        self.encoding, self.space, self.config = encoding, space, config
        self.objectives = objectives
        self.rng = rng
        self.budget = config.budget

    @property
    @abstractmethod
    def done(self) -> bool:
        """True once every evaluation the strategy will ask for has been told."""

    @abstractmethod
    def ask(self, n: int) -> list[Ask]:
        """Up to ``n`` genomes to evaluate now; fewer (even none) while it waits for results."""

    @abstractmethod
    def tell(self, ticket: int, values: Values, violation: float = 0.0
             ) -> list[dict[str, Any]]:
        """The objective values of an asked genome (``None`` for a result that is not ok) and
        its ``violation`` (see :data:`Values`). Returns events worth recording, such as a
        finished generation."""

    def tell_curve(self, ticket: int, curve: Sequence[Mapping[str, Any]]) -> None:
        """The learning curve of an asked genome that trained, just before its :meth:`tell`
        (on a resume's replay too): points ``{"epoch": e, metric: value, ...}`` from its first
        epoch to where it finished or was pruned (see :mod:`evolution.curves`). Nothing by
        default; a strategy that reads curves overrides it (and keeps in its state what it
        needs of them)."""

    def tell_repeat(self, ticket: int, values: Values, violation: float = 0.0
                    ) -> list[dict[str, Any]]:
        """A result the run's cache answered (the architecture was evaluated before): free, so
        the budget grows by one (strategies that count generations ignore it), and told like
        any result unless the strategy overrides this."""
        self.budget += 1
        return self.tell(ticket, values, violation)

    @property
    def proposer(self) -> Proposer:
        """The no-repeat / surrogate filter of this strategy's toolbox."""
        return self.toolbox.proposer

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """Everything the strategy knows, RNG included, as JSON values."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`; the budget comes from the (possibly extended)
        config the strategy was built with."""

    # ------------------------------------------------------------------ helpers
    def individual(self, genome: Any, values: Values = None, told: bool = False,
                   violation: float = 0.0) -> Individual:
        """An individual of this run's objectives; told ``None`` values are the worst (and a
        told ``None`` without a violation is a failure: violation ``inf``)."""
        if told and values is None:
            values = self.objectives.worst
            violation = violation or math.inf
        return Individual(genome, self.objectives.weights, values, violation)

    def group_event(self, kind: str, values: Sequence[Values], **fields: Any) -> dict[str, Any]:
        """A ``generation`` / ``window`` journal event: ``fields`` plus the group's best and
        mean (first objective, see :meth:`Objectives.summary`). The run loop adds how many
        results since the previous such event failed or were infeasible, and with several
        objectives the front's size and hypervolume."""
        return {"event": kind, **fields, **self.objectives.summary(values)}


# --------------------------------------------------------------------------- selection
def sel_roulette(individuals: list[Individual], k: int, rng: random.Random) -> list[Individual]:
    """Genetic-CNN's roulette (fitness minus the population's minimum, :func:`roulette`) over
    the first objective: ``k`` copies."""
    return [individuals[i].copy() for i in roulette([ind.value for ind in individuals], k, rng)]


def sel_tournament(individuals: list[Individual], tournsize: int,
                   rng: random.Random) -> Individual:
    """Aging evolution's parent: DEAP's ``tools.selTournament`` (``tournsize`` members drawn
    uniformly *with* replacement, as in Real et al.'s Algorithm 1; the best wins, the first
    drawn among ties) with its draws taken from ``rng``."""
    with lend(rng):
        return tools.selTournament(individuals, 1, tournsize)[0]


def make_toolbox(encoding: Encoding, space: Section, rng: random.Random, *,
                 select: Optional[tuple[Callable[..., Any], Mapping[str, Any]]] = None,
                 mutate: Optional[Mapping[str, float]] = None,
                 mate: Optional[Mapping[str, float]] = None) -> base.Toolbox:
    """The one place that wires operators into a DEAP toolbox, for every encoding and strategy.

    ``random_genome``, ``mutate_one`` and ``mutate`` are decorated by the toolbox's
    :class:`~evolution.strategies.proposal.Proposer` (``toolbox.proposer``): by default they
    propose no architecture the run has evaluated, has in flight or has just been proposed.

    Always registered, bound to ``space`` and ``rng``: ``random_genome()`` and ``mutate_one(g)``
    (exactly one mutation). A strategy asks for what else it uses: ``select`` as ``(function,
    keyword arguments)`` (called with ``rng``), ``mutate(g)`` with the GA's rates (``p_m``,
    ``q_m``) and ``mate(a, b)`` with its crossover rates (``p_c``, ``q_c``). Variation returns
    new genomes and never changes its arguments; all randomness comes from ``rng``.
    """
    toolbox = base.Toolbox()
    toolbox.register("random_genome", encoding.random, space, rng)
    toolbox.register("mutate_one", encoding.mutate_one, space=space, rng=rng)
    if select is not None:
        function, kwargs = select
        toolbox.register("select", function, rng=rng, **kwargs)
    if mutate is not None:
        toolbox.register("mutate", encoding.mutate, space=space, rng=rng, **mutate)
    if mate is not None:
        toolbox.register("mate", encoding.crossover, space=space, rng=rng, **mate)
    toolbox.proposer = Proposer(encoding, space, rng)
    toolbox.decorate("random_genome", toolbox.proposer.decorator(draw_again=True))
    for alias in ("mutate_one", "mutate"):
        if hasattr(toolbox, alias):
            toolbox.decorate(alias, toolbox.proposer.decorator(draw_again=False))
    return toolbox
