"""Search strategies: ask/tell over a DEAP toolbox."""
from __future__ import annotations

import random
from typing import Any

from evolution.strategies.aging import AgingStrategy
from evolution.strategies.base import WORST, Ask, FitnessMax, Individual, Strategy, make_toolbox
from evolution.strategies.genetic import GeneticStrategy
from evolution.strategies.random_search import RandomStrategy

STRATEGIES = {"genetic": GeneticStrategy, "aging": AgingStrategy, "random": RandomStrategy}


def make_strategy(config: Any, rng: random.Random) -> Strategy:
    """The strategy named by ``config.strategy.name``, drawing all randomness from ``rng``."""
    return STRATEGIES[config.strategy.name](config.search, config.strategy, rng)


__all__ = ["WORST", "AgingStrategy", "Ask", "FitnessMax", "GeneticStrategy", "Individual",
           "RandomStrategy", "Strategy", "make_strategy", "make_toolbox"]
