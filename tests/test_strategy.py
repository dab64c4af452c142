"""The generational GA as ask/tell: generations are barriers, budgets are exact, failures (told
as ``None``) are the worst, and the DEAP toolbox wiring returns new genomes."""
from __future__ import annotations

import math
import random

import pytest

from evolution.config import config_from_dict
from evolution.strategies import GeneticStrategy, Individual, make_strategy, make_toolbox
from evolution.strategies.base import sel_roulette
from genome import BinaryGenome, get_encoding


def strategy(tiny, seed=0, **changes):
    config = config_from_dict(tiny).replace(**changes)
    return make_strategy(config, random.Random(seed)), config


def drive(strat, fitness):
    """Ask one at a time and tell at once (``fitness`` returns the one objective's value, or
    ``None`` for a failure); return the asks and the events."""
    asks, events = [], []
    while not strat.done:
        batch = strat.ask(1)
        assert batch, "a sequential driver must always get a genome"
        asks += batch
        value = fitness(batch[0].genome)
        events += strat.tell(batch[0].ticket, None if value is None else (value,))
    return asks, events


def test_budget_and_generation_events(tiny):
    strat, config = strategy(tiny)
    asks, events = drive(strat, lambda g: sum(map(sum, g.bits)) / 10)
    n, t = config.strategy.population, config.strategy.generations
    assert len(asks) == strat.budget == n * (t + 1)
    assert [e["generation"] for e in events] == list(range(t + 1))
    assert all(e["best"] >= e["mean"] for e in events)
    assert strat.ask(5) == []


def test_generation_is_a_barrier(tiny):
    strat, config = strategy(tiny)
    n = config.strategy.population
    first = strat.ask(100)
    assert len(first) == n
    assert strat.ask(1) == []  # nothing more until the whole generation is told
    for ask in first[:-1]:
        assert strat.tell(ask.ticket, (0.5,)) == []
        assert strat.ask(1) == []
    assert strat.tell(first[-1].ticket, (0.5,))[0]["generation"] == 0
    assert len(strat.ask(100)) == n


def test_tell_rejects_unknown_and_repeated_tickets(tiny):
    strat, _ = strategy(tiny)
    ask = strat.ask(1)[0]
    strat.tell(ask.ticket, (0.1,))
    with pytest.raises(ValueError):
        strat.tell(ask.ticket, (0.1,))
    with pytest.raises(ValueError):
        strat.tell(ask.ticket + 1, (0.1,))  # not asked yet


def test_failures_are_worst(tiny):
    strat, _ = strategy(tiny)
    _, events = drive(strat, lambda g: None if g.bits[0][0] else 0.9)
    assert all(e["best"] in (0.9, None) for e in events)
    assert all(m.outcome is None and m.violation == math.inf
               for m in strat.batch if m.genome.bits[0][0])


def test_same_seed_same_proposals(tiny):
    fitness = lambda g: sum(map(sum, g.bits)) / 10  # noqa: E731
    a = [x.genome for x in drive(strategy(tiny, seed=5)[0], fitness)[0]]
    b = [x.genome for x in drive(strategy(tiny, seed=5)[0], fitness)[0]]
    c = [x.genome for x in drive(strategy(tiny, seed=6)[0], fitness)[0]]
    assert a == b and a != c


def test_selection_pressure_improves_a_simple_landscape(tiny):
    """On 'count the ones' the GA's last generation is better on average than the first."""
    strat, _ = strategy(tiny, seed=1, **{"search.stages": [5, 5], "search.channels": [4, 4],
                                         "strategy.population": 20,
                                         "strategy.generations": 10,
                                         "strategy.q_mutation": 0.05})
    _, events = drive(strat, lambda g: sum(map(sum, g.bits)) / 20)
    assert events[-1]["mean"] > events[0]["mean"] + 0.1


def test_toolbox_wires_operators_with_rates(tiny):
    config = config_from_dict(tiny)
    rng = random.Random(0)
    toolbox = make_toolbox(get_encoding("binary"), config.search, rng,
                           mutate={"p_m": 1.0, "q_m": 1.0})
    genome = toolbox.random_genome()
    assert isinstance(genome, BinaryGenome) and genome.stages == (2, 3)
    flipped = toolbox.mutate(genome)
    assert all(a != b for s, t in zip(genome.bits, flipped.bits) for a, b in zip(s, t))
    one = toolbox.mutate_one(genome)
    assert sum(a != b for s, t in zip(genome.bits, one.bits) for a, b in zip(s, t)) == 1
    assert isinstance(make_strategy(config, rng), GeneticStrategy)


def test_roulette_toolbox_select_returns_copies(tiny):
    config = config_from_dict(tiny)
    toolbox = make_toolbox(get_encoding("binary"), config.search, random.Random(0),
                           select=(sel_roulette, {}))
    population = [Individual(toolbox.random_genome(), (1.0,), (f,)) for f in (0.1, 0.5, 0.9)]
    chosen = toolbox.select(population, 10)
    assert len(chosen) == 10
    assert all(c not in population for c in chosen)
    assert all(c.value != 0.1 for c in chosen)  # the minimum has weight 0
    assert math.isinf(Individual(population[0].genome, (1.0,)).value)


def test_a_minimised_objective_selects_the_smallest(tiny):
    """With direction min, roulette weights the smaller values (DEAP's wvalues)."""
    config = config_from_dict(tiny)
    toolbox = make_toolbox(get_encoding("binary"), config.search, random.Random(0),
                           select=(sel_roulette, {}))
    population = [Individual(toolbox.random_genome(), (-1.0,), (f,)) for f in (1.0, 2.0, 3.0)]
    chosen = toolbox.select(population, 200)
    assert all(c.fitness.values != (3.0,) for c in chosen)  # the largest has weight 0
    picked = [c.fitness.values[0] for c in chosen]
    assert picked.count(1.0) > picked.count(2.0) > 0
