"""Several objectives and hard constraints: Deb's constraint domination, DEAP's own NSGA-II /
NSGA-III selection, the Pareto tournament, fronts and hypervolume, infeasible architectures
refused before training, and the front in summary, status, report and export."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from deap import tools

from evolution import run
from evolution.cli import main as cli
from evolution.config import ConfigError, config_from_dict
from evolution.constraints import Constraints
from evolution.journal import read_journal
from evolution.objectives import Objective, Objectives
from evolution.pareto import Fitness, Front, default_reference, front_numbers, hypervolume
from evolution.record import RunRecord
from evolution.strategies import make_strategy
from evolution.strategies.base import Individual
from evolution.strategies.pareto_aging import sel_pareto_tournament
from genome.rng import lend

EVALUATOR = '''
def score(genome, settings):
    """Two conflicting objectives over a choice genome: more is better, but costs size."""
    v = list(genome.values)
    return {"acc": sum(v) / (3.0 * len(v)), "size": 1 + sum(x * x for x in v)}
'''
SPACE = {"encoding": "choice", "choices": [[0, 1, 2, 3]] * 4}
TWO = [{"metric": "acc", "direction": "max"}, {"metric": "size", "direction": "min"}]
W = (1.0, -1.0)


@pytest.fixture
def plugin(user_module):
    return user_module("mo_eval", EVALUATOR) + ":score"


def mo_config(tiny, plugin, strategy, **changes):
    return config_from_dict({**tiny, "search": SPACE, "strategy": strategy, "objectives": TWO,
                             "evaluation": {"evaluator": plugin}, **changes})


# ----------------------------------------------------------------------------- domination
def test_constraint_domination_is_debs_rules():
    feasible_bad = Fitness(W, (0.1, 100.0))
    feasible_good = Fitness(W, (0.9, 10.0))
    other = Fitness(W, (0.95, 50.0))  # better accuracy, larger: neither dominates
    slightly = Fitness(W, (-math.inf, math.inf), violation=0.1)
    badly = Fitness(W, (-math.inf, math.inf), violation=2.0)
    failed = Fitness(W, (-math.inf, math.inf), violation=math.inf)
    assert feasible_good.dominates(feasible_bad) and not feasible_bad.dominates(feasible_good)
    assert not feasible_good.dominates(other) and not other.dominates(feasible_good)
    assert feasible_bad.dominates(slightly)       # any feasible beats any infeasible
    assert slightly.dominates(badly) and not badly.dominates(slightly)
    assert badly.dominates(failed)                # a failure ranks below every violation
    # the ordering DEAP's selTournament takes its max by
    assert sorted([failed, badly, feasible_bad, slightly]) == [failed, badly, slightly,
                                                               feasible_bad]
    levels = front_numbers([(0.1, 100.0), (0.9, 10.0), (0.95, 50.0), (0, 0), (0, 0)], W,
                           [0, 0, 0, 0.1, 2.0])
    assert levels == [1, 0, 0, 2, 3]


def test_rank_key_orders_ok_then_infeasible_by_violation_then_failed():
    objectives = Objectives((Objective("acc"), Objective("size", "min")))
    results = [{"index": 0, "status": "failed", "values": None},
               {"index": 1, "status": "infeasible", "values": None, "violation": 0.5},
               {"index": 2, "status": "ok", "values": [0.5, 10]},
               {"index": 3, "status": "infeasible", "values": None, "violation": 0.1},
               {"index": 4, "status": "ok", "values": [0.4, 20]},   # dominated by 2
               {"index": 5, "status": "ok", "values": [0.3, 5]}]
    ranked = [r["index"] for r in objectives.rank(results)]
    assert ranked == [2, 5, 4, 3, 1, 0]  # front (2, 5) first, then the dominated 4
    assert objectives.rank(results)[0] == min(results, key=objectives.rank_key)
    assert [r["index"] for r in objectives.front(results)] == [2, 5]


def test_front_and_hypervolume_against_a_hand_computed_area():
    front = Front(W)
    assert front.add([0.5, 10], "a") and front.add([0.8, 30], "b")
    assert not front.add([0.4, 20], "dominated")
    assert front.add([0.9, 30], "c")  # dominates b, which leaves
    assert front.items == ["a", "c"]
    # reference (0, 40): a covers 0.5 x 30; c adds (0.9 - 0.5) x 10
    assert front.hypervolume([0.0, 40.0]) == pytest.approx(0.5 * 30 + 0.4 * 10)
    assert hypervolume([[0.9, 50.0]], W, [0.0, 40.0]) == 0.0  # beyond the reference: nothing
    reference = default_reference([[0.5, 10], [0.9, 30]], W)
    assert reference[0] < 0.5 and reference[1] > 30


def test_reference_point_takes_config_values_then_constraint_bounds():
    objectives = Objectives((Objective("acc", reference=0.2), Objective("size", "min")))
    bounded = Constraints.from_dict({"size": {"max": 64}})
    assert objectives.reference([[0.5, 10], [0.9, 30]], bounded) == [0.2, 64]
    assert objectives.reference([[0.5, 10], [0.9, 30]])[1] > 30


# ------------------------------------------------------------------------------ strategies
def drive(strategy, fitness, budget=None):
    """Ask and tell until done; ``fitness(genome)`` -> (values or None, violation)."""
    told = 0
    while not strategy.done:
        asks = strategy.ask(4)
        assert asks, "the strategy waits for results nobody will tell"
        for ask in asks:
            values, violation = fitness(ask.genome)
            strategy.tell(ask.ticket, values, violation=violation)
            told += 1
    return told


def landscape(genome):
    v = list(genome.values)
    size = 1 + sum(x * x for x in v)
    if size > 30:
        return None, (size - 30) / 30  # infeasible
    return (sum(v) / 12.0, size), 0.0


@pytest.mark.parametrize("name,selections", [
    ("nsga2", ("selNSGA2", "selTournamentDCD")),
    ("nsga3", ("selNSGA3", "selRandom")),
])
def test_nsga_runs_deaps_own_selection(tiny, plugin, monkeypatch, name, selections):
    calls = {s: 0 for s in selections}
    for selection in selections:
        real = getattr(tools, selection)

        def spy(*args, _real=real, _name=selection, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)
        monkeypatch.setattr(tools, selection, spy)
    extra = {"divisions": 3} if name == "nsga3" else {}
    config = mo_config(tiny, plugin, {"name": name, "population": 8, "generations": 3, **extra})
    strategy = make_strategy(config, random.Random(0))
    assert drive(strategy, landscape) == 32
    assert all(n >= 3 for n in calls.values()), calls
    assert len(strategy.population) == 8


def test_nsga2_survivors_are_what_selNSGA2_keeps(tiny, plugin):
    config = mo_config(tiny, plugin, {"name": "nsga2", "population": 8, "generations": 1})
    strategy = make_strategy(config, random.Random(1))
    first = strategy.ask(8)
    for ask in first:
        strategy.tell(ask.ticket, *landscape(ask.genome))
    parents = list(strategy.population)
    second = strategy.ask(8)
    for ask in second:
        strategy.tell(ask.ticket, *landscape(ask.genome))
    expected = tools.selNSGA2([m.copy() for m in parents + strategy.batch], 8)
    assert ([(m.genome.key(), m.fitness.values) for m in strategy.population]
            == [(m.genome.key(), m.fitness.values) for m in expected])


def test_nsga3_leaves_numpy_and_random_as_they_were_and_repeats_itself(tiny, plugin):
    config = mo_config(tiny, plugin, {"name": "nsga3", "population": 8, "generations": 3,
                                      "divisions": 3})
    np.random.seed(123)
    random.seed(456)
    runs = []
    for _ in range(2):
        strategy = make_strategy(config, random.Random(5))
        asked = []
        while not strategy.done:
            for ask in strategy.ask(8):
                asked.append(ask.genome.key())
                strategy.tell(ask.ticket, *landscape(ask.genome))
        runs.append(asked)
    assert runs[0] == runs[1]
    assert np.random.randint(1 << 30) == np.random.RandomState(123).randint(1 << 30)
    assert random.random() == random.Random(456).random()


def test_pareto_tournament_takes_the_lower_level_then_the_larger_crowding():
    def member(values, violation=0.0):
        return Individual(None, W, values, violation)
    best = member((0.9, 5.0))  # dominates everyone else: level 0
    # level 1, none dominating another; sorted by accuracy 0.4 and 0.6 are the front's
    # extremes (infinite crowding distance), 0.5 lies between them
    inner, low, high = member((0.5, 10.0)), member((0.4, 9.0)), member((0.6, 12.0))
    infeasible = member((-math.inf, math.inf), 0.3)  # level 2
    population = [inner, best, low, infeasible, high]
    key = {id(best): (0, 0), id(low): (1, 0), id(high): (1, 0), id(inner): (1, 1),
           id(infeasible): (2, 0)}
    seen = set()
    for seed in range(60):
        with lend(random.Random(seed)):
            drawn = tools.selRandom(population, 3)  # the same draws, with replacement
        expected = min(drawn, key=lambda m: key[id(m)])  # the first drawn among equals
        assert sel_pareto_tournament(population, 3, random.Random(seed)) is expected
        seen.add(id(expected))
    assert len(seen) >= 4  # the draws exercised every rule


def test_pareto_aging_is_asynchronous_and_ages_out_the_oldest(tiny, plugin):
    config = mo_config(tiny, plugin, {"name": "pareto_aging", "population": 4, "sample": 2,
                                      "cycles": 6})
    strategy = make_strategy(config, random.Random(0))
    first = strategy.ask(4)
    assert strategy.ask(1) == []  # every initial member is still being evaluated
    strategy.tell(first[0].ticket, *landscape(first[0].genome))
    child = strategy.ask(1)
    assert len(child) == 1  # one result is enough to breed
    for ask in first[1:] + child:
        strategy.tell(ask.ticket, *landscape(ask.genome))
    assert drive(strategy, landscape) == 5 and len(strategy.population) == 4


# ---------------------------------------------------------------------------------- runs
def test_a_constrained_multi_objective_run_records_infeasible_results(tiny, plugin):
    config = mo_config(tiny, plugin, {"name": "nsga2", "population": 8, "generations": 3},
                       constraints={"size": {"max": 20}}, deterministic=True)
    summary = run(config)
    results = [e for e in read_journal(summary.run_dir) if e["event"] == "result"]
    infeasible = [r for r in results if r["status"] == "infeasible"]
    assert infeasible and summary.infeasible == len(infeasible) and summary.failures == 0
    for r in infeasible:
        assert r["values"] is None and not r.get("precheck")  # the evaluator's own metric
        size = r["metrics"]["size"]
        assert size > 20 and r["violation"] == pytest.approx((size - 20) / 20)
        assert r["violations"] == {"size": {"value": size, "max": 20, "by": size - 20}}
        assert "size" in r["message"] and "> max 20" in r["message"]
    # the front: feasible, non-dominated, found by the evaluations it names
    ok = {r["index"]: r for r in results if r["status"] == "ok" and not r["cached"]}
    assert summary.front and all(m["index"] in ok for m in summary.front)
    values = [m["values"] for m in summary.front]
    assert all(v[1] <= 20 for v in values)
    assert not any(a != b and a[0] >= b[0] and a[1] <= b[1] and a != b
                   for a in values for b in values if (a[0] > b[0] or a[1] < b[1]))
    groups = [e for e in read_journal(summary.run_dir) if e["event"] == "generation"]
    assert [g["reference"] for g in groups] == [[groups[0]["reference"][0], 20]] * 4
    hv = [g["hypervolume"] for g in groups]
    assert hv == sorted(hv) and summary.hypervolume == hv[-1] > hv[0] > 0
    assert summary.initial_hypervolume == hv[0]
    assert sum(g["infeasible"] for g in groups) == summary.infeasible
    assert json.loads((summary.run_dir / "summary.json").read_text())["front"] == summary.front


def test_infeasible_architectures_are_not_trained(tiny, monkeypatch):
    """params is known before training: an architecture over the bound never trains."""
    import training.trainer

    trained = []
    real = training.trainer.train

    def counting(model, *args, **kwargs):
        trained.append(sum(p.numel() for p in model.parameters()))
        return real(model, *args, **kwargs)
    monkeypatch.setattr(training.trainer, "train", counting)
    config = config_from_dict({**tiny, "search": {"encoding": "binary", "stages": [3, 3],
                                                  "channels": [4, 8]},
                               "strategy": {"name": "random", "evaluations": 12},
                               "constraints": {"params": {"max": 2700}}})
    summary = run(config)
    results = [e for e in read_journal(summary.run_dir) if e["event"] == "result"]
    refused = [r for r in results if r["status"] == "infeasible" and not r["cached"]]
    assert refused and all(r["precheck"] and r["metrics"]["params"] > 2700 for r in refused)
    assert all("train_seconds" not in r["metrics"] for r in refused)
    assert trained and max(trained) <= 2700  # only feasible architectures trained
    assert summary.skipped == len(refused)
    assert summary.trained + 1 == len(trained)  # and the best, retrained once at the end
    assert summary.trained + summary.skipped + summary.cache_hits == summary.evaluations
    assert summary.best is not None and summary.best["metrics"]["params"] <= 2700


def test_objective_and_constraint_mistakes_are_clear(tiny, plugin):
    def error(**changes):
        with pytest.raises(ConfigError) as info:
            config_from_dict({**tiny, **changes})
        return str(info.value)
    assert "objectives" in error(objectives=[])
    assert "max" in error(objectives=[{"metric": "val_accuracy", "direction": "up"}])
    assert "'latency'" in error(constraints={"latency": {"max": 2}})  # not the trainer's
    assert "needs a bound" in error(constraints={"params": {}})
    assert "above its max" in error(constraints={"params": {"min": 10, "max": 5}})
    assert "several" in error(objectives=TWO, evaluation={"evaluator": plugin})  # genetic: one
    # a user evaluator may constrain any metric it returns
    mo_config(tiny, plugin, {"name": "nsga2"}, constraints={"anything": {"min": 0}})


# -------------------------------------------------------------------- status, report, export
def test_front_in_status_report_and_export(tiny, capsys):
    config = config_from_dict({
        **tiny, "strategy": {"name": "nsga2", "population": 4, "generations": 1},
        "objectives": [{"metric": "val_accuracy", "direction": "max"},
                       {"metric": "params", "direction": "min"}]})
    summary = run(config)
    run_dir = summary.run_dir
    front = RunRecord(run_dir).front()
    assert front and [m["index"] for m in front] == [m["index"] for m in summary.front]

    assert cli(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert f"Pareto front: {len(front)} architectures, hypervolume" in out
    assert "reference point: val_accuracy" in out
    for member in front:
        assert f"{member['index']:>10}" in out

    assert cli(["show", str(run_dir)]) == 0
    written = capsys.readouterr().out
    assert "front.png" in written and "hypervolume.png" in written
    report = (run_dir / "report" / "report.md").read_text()
    assert "## Pareto front" in report and "| hypervolume |" in report

    assert cli(["export", str(run_dir), "--pareto", "--formats", "weights"]) == 0
    folders = capsys.readouterr().out.split()
    assert len(folders) == len(front)
    index = json.loads((run_dir / "export" / "index.json").read_text())
    assert index["selection"] == "pareto front"
    for folder, member in zip(folders, front):
        card = (run_dir / "export" / folder.rsplit("/", 1)[-1] / "README.md").read_text()
        assert "objectives (search)" in card
        assert f"max val_accuracy = {member['values'][0]:.6g}" in card
        assert f"min params = {member['values'][1]:.6g}" in card


@pytest.mark.parametrize("strategy", [
    {"name": "nsga2", "population": 8, "generations": 7},
    {"name": "nsga3", "population": 8, "generations": 7, "divisions": 3},
    {"name": "pareto_aging", "population": 8, "sample": 4, "cycles": 56},
])
def test_no_architecture_is_proposed_twice_while_the_space_has_new_ones(tiny, plugin, strategy):
    """64 architectures trained in a space of 256: a converging population repeats itself
    unless its repeats are varied away, so every proposal is new and none is a cache hit."""
    summary = run(mo_config(tiny, plugin, strategy, deterministic=True))
    asks = [e["key"] for e in read_journal(summary.run_dir) if e["event"] == "ask"]
    assert len(asks) == 64 and len(set(asks)) == 64
    assert summary.cache_hits == 0 and summary.trained == 64


def test_pareto_aging_samples_half_the_population_unless_told():
    from evolution.strategies.pareto_aging import ParetoAgingConfig
    assert ParetoAgingConfig().sample == ParetoAgingConfig().population // 2
    assert ParetoAgingConfig(population=7).sample == 3
    assert ParetoAgingConfig(population=30, sample=4).sample == 4
    with pytest.raises(ValueError, match="cannot exceed"):
        ParetoAgingConfig(population=4, sample=5)
