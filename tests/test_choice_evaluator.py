"""Choice genomes and user evaluators: the way users bring their own spaces and tasks."""
from __future__ import annotations

import json
import random
import subprocess
import os
import sys
from pathlib import Path
import textwrap
from collections import Counter

import pytest

from evolution import resume, run
from evolution.config import ConfigError, config_from_dict
from evolution.evaluator import EvaluatorError, call_evaluator
from evolution.journal import read_journal
from evolution.objectives import ObjectiveError, values_of
from genome import ChoiceGenome, GenomeError, genome_from_dict
from genome.choice import check_choices, crossover, mutate, mutate_one

SPACE = [["conv3x3", "conv1x1", "skip", "pool", "none"]] * 6

PLUGIN = textwrap.dedent('''
    CALLS = []

    def accuracy(genome, settings):
        """A tabular stand-in: score each op, more convs are better."""
        table = {"conv3x3": 1.0, "conv1x1": 0.6, "skip": 0.3, "pool": 0.2, "none": 0.0}
        assert settings["epochs"] >= 1 and "seed" in settings
        return {"accuracy": sum(table[v] for v in genome.values) / 6, "cost": len(genome.values)}

    def plain(genome):
        return 0.5

    def wrong_type(genome):
        return "high"

    def missing_key(genome):
        return {"acc": 1.0}

    def explodes(genome):
        raise RuntimeError("benchmark table missing")
''')


@pytest.fixture
def plugin(user_module):
    return user_module("my_bench", PLUGIN)


# --------------------------------------------------------------------------- choice genome
def test_choice_genome_forms_and_validation():
    genome = ChoiceGenome(("conv3x3", 1, True, 0.5))
    assert ChoiceGenome.from_string(genome.to_string()) == genome
    assert genome_from_dict(json.loads(json.dumps(genome.to_dict()))) == genome
    assert genome.key() == genome.to_string() == '["conv3x3",1,true,0.5]'
    assert hash(genome) == hash(ChoiceGenome(["conv3x3", 1, True, 0.5]))
    genome.check([["conv3x3"], [1, 2], [True, False], [0.5]])
    with pytest.raises(GenomeError, match="position 1"):
        ChoiceGenome(("conv3x3", True)).check([["conv3x3"], [1, 2]])  # True is not 1
    with pytest.raises(GenomeError, match="positions"):
        genome.check([["conv3x3"]])
    for bad in ([], "abc", [None], [[1]]):
        with pytest.raises(GenomeError):
            ChoiceGenome(bad)
    with pytest.raises(GenomeError, match="JSON list"):
        ChoiceGenome.from_string("conv,skip")
    for bad in ([], [[]], [["a", "a"]], "ab", [[None]]):
        with pytest.raises(GenomeError):
            check_choices(bad)


def test_choice_mutation_resamples_one_position_to_a_different_value():
    rng = random.Random(0)
    space = [["a", "b", "c"], ["x"], [1, 2]]
    positions = Counter()
    for _ in range(3000):
        genome = ChoiceGenome.random(space, rng)
        child = mutate_one(genome, space, rng)
        changed = [i for i, (a, b) in enumerate(zip(genome.values, child.values)) if a != b]
        assert len(changed) == 1 and changed[0] != 1  # a single-value position never changes
        child.check(space)
        positions[changed[0]] += 1
    assert 0.45 < positions[0] / 3000 < 0.55
    fixed = ChoiceGenome(("x",))
    assert mutate_one(fixed, [["x"]], rng) is fixed


