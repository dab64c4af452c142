"""Aging evolution and random search as ask/tell, for every encoding."""
from __future__ import annotations

import math
import random

import pytest

from evolution.config import config_from_dict
from deap import tools

from evolution.strategies import AgingStrategy, Individual, RandomStrategy, make_strategy
from evolution.strategies.base import sel_tournament
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


def score(genome) -> tuple[float]:
    return ((sum(ord(c) for c in genome.key()) % 97) / 97,)


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


def flips(a, b) -> int:
    return sum(x != y for s, t in zip(a.bits, b.bits) for x, y in zip(s, t))


def test_aging_children_are_one_mutation_from_a_member(tiny):
    """The paper's mutation (with ``proposal.repeats``: no repeated child is varied again)."""
    strat, _ = make({**tiny, "proposal": {"repeats": True}}, SEARCHES["binary"],
                    {"name": "aging", "population": 6, "sample": 3, "cycles": 30})
    for ask in strat.ask(6):
        strat.tell(ask.ticket, score(ask.genome))
    for _ in range(30):
        members = [m.genome for m in strat.population]
        (child,) = strat.ask(1)
        assert any(flips(m, child.genome) == 1 for m in members)
        strat.tell(child.ticket, score(child.genome))


def test_tournament_is_deaps_with_replacement_drawing_from_the_strategy_rng():
    """``sel_tournament`` is DEAP's ``selTournament`` fed from the given generator: the same
    winners as DEAP run on the global ``random`` seeded alike, the generator advanced, the
    global state untouched; sampling with replacement lets the worse of two win a quarter of
    the time (both draws land on it)."""
    members = [Individual(BinaryGenome.from_string("1"), (1.0,), (v,)) for v in (0.2, 0.8)]
    rng = random.Random(7)
    random.seed(123)
    before = random.getstate()
    ours = [sel_tournament(members, 2, rng) for _ in range(4000)]
    assert random.getstate() == before
    random.seed(7)
    theirs = [tools.selTournament(members, 1, 2)[0] for _ in range(4000)]
    assert [m.fitness.values for m in ours] == [m.fitness.values for m in theirs]
    assert rng.getstate() == random.getstate()
    worse = sum(m is members[0] for m in ours) / len(ours)
    assert 0.2 < worse < 0.3


def test_lends_from_two_threads_take_turns_and_each_draws_its_own_sequence():
    """Two searches in one process lend their generators from two threads: each operator call
    draws exactly its own generator's numbers, and the module's functions are its own after."""
    import threading

    from genome.rng import lend

    own = random.random
    draws: dict[int, list[float]] = {1: [], 2: []}

    def search(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(2000):
            with lend(rng):
                draws[seed].append(random.random() + random.choice(range(10)))

    threads = [threading.Thread(target=search, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for seed in (1, 2):
        alone = random.Random(seed)
        assert draws[seed] == [alone.random() + alone.choice(range(10)) for _ in range(2000)]
    assert random.random == own


def test_nested_lends_draw_from_the_innermost_generator_and_restore_each_outer_one():
    """A proposal lends its generator for a batch of candidates and each operator lends it
    again; an operator may lend another generator inside (numpy's too). Every draw comes from
    the generator lent innermost, and each exit restores what was lent before, down to the
    module's own functions, even when the block raises."""
    import numpy as np

    from genome.rng import lend

    own, outer, inner = random.random, random.Random(1), random.Random(2)
    twin_outer, twin_inner = random.Random(1), random.Random(2)
    np.random.seed(5)
    np_state = np.random.get_state()[1].copy()
    drawn, expected = [], []
    with lend(outer):
        drawn.append(random.random())
        with lend(outer):
            drawn.append(random.random())
        drawn.append(random.random())
        with lend(inner, numpy=True):
            drawn.append(random.random())
            assert not np.array_equal(np.random.get_state()[1], np_state)
        drawn.append(random.random())
        with pytest.raises(KeyError):
            with lend(inner):
                drawn.append(random.random())
                raise KeyError("the block fails")
        drawn.append(random.random())
    expected = [twin_outer.random(), twin_outer.random(), twin_outer.random()]
    twin_inner.getrandbits(32)  # numpy's seed
    expected += [twin_inner.random(), twin_outer.random(), twin_inner.random(),
                 twin_outer.random()]
    assert drawn == expected
    assert random.random == own
    assert np.array_equal(np.random.get_state()[1], np_state)


def test_aging_is_asynchronous(tiny):
    strat, _ = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 3, "sample": 2,
                                                "cycles": 10})
    first = strat.ask(10)
    assert len(first) == 3  # the initial members; children need a told parent
    assert strat.ask(1) == []
    strat.tell(first[1].ticket, (0.5,))
    more = strat.ask(2)  # one result is enough to breed, without waiting for the others
    assert len(more) == 2
    with pytest.raises(ValueError):
        strat.tell(first[1].ticket, (0.5,))


def test_aging_failures_are_worst_and_lose_every_tournament_they_meet_a_success_in(tiny):
    strat, _ = make(tiny, SEARCHES["binary"], {"name": "aging", "population": 4, "sample": 4,
                                                "cycles": 3})
    initial = strat.ask(4)
    for i, ask in enumerate(initial):
        strat.tell(ask.ticket, (0.9,) if i == 2 else None)
    failed, success = strat.population[0], strat.population[2]
    assert failed.outcome is None and math.isinf(failed.value)
    assert failed.fitness < success.fitness  # DEAP's comparison: a tournament's max
    events = []
    for _ in range(3):
        (child,) = strat.ask(1)
        events += strat.tell(child.ticket, None)
    assert [e["evaluations"] for e in events] == [7]
    assert events[0]["best"] is None  # 0.9 has aged out


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
