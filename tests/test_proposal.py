"""Budgets in trained architectures, no repeats, the surrogate and local search, through the real
search loop (serial pool, an instant table evaluator)."""
from __future__ import annotations

import json
import random

import pytest

from evolution import run
from evolution.config import config_from_dict
from evolution.journal import RunDirectory, read_journal
from evolution.surrogate import refit_point

from test_faults import assert_every_cut_resumes, recorded, trace

EVALUATOR = '''
def score(genome, settings):
    values = list(genome.values)
    return {"score": sum((i + 1) * v for i, v in enumerate(values)) / 100.0
            + 0.01 * (values[0] * values[-1] % 3)}
'''
SPACE = {"encoding": "choice", "choices": [[0, 1, 2, 3]] * 4}  # 256 architectures
TINY_SPACE = {"encoding": "choice", "choices": [[0, 1], [0, 1]]}  # 4 architectures


@pytest.fixture
def plugin(user_module):
    return user_module("proposal_bench", EVALUATOR) + ":score"


def make(tiny, plugin, name, strategy, search=SPACE, **changes):
    return config_from_dict({**tiny, "name": name, "search": search, "strategy": strategy,
                             "evaluation": {"evaluator": plugin, "objective": "score"},
                             "pool": {"backend": "serial", "workers": 2},
                             "deterministic": True, **changes})


def results(run_dir):
    return [e for e in read_journal(run_dir) if e["event"] == "result"]


AGING = {"name": "aging", "population": 6, "sample": 3, "cycles": 34}


@pytest.mark.parametrize("strategy", [AGING, {"name": "random", "evaluations": 40}])
def test_the_paper_repeats_but_the_budget_counts_trained_architectures(tiny, plugin, strategy):
    summary = run(make(tiny, plugin, "paper", strategy, proposal={"repeats": True}))
    assert summary.trained == 40 and summary.cache_hits > 0
    assert summary.evaluations == summary.trained + summary.cache_hits
    end = [e for e in read_journal(summary.run_dir) if e["event"] == "end"][-1]
    assert (end["trained"], end["evaluations"]) == (40, summary.evaluations)


@pytest.mark.parametrize("strategy", [
    AGING, {"name": "random", "evaluations": 40}, {"name": "local", "evaluations": 40},
    {"name": "genetic", "population": 8, "generations": 4, "p_mutation": 0.8,
     "q_mutation": 0.1}])
def test_no_repeats_by_default_every_evaluation_trains_a_new_architecture(tiny, plugin,
                                                                          strategy):
    summary = run(make(tiny, plugin, "fresh", strategy))
    keys = [e["key"] for e in results(summary.run_dir)]
    assert len(keys) == len(set(keys)) == summary.trained == 40
    assert summary.cache_hits == 0


def test_the_paper_ga_repeats_when_asked(tiny, plugin):
    ga = {"name": "genetic", "population": 8, "generations": 4, "p_mutation": 0.8,
          "q_mutation": 0.1}
    summary = run(make(tiny, plugin, "paper-ga", ga, proposal={"repeats": True}))
    assert summary.evaluations == 40 and summary.cache_hits > 0


def test_an_exhausted_space_ends_at_the_cap(tiny, plugin):
    """4 architectures, a budget of 10: all 4 are trained, then repeats (free cache hits)
    until ``proposal.max_asks``; none joins the aging population."""
    summary = run(make(tiny, plugin, "small", {"name": "aging", "population": 3, "sample": 2,
                                               "cycles": 7},
                       search=TINY_SPACE, proposal={"max_asks": 15}))
    assert (summary.trained, summary.cache_hits, summary.evaluations) == (4, 11, 15)


def test_a_duplicate_never_enters_the_aging_population(tiny, plugin, monkeypatch):
    from evolution.loop import Search

    seen = []
    real = Search._apply

    def apply(self, event):
        real(self, event)
        population = [m.genome.key() for m in self.strategy.population]
        seen.append(population)
        assert len(population) == len(set(population))

    monkeypatch.setattr(Search, "_apply", apply)
    summary = run(make(tiny, plugin, "dup", {"name": "aging", "population": 3, "sample": 2,
                                             "cycles": 7}, search=TINY_SPACE,
                       proposal={"max_asks": 15}))
    assert summary.cache_hits > 0 and len(seen) == 15
    assert all(len(p) <= 4 for p in seen)


SURROGATE = {"surrogate": True, "candidates": 6}


def test_surrogate_proposals_are_reproducible_by_seed(tiny, plugin):
    asks = {}
    for name, seed in (("a", 1), ("b", 1), ("c", 2)):
        summary = run(make(tiny, plugin, name, AGING, proposal=SURROGATE, seed=seed))
        asks[name] = [json.dumps(e["genome"]) for e in read_journal(summary.run_dir)
                      if e["event"] == "ask"]
    assert asks["a"] == asks["b"] != asks["c"]
    assert len(asks["a"]) == 40


