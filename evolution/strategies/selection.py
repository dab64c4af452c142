"""Selection the papers define and DEAP does not have: plain functions over fitness values with
an explicit ``random.Random``. (Aging evolution's tournament is DEAP's own ``selTournament``;
see ``evolution.strategies.base``.)

Non-finite fitness (a failed evaluation is ``-inf``) always counts as the worst.
"""
from __future__ import annotations

import math
import random
from typing import Sequence


def roulette(fitnesses: Sequence[float], k: int, rng: random.Random) -> list[int]:
    """Russian-roulette selection of Genetic-CNN: draw ``k`` indices with replacement, each with
    probability proportional to its fitness minus the population's minimum.

    When every weight is zero (all finite fitnesses equal) the draw is uniform over the finite
    ones, and over everyone when all failed. Returns
    indices into ``fitnesses``; the caller decides what to copy.
    """
    if not fitnesses:
        raise ValueError("roulette selection needs a non-empty population")
    finite = [f for f in fitnesses if math.isfinite(f)]
    floor = min(finite) if finite else 0.0
    weights = [f - floor if math.isfinite(f) else 0.0 for f in fitnesses]
    if sum(weights) <= 0.0:  # all tied: uniform over the finite ones (over all if none is)
        pool = [i for i, f in enumerate(fitnesses) if math.isfinite(f)] or range(len(fitnesses))
        return [pool[rng.randrange(len(pool))] for _ in range(k)]
    return rng.choices(range(len(fitnesses)), weights=weights, k=k)
