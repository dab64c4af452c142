"""Search strategies: ask/tell over a DEAP toolbox."""
from __future__ import annotations

import random
from typing import Any

from evolution.strategies.base import WORST, Ask, FitnessMax, Individual, Strategy, make_toolbox
from evolution.strategies.genetic import GeneticStrategy

STRATEGIES = {"genetic": GeneticStrategy}


def make_strategy(config: Any, rng: random.Random) -> Strategy:
    """The strategy named by ``config.strategy.name``, drawing all randomness from ``rng``."""
    return STRATEGIES[config.strategy.name](config.search, config.strategy, rng)


__all__ = ["WORST", "Ask", "FitnessMax", "GeneticStrategy", "Individual", "Strategy",
           "make_strategy", "make_toolbox"]
