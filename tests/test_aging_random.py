"""Aging evolution and random search as ask/tell, for every encoding."""
from __future__ import annotations

import math
import random

import pytest

from evolution.config import config_from_dict
from evolution.strategies import WORST, AgingStrategy, RandomStrategy, make_strategy
from evolution.strategies.selection import tournament
from genome import BinaryGenome, CellGenome, ChoiceGenome
from genome.binary import mutate_one

CHOICE = {"encoding": "choice", "choices": [["a", "b", "c"], [1, 2], [True, False], ["x"]]}
SEARCHES = {
    "binary": {"encoding": "binary", "stages": [3, 4], "channels": [4, 4]},
    "cell": {"encoding": "cell", "blocks": 3, "ops": ["identity", "sep_conv_3x3", "max_pool_3x3"]},
    "choice": CHOICE,
}
GENOMES = {"binary": BinaryGenome, "cell": CellGenome, "choice": ChoiceGenome}


def make(tiny, search, strategy, seed=0):
    config = config_from_dict({**tiny, "search": search, "strategy": strategy})
    return make_strategy(config, random.Random(seed)), config


def score(genome) -> float:
    return (sum(ord(c) for c in genome.key()) % 97) / 97


@pytest.mark.parametrize("encoding", sorted(SEARCHES))
@pytest.mark.parametrize("strategy", [
    {"name": "genetic", "population": 4, "generations": 2, "p_crossover": 1.0, "q_crossover": 0.5},
    {"name": "aging", "population": 4, "sample": 2, "cycles": 8},
    {"name": "random", "evaluations": 12},
])
def test_every_strategy_accepts_every_encoding(tiny, encoding, strategy):
    strat, config = make(tiny, SEARCHES[encoding], strategy)
    told = 0
    while not strat.done:
        asks = strat.ask(3)
        assert asks
        for ask in asks:
            assert isinstance(ask.genome, GENOMES[encoding])
            if encoding == "choice":
                ask.genome.check(CHOICE["choices"])
            strat.tell(ask.ticket, score(ask.genome))
            told += 1
    assert told == strat.budget == config.strategy.budget


def test_aging_population_stays_p_and_the_oldest_leaves_first(tiny):
    strat, config = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 5,
                                                     "sample": 3, "cycles": 20})
    arrivals = []
    while not strat.done:
        (ask,) = strat.ask(1)
        strat.tell(ask.ticket, score(ask.genome))
        arrivals.append(ask.genome)
        assert len(strat.population) == min(len(arrivals), 5)
        # the population is exactly the last P arrivals, oldest on the left
        assert [m.genome for m in strat.population] == arrivals[-5:]
    assert len(arrivals) == 25


def test_aging_children_are_one_mutation_from_a_tournament_winner(tiny):
    strat, _ = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 6, "sample": 6,
                                                "cycles": 5})
    for ask in strat.ask(6):
        strat.tell(ask.ticket, score(ask.genome))
    best = max(strat.population, key=lambda m: m.value).genome
    for _ in range(5):  # sample == population: the parent is always the best member
        (child,) = strat.ask(1)
        flipped = sum(a != b for s, t in zip(best.bits, child.genome.bits) for a, b in zip(s, t))
        assert flipped == 1
        strat.tell(child.ticket, -1.0)  # worse than everyone: the best stays the parent
        best = max(strat.population, key=lambda m: m.value).genome


def test_aging_is_asynchronous(tiny):
    strat, _ = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 3, "sample": 2,
                                                "cycles": 10})
    first = strat.ask(10)
    assert len(first) == 3  # the initial members; children need a told parent
    assert strat.ask(1) == []
    strat.tell(first[1].ticket, 0.5)
    more = strat.ask(2)  # one result is enough to breed, without waiting for the others
    assert len(more) == 2
    with pytest.raises(ValueError):
        strat.tell(first[1].ticket, 0.5)


def test_aging_failures_are_worst_and_never_parents_while_others_live(tiny):
    strat, _ = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 4, "sample": 4,
                                                "cycles": 3})
    initial = strat.ask(4)
    for i, ask in enumerate(initial):
        strat.tell(ask.ticket, 0.9 if i == 2 else WORST)
    events = []
    for _ in range(3):  # the 0.9 member is the parent until it is the oldest and leaves
        (child,) = strat.ask(1)
        assert sum(a != b for s, t in zip(initial[2].genome.bits, child.genome.bits)
                   for a, b in zip(s, t)) == 1
        events += strat.tell(child.ticket, WORST)
    assert [e["evaluations"] for e in events] == [7]
    assert events[0]["failures"] == 3 and events[0]["best"] is None  # 0.9 has aged out


def test_tournament_picks_the_best_of_the_sample():
    rng = random.Random(0)
    fitness = [0.1, 0.9, 0.5, -math.inf, 0.7]
    assert all(tournament(fitness, 5, rng) == 1 for _ in range(20))
    picks = {tournament(fitness, 1, rng) for _ in range(200)}
    assert picks == set(range(5))  # a sample of one is uniform
    with pytest.raises(ValueError):
        tournament([], 2, rng)


def test_random_search_budget_and_windows(tiny):
    strat, _ = make(tiny, SEARCHES["choice"], {"name": "random", "evaluations": 25})
    asks = strat.ask(100)
    assert len(asks) == 25 and strat.ask(1) == []
    events = []
    for ask in asks:
        events += strat.tell(ask.ticket, score(ask.genome))
    assert [e["evaluations"] for e in events] == [10, 20, 25]
    assert strat.done
    assert isinstance(strat, RandomStrategy)


def test_binary_mutate_one_flips_exactly_one_bit():
    rng = random.Random(1)
    genome = BinaryGenome.random((3, 4, 5), rng)
    for _ in range(100):
        child = mutate_one(genome, rng)
        assert sum(a != b for s, t in zip(genome.bits, child.bits) for a, b in zip(s, t)) == 1


def test_aging_config_rules(tiny):
    from evolution.config import ConfigError

    with pytest.raises(ConfigError, match="cannot exceed"):
        config_from_dict({**tiny, "strategy": {"name": "aging", "population": 3, "sample": 4}})
    config = config_from_dict({**tiny, "strategy": {"name": "aging", "population": 7,
                                                    "cycles": 13}})
    assert config.strategy.budget == 20
    assert isinstance(make_strategy(config, random.Random(0)), AgingStrategy)