@pytest.mark.slow
@pytest.mark.parametrize("strategy", [AGING, {"name": "local", "evaluations": 24},
                                      {"name": "genetic", "population": 6, "generations": 3}])
def test_surrogate_runs_cut_after_every_line_resume_to_the_uninterrupted_journal(
        tiny, plugin, strategy, tmp_path, monkeypatch):
    """Kill-and-resume: the surrogate is rebuilt from the journal (or a snapshot's cache)."""
    strategy = {**strategy, "cycles": 18} if strategy["name"] == "aging" else strategy
    config = make(tiny, plugin, "ref", strategy, proposal=SURROGATE, snapshot_every=3,
                  pool={"backend": "serial", "workers": 3})
    source, snapshots = recorded(config, monkeypatch)
    assert_every_cut_resumes(source, snapshots, trace(source), tmp_path)


def test_refits_follow_the_results_so_far_only():
    assert [refit_point(n) for n in (0, 7, 8, 9, 100, 124, 125)] == [0, 0, 8, 9, 100, 100, 125]
    points = sorted({refit_point(n) for n in range(100, 1001)})
    assert points[0] == 100 and len(points) == 11  # 25% growth: 11 fits from 100 to 1,000
    assert all(refit_point(p) == p for p in points)


def test_local_search_climbs_to_the_optimum_then_restarts(tiny, plugin):
    """On a landscape whose only local optimum is the global one (score grows with every
    value), the climb reaches [3, 3, 3, 3] and, its neighbours all worse, restarts."""
    from evolution.loop import Search
    from evolution.pool import SerialPool
    from evolution.results import make_result

    config = make(tiny, plugin, "climb", {"name": "local", "evaluations": 60})

    def evaluate(task):
        value = sum(task["genome"]["values"]) / 12
        return make_result(task["index"], values=[value], metrics={"score": value},
                           started=0.0, finished=0.0)

    with RunDirectory.create(tiny["runs_dir"], "climb", config.to_dict(), exact=False) as rd, \
            SerialPool(evaluate=evaluate) as pool:
        search = Search(config, rd, pool, config.model_space())
        search.loop()
    assert search.best["genome"]["values"] == [3, 3, 3, 3]
    assert search.strategy.restarts >= 1
    assert search.counts["trained"] == 60 and search.counts["cache_hits"] == 0


def test_surrogate_features_of_ranges_and_conditions_have_one_length():
    """Named dimensions: one-hot categoricals, a range's position on its (log) scale, -1 for a
    range a condition switched off; every genome of the space gives a vector of one length."""
    from evolution.surrogate import FEATURES
    from genome import ChoiceGenome, get_encoding

    config = config_from_dict({"search": {"encoding": "choice", "params": {
        "op": ["a", "b"], "lr": {"log_uniform": [1e-3, 1e-1]},
        "k": {"int": [1, 5], "when": {"op": "b"}}}},
        "evaluation": {"evaluator": "x:y", "objective": "s"}})
    features = FEATURES["choice"](config.search)
    encoding = get_encoding("choice")
    rng = random.Random(0)
    vectors = [features(encoding.random(config.search, rng)) for _ in range(20)]
    assert {len(v) for v in vectors} == {4}
    assert all(0.0 <= v[2] <= 1.0 for v in vectors)
    assert {v[3] == -1.0 for v in vectors} == {True, False}  # k off for op a, on for op b
    middle = ChoiceGenome(("b", 0.01, 3))
    assert features(middle) == [0.0, 1.0, pytest.approx(0.5), 0.5]


def test_surrogate_scores_are_the_trees_predictions_mean_plus_half_their_spread():
    """Scoring reads each tree's leaves directly; the figures are scikit-learn's own per-tree
    predictions, for every encoding's features."""
    import numpy as np

    from evolution.surrogate import OPTIMISM, Surrogate
    from genome import get_encoding

    for search in ({"encoding": "choice", "params": {
            "op": ["a", "b", "c"], "lr": {"log_uniform": [1e-3, 1e-1]},
            "k": {"int": [1, 5], "when": {"op": "b"}}}},
            {"encoding": "binary", "stages": [4, 5]}, {"encoding": "cell"}):
        config = config_from_dict({"search": search,
                                   "evaluation": {"evaluator": "x:y", "objective": "s"}})
        encoding = get_encoding(search["encoding"])
        rng = random.Random(4)
        genomes = [encoding.random(config.search, rng) for _ in range(60)]
        surrogate = Surrogate(encoding, config.search, seed=9)
        model = surrogate.model([(g.to_dict(), rng.random(), 0.0) for g in genomes[:40]])
        x = np.array([surrogate.features(g) for g in genomes[40:]], dtype=np.float32)
        trees = np.stack([t.predict(x) for t in model.forest.estimators_])
        assert surrogate.score(model, genomes[40:]) == pytest.approx(
            list(trees.mean(axis=0) + OPTIMISM * trees.std(axis=0)), rel=1e-12)
        assert len(set(surrogate.score(model, genomes[40:]))) > 10  # the trees do disagree