def test_choice_ga_mutation_rates_and_uniform_crossover():
    rng = random.Random(1)
    space = [list(range(4))] * 20
    parent = ChoiceGenome.random(space, rng)
    changed = sum(a != b for _ in range(500)
                  for a, b in zip(parent.values, mutate(parent, space, rng, p_m=1, q_m=0.2).values))
    assert 0.17 < changed / (500 * 20) < 0.23
    assert mutate(parent, space, rng, p_m=0, q_m=1) is parent
    a, b = ChoiceGenome(tuple("a" * 20)), ChoiceGenome(tuple("b" * 20))
    swapped = 0
    for _ in range(300):
        c, d = crossover(a, b, rng, p_c=1.0)
        assert all({x, y} == {"a", "b"} for x, y in zip(c.values, d.values))
        swapped += c.values.count("b")
    assert 0.45 < swapped / (300 * 20) < 0.55
    assert crossover(a, b, rng, p_c=0.0) == (a, b)
    with pytest.raises(GenomeError):
        crossover(a, ChoiceGenome(("a",)), rng, p_c=1.0)


def test_choice_config_validation(tiny):
    with pytest.raises(ConfigError, match="search.choices"):
        config_from_dict({**tiny, "search": {"encoding": "choice", "choices": [["a", "a"]]}})
    with pytest.raises(ConfigError, match="search.choices"):
        config_from_dict({**tiny, "search": {"encoding": "choice", "choices": [[{"a": 1}]]}})


# --------------------------------------------------------------------------- evaluators
def test_call_evaluator_accepts_numbers_and_dicts(plugin):
    genome = ChoiceGenome(("conv3x3",) * 6)
    metrics = call_evaluator(f"{plugin}:accuracy", genome, {"epochs": 1, "seed": 3},
                             ("accuracy",))
    assert metrics == {"accuracy": 1.0, "cost": 6}
    assert call_evaluator(f"{plugin}:plain", genome, {}, ("score",)) == {"score": 0.5}
    with pytest.raises(EvaluatorError, match="single number, but the run has 2 objectives"):
        call_evaluator(f"{plugin}:plain", genome, {}, ("score", "cost"))


@pytest.mark.parametrize("path, message", [
    ("no_such_module:f", "cannot import evaluator 'no_such_module:f'"),
    ("my_bench:nothing", "has no function 'nothing'"),
    ("my_bench:wrong_type", "must return a number or a dict"),
])
def test_bad_evaluators_give_clear_errors(plugin, path, message):
    with pytest.raises(EvaluatorError, match=message):
        call_evaluator(path, ChoiceGenome(("a",)), {}, ("x",))


def test_a_result_without_an_objective_metric_is_an_error(plugin):
    metrics = call_evaluator("my_bench:missing_key", ChoiceGenome(("a",)), {}, ("accuracy",))
    with pytest.raises(ObjectiveError, match="reports no metric 'accuracy'"):
        values_of(metrics, ("accuracy",))


def test_evaluator_search_with_aging_and_cache(plugin, tiny, tmp_path):
    config = config_from_dict({
        **tiny, "search": {"encoding": "choice", "choices": SPACE},
        "strategy": {"name": "aging", "population": 10, "sample": 3, "cycles": 60},
        "evaluation": {"evaluator": f"{plugin}:accuracy", "objective": "accuracy"}})
    summary = run(config)
    results = [e for e in read_journal(summary.run_dir) if e["event"] == "result"]
    assert len(results) == 70 and summary.failures == 0
    assert summary.best_values[0] == max(e["values"][0] for e in results)
    initial = max(e["values"][0] for e in results[:10])
    assert summary.best_values[0] > initial  # evolution improved on the random population
    assert summary.final == {} and not (summary.run_dir / "best" / "model.pt").exists()


@pytest.mark.parametrize("broken, message", [('"high"', "must return a number"),
                                             ('{"acc": 1.0}', "reports no metric 'accuracy'")])
