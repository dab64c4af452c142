"""Search strategies: ask/tell over a DEAP toolbox, by name.

A new strategy is a module with a :class:`Strategy` subclass and one entry in
:data:`STRATEGIES`.
"""
from __future__ import annotations

import random
from typing import Any

from evolution.objectives import Objectives
from evolution.strategies.aging import AgingStrategy
from evolution.strategies.base import (Ask, Fitness, Individual, Strategy, Values,
                                       make_toolbox)
from evolution.strategies.genetic import GeneticStrategy
from evolution.strategies.nsga2 import NSGA2Strategy
from evolution.strategies.nsga3 import NSGA3Strategy
from evolution.strategies.pareto_aging import ParetoAgingStrategy
from evolution.strategies.random_search import RandomStrategy
from genome import get_encoding
from genome.registry import Registry

STRATEGIES = Registry("strategy")
"""``strategy.name`` -> strategy class, in the order the docs list them."""
for _cls in (GeneticStrategy, AgingStrategy, NSGA2Strategy, NSGA3Strategy, ParetoAgingStrategy,
             RandomStrategy):
    STRATEGIES.add(_cls.name, _cls)


def make_strategy(config: Any, rng: random.Random) -> Strategy:
    """The strategy ``config.strategy`` names, over ``config.search`` with the run's
    objectives, drawing all randomness from ``rng``."""
    return STRATEGIES[config.strategy.name](get_encoding(config.search.encoding), config.search,
                                            config.strategy, Objectives.from_config(config), rng)


__all__ = ["STRATEGIES", "AgingStrategy", "Ask", "Fitness", "GeneticStrategy", "Individual",
           "RandomStrategy", "Strategy", "Values", "make_strategy", "make_toolbox"]