def test_beyond_rows_results_each_tree_learns_from_rows_drawn_from_all(monkeypatch):
    """Up to ROWS results every tree learns from every one; beyond, each from ROWS drawn (its
    own draw, the same on every refit of the same results), so a refit's cost stops growing."""
    import numpy as np

    import evolution.surrogate as surrogates
    from genome import get_encoding

    monkeypatch.setattr(surrogates, "ROWS", 30)
    config = config_from_dict({"search": {"encoding": "choice", "choices": [[0, 1, 2]] * 6},
                               "evaluation": {"evaluator": "x:y", "objective": "s"}})
    encoding, rng = get_encoding("choice"), random.Random(3)
    observed = [(encoding.random(config.search, rng).to_dict(), rng.random(), 0.0)
                for _ in range(50)]

    def trees(n: int) -> list:
        model = surrogates.Surrogate(encoding, config.search, seed=1).model(observed[:n])
        return [t.tree_ for t in model.forest.estimators_]

    assert {t.weighted_n_node_samples[0] for t in trees(30)} == {30.0}
    assert {t.n_node_samples[0] for t in trees(30)} == {30}  # all, once each
    sampled = trees(50)
    assert {t.weighted_n_node_samples[0] for t in sampled} == {30.0}
    assert len({t.n_node_samples[0] for t in sampled}) > 1  # drawn with replacement, per tree
    again = trees(50)
    assert all(np.array_equal(a.threshold, b.threshold) for a, b in zip(sampled, again))


def test_local_search_with_the_surrogate_climbs_from_an_initial_design(tiny, plugin):
    """With the surrogate: MIN_RESULTS random architectures first, then the best of them is the
    centre and its unevaluated neighbours come in the surrogate's order, best predicted first
    (one worker: the first neighbour is asked once the whole design is in)."""
    from evolution.surrogate import MIN_RESULTS, Surrogate
    from genome import genome_from_dict, get_encoding

    config = make(tiny, plugin, "design", {"name": "local", "evaluations": 20},
                  proposal={"surrogate": True}, pool={"backend": "serial", "workers": 1})
    summary = run(config)
    done = sorted(results(summary.run_dir), key=lambda e: e["index"])
    design, following = done[:MIN_RESULTS], done[MIN_RESULTS]
    centre = max(design, key=lambda e: (e["values"][0], -e["index"]))["genome"]["values"]
    seen = {json.dumps(e["genome"]["values"]) for e in design}
    neighbours = [centre[:i] + [v] + centre[i + 1:] for i in range(len(centre))
                  for v in range(4) if v != centre[i]]
    unseen = [n for n in neighbours if json.dumps(n) not in seen]
    assert following["genome"]["values"] in unseen

    encoding = get_encoding("choice")
    surrogate = Surrogate(encoding, config.search, config.seed)
    model = surrogate.model([(e["genome"], e["values"][0], 0.0) for e in design])
    candidates = [genome_from_dict({**following["genome"], "values": n}) for n in unseen]
    scores = dict(zip(map(json.dumps, unseen), surrogate.score(model, candidates)))
    assert scores[json.dumps(following["genome"]["values"])] == max(scores.values())
    assert summary.trained == 20 and summary.cache_hits == 0


def test_snapshots_come_at_most_every_twentieth_of_the_run(tiny, plugin, monkeypatch):
    """A snapshot holds the cache: written after every result of a short run, then at most
    every 5% of the architectures evaluated so far (its cost per result stays flat)."""
    sizes = []
    write = RunDirectory.write_snapshot
    monkeypatch.setattr(RunDirectory, "write_snapshot", lambda self, state: (
        sizes.append(len(state["search"]["cache"])), write(self, state))[1])
    big = {"encoding": "choice", "choices": [[0, 1, 2, 3]] * 6}  # 4,096 architectures
    summary = run(make(tiny, plugin, "snapshots", {"name": "random", "evaluations": 400},
                       search=big, snapshot_every=1))
    assert summary.trained == 400
    assert sizes[:20] == list(range(1, 21))  # every result while the run is short
    gaps = [(b - a, a) for a, b in zip(sizes, sizes[1:-1])]  # the last: the run's end
    assert all(gap >= size // 20 for gap, size in gaps)
    assert len(sizes) < 100  # 400 if written after every result