def test_an_unusable_evaluator_stops_the_run_at_its_first_result_and_records_nothing(
        user_module, tiny, tmp_path, broken, message):
    module = user_module(f"fixable_{len(broken)}", f"def score(genome):\n    return {broken}\n")
    config = config_from_dict({
        **tiny, "search": {"encoding": "choice", "choices": SPACE},
        "strategy": {"name": "random", "evaluations": 6},
        "evaluation": {"evaluator": f"{module}:score", "objective": "accuracy"}})
    with pytest.raises(EvaluatorError, match=message):
        run(config)
    run_dir = tmp_path / "runs" / "tiny"
    events = list(read_journal(run_dir))
    assert [e["event"] for e in events if e["event"] != "session"] == ["ask"]
    # fixed: the outstanding evaluation runs again and the run finishes
    from evolution.evaluator import load_evaluator

    (tmp_path / f"{module}.py").write_text("def score(genome):\n    return 0.5\n")
    sys.modules.pop(module, None)
    load_evaluator.cache_clear()
    done = resume(run_dir)
    assert done.evaluations == 6 and done.failures == 0 and done.best_values == [0.5]


def test_evaluator_exceptions_during_search_are_failed_results(plugin, tiny):
    config = config_from_dict({
        **tiny, "search": {"encoding": "choice", "choices": SPACE},
        "strategy": {"name": "random", "evaluations": 5},
        "evaluation": {"evaluator": f"{plugin}:plain", "objective": "score"}})
    summary = run(config)
    assert summary.failures == 0 and summary.best_values == [0.5]


def test_trainer_objectives_must_be_metrics_it_reports(tiny):
    with pytest.raises(ConfigError, match="'accuracy' need an evaluation.evaluator"):
        config_from_dict({**tiny, "evaluation": {"objective": "accuracy"}})
    config = config_from_dict({**tiny, "objectives": [{"metric": "val_loss",
                                                       "direction": "min"}]})
    assert [(o.metric, o.direction) for o in config.objectives] == [("val_loss", "min")]


@pytest.mark.slow
def test_plugin_search_through_the_cli_with_two_workers(plugin, tiny, write_config, tmp_path):
    path = write_config({
        **tiny, "search": {"encoding": "choice", "choices": SPACE},
        "strategy": {"name": "genetic", "population": 6, "generations": 3},
        "pool": {"backend": "local", "workers": 2},
        "evaluation": {"evaluator": f"{plugin}:accuracy", "objective": "accuracy"}})
    done = subprocess.run([sys.executable, "-m", "evolution.cli", "run", str(path),
                           "--name", "plugin"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "evaluator my_bench:accuracy" in done.stderr
    assert "best genome" in done.stdout and '["' in done.stdout
    results = [e for e in read_journal(tmp_path / "runs" / "plugin") if e["event"] == "result"]
    assert len(results) == 24 and all(e["status"] == "ok" for e in results)
    assert {e["metrics"]["cost"] for e in results} == {6}


@pytest.mark.slow
def test_a_users_training_or_genome_module_beside_the_config_does_not_shadow_evonas(
        tiny, write_config, tmp_path):
    """The evaluator's folder is searched after the installed packages, in the run and in its
    spawned workers: a user's ``training.py`` and ``genome.py`` there change nothing."""
    (tmp_path / "my_eval.py").write_text("def score(genome):\n    return 0.25\n")
    for name in ("training", "genome", "evolution"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('the user module was imported')\n")
    path = write_config({
        **tiny, "search": {"encoding": "choice", "choices": SPACE},
        "strategy": {"name": "random", "evaluations": 4},
        "pool": {"backend": "local", "workers": 2},
        "evaluation": {"evaluator": "my_eval:score", "objective": "score"}})
    evonas = str(Path(sys.executable).with_name("evonas"))
    done = subprocess.run([evonas, "run", str(path), "--name", "shadow"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = [e for e in read_journal(tmp_path / "runs" / "shadow") if e["event"] == "result"]
    assert [e["values"] for e in results] == [[0.25]] * 4
    # the loader puts the working directory last on sys.path, never before the packages
    code = ("import os, sys; sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]; "
            "from evolution.evaluator import load_evaluator; load_evaluator('my_eval:score'); "
            "print(sys.path.index(os.getcwd()) == len(sys.path) - 1)")
    where = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                           text=True, env={**os.environ, "PYTHONSAFEPATH": "1"})
    assert where.stdout.strip() == "True", where.stderr
