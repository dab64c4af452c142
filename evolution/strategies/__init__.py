"""Search strategies: ask/tell over a DEAP toolbox, by name.

A new strategy is a module with a :class:`Strategy` subclass and one entry in
:data:`STRATEGIES`.
"""
from __future__ import annotations

import random
from typing import Any, Optional

from evolution.objectives import Objectives
from evolution.strategies.aging import AgingStrategy
from evolution.strategies.base import (Ask, Fitness, Individual, Strategy, Values,
                                       make_toolbox)
from evolution.strategies.genetic import GeneticStrategy
from evolution.strategies.local import LocalStrategy
from evolution.strategies.nsga2 import NSGA2Strategy
from evolution.strategies.nsga3 import NSGA3Strategy
from evolution.strategies.pareto_aging import ParetoAgingStrategy
from evolution.strategies.proposal import History
from evolution.strategies.random_search import RandomStrategy
from genome import get_encoding
from genome.registry import Registry

STRATEGIES = Registry("strategy")
"""``strategy.name`` -> strategy class, in the order the docs list them."""
for _cls in (GeneticStrategy, AgingStrategy, NSGA2Strategy, NSGA3Strategy, ParetoAgingStrategy,
             RandomStrategy, LocalStrategy):
    STRATEGIES.add(_cls.name, _cls)


def make_strategy(config: Any, rng: random.Random, history: Optional[History] = None
                  ) -> Strategy:
    """The strategy ``config.strategy`` names, over ``config.search`` with the run's
    objectives, drawing all randomness from ``rng``, its proposals filtered as
    ``config.proposal`` says against ``history`` (the run loop's; none: nothing known)."""
    strategy = STRATEGIES[config.strategy.name](get_encoding(config.search.encoding),
                                                config.search, config.strategy,
                                                Objectives.from_config(config), rng)
    strategy.proposer.configure(config.proposal, config.seed, history)
    return strategy


__all__ = ["STRATEGIES", "AgingStrategy", "Ask", "Fitness", "GeneticStrategy", "Individual",
           "LocalStrategy", "RandomStrategy", "Strategy", "Values", "make_strategy", "make_toolbox"]
