"""Multi-fidelity search: rungs, the asha and median rules, pruned results, the journal's
``rung`` events and resuming between rungs, with an instant evaluator that reports a learning
curve (the built-in trainer's checkpoints are tested in test_checkpoint and test_fidelity_training)."""
from __future__ import annotations


import pytest

from evolution import run
from evolution.config import ConfigError, config_from_dict
from evolution.evaluator import EvaluatorError
from evolution.fidelity import MedianStopping, SuccessiveHalving, rung_epochs
from evolution.journal import read_journal
from evolution.record import RunRecord
from tests.test_faults import assert_every_cut_resumes, recorded, trace

EVALUATOR = '''
def score(genome, settings):
    """Instant: the quality of the genome, approached as the epochs grow, reported per epoch."""
    v = list(genome.values)
    quality = (7 * v[0] + 3 * v[1] + v[2] + 0.5 * v[3]) / 28.0
    for epoch in range(settings["start_epoch"] + 1, settings["epochs"] + 1):
        settings["report"](epoch, quality * epoch / (epoch + 1))
    return {"score": quality * settings["epochs"] / (settings["epochs"] + 1),
            "seen": settings["start_epoch"]}
'''
SPACE = {"encoding": "choice", "choices": [[0, 1, 2]] * 4}


@pytest.fixture
def plugin(user_module):
    return user_module("curve_bench", EVALUATOR) + ":score"


def config(tiny, plugin, name="mf", rule="asha", strategy=None, **changes):
    return config_from_dict({
        **tiny, "name": name, "search": SPACE,
        "strategy": strategy or {"name": "aging", "population": 6, "sample": 3, "cycles": 24},
        "evaluation": {"evaluator": plugin, "objective": "score", "epochs": 9},
        "fidelity": {"rule": rule, "min_epochs": 1, "eta": 3},
        "pool": {"backend": "serial", "workers": 3}, "deterministic": True,
        "snapshot_every": 3, **changes})


def events(run_dir, kind):
    return [e for e in read_journal(run_dir) if e["event"] == kind]


def test_rungs_grow_by_eta_up_to_the_top():
    assert rung_epochs(1, 3, 9) == [1, 3, 9]
    assert rung_epochs(1, 3, 10) == [1, 3, 9, 10]
    assert rung_epochs(2, 2, 9) == [2, 4, 8, 9]
    assert rung_epochs(4, 3, 5) == [4, 5]


def test_asha_keeps_the_top_one_in_eta_and_always_the_best():
    asha = SuccessiveHalving(config_from_dict({"fidelity": {"rule": "asha", "eta": 3}}).fidelity)
    assert asha.promote(0.1, [])[0]  # the first at a rung
    assert asha.promote(0.5, [0.4])[0] and not asha.promote(0.3, [0.4])[0]
    others = [0.1, 0.2, 0.3, 0.4, 0.5]  # 6 with it: the top 2 continue
    assert asha.promote(0.45, others)[0] and not asha.promote(0.35, others)[0]
    assert "ranked 3 of 6" in asha.promote(0.35, others)[1]


def test_the_median_rule_waits_for_min_reports():
    median = MedianStopping(config_from_dict(
        {"fidelity": {"rule": "median", "min_reports": 3}}).fidelity)
    assert median.promote(0.0, [0.5, 0.6])[0]
    assert not median.promote(0.4, [0.5, 0.6, 0.7])[0]
    assert median.promote(0.6, [0.5, 0.6, 0.7])[0]


@pytest.mark.parametrize("data, needle", [
    ({"fidelity": {"rule": "asha", "min_epochs": 5}, "evaluation": {"epochs": 5}},
     "fidelity.min_epochs (5) must be below the top rung"),
    ({"fidelity": {"rule": "halving"}}, "fidelity.rule"),
    ({"fidelity": {"max_epochs": 4}, "evaluation": {"epochs": 3}}, "give one"),
    ({"fidelity": {"rule": "asha", "eta": 1}}, "fidelity.eta"),
])
def test_bad_fidelity_settings_name_the_key(data, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        config_from_dict(data)


def test_max_epochs_is_the_top_rung():
    assert config_from_dict({"fidelity": {"rule": "asha", "max_epochs": 27}}
                            ).evaluation.epochs == 27


def test_pruned_candidates_stop_at_their_rung_and_promoted_ones_continue(tiny, plugin):
    summary = run(config(tiny, plugin))
    results = {e["index"]: e for e in events(summary.run_dir, "result")}
    rungs = events(summary.run_dir, "rung")
    pruned = [r for r in results.values() if r["status"] == "pruned"]
    finished = [r for r in results.values() if r["status"] == "ok" and not r["cached"]]
    assert pruned and finished and rungs
    for r in pruned:  # stopped where the rule stopped it: its curve ends there
        assert r["rung"] in (1, 3) and r["curve"][-1]["epoch"] == r["rung"]
        assert len(r["curve"]) == r["rung"] and r["violation"] == (2 if r["rung"] == 1 else 1)
        assert r["values"] == [pytest.approx(r["curve"][-1]["score"])]
    for r in finished:  # promoted at 1 and 3, continued from there, reported every epoch
        assert [e["rung"] for e in rungs if e["index"] == r["index"]] == [1, 3]
        assert [p["epoch"] for p in r["curve"]] == list(range(1, 10))
        assert r["metrics"]["seen"] == 3  # the last step started at the rung's epoch
    assert summary.pruned == len(pruned) and summary.trained == len(results) - summary.cache_hits
    spent = sum(e["epochs"] for e in rungs) + sum(r["epochs"] for r in results.values()
                                                  if not r["cached"])
    assert summary.epochs == spent < 9 * summary.trained / 2
    assert summary.best["status"] == "ok" and summary.best["values"][0] == max(
        r["values"][0] for r in finished)


def test_each_decision_compares_with_what_reached_the_rung_before(tiny, plugin):
    """Replaying the journal's rung values in order gives every decision it recorded."""
    summary = run(config(tiny, plugin))
    asha = SuccessiveHalving(config(tiny, plugin).fidelity)
    tables: dict[int, list[float]] = {1: [], 3: []}
    for e in read_journal(summary.run_dir):
        at = e.get("rung")
        if e["event"] == "rung" or (e["event"] == "result" and e["status"] == "pruned"):
            assert asha.promote(e["values"][0], tables[at])[0] == (e["event"] == "rung")
            tables[at].append(e["values"][0])


def test_a_pruned_result_ranks_below_every_finished_one_for_the_strategy(tiny, plugin,
                                                                         monkeypatch):
    told = []
    from evolution.strategies.aging import AgingStrategy

    real = AgingStrategy.tell

    def spy(self, ticket, values, violation=0.0):
        told.append((values, violation))
        return real(self, ticket, values, violation)

    monkeypatch.setattr(AgingStrategy, "tell", spy)
    run(config(tiny, plugin))
    assert {v for _, v in told} == {0.0, 1.0, 2.0}  # finished, pruned at 3, pruned at 1
    assert all(values is not None for values, _ in told)  # partial values are kept


def test_budget_epochs_starts_no_candidate_once_spent(tiny, plugin):
    summary = run(config(tiny, plugin, fidelity={"rule": "asha", "min_epochs": 1, "eta": 3,
                                                  "budget_epochs": 20}))
    rungs = events(summary.run_dir, "rung")
    assert summary.epochs >= 20
    last_ask = max(e["index"] for e in events(summary.run_dir, "ask"))
    spent_before = 0  # epochs trained when the last candidate was asked
    for e in read_journal(summary.run_dir):
        if e["event"] == "ask" and e["index"] == last_ask:
            break
        if e["event"] == "rung" or (e["event"] == "result" and not e["cached"]):
            spent_before += e["epochs"]
    assert spent_before < 20 and rungs
    assert RunRecord(summary.run_dir).counts()["epochs"] == summary.epochs


@pytest.mark.parametrize("rule", ["asha", "median"])
def test_a_run_cut_after_every_line_resumes_to_the_same_decisions(tiny, plugin, rule, tmp_path,
                                                                 monkeypatch):
    short = {"name": "aging", "population": 4, "sample": 2, "cycles": 8}
    source, snapshots = recorded(config(tiny, plugin, f"ref-{rule}", rule, strategy=short),
                                 monkeypatch)
    expected = trace(source)
    assert any(e[0] == "rung" for e in expected) and any(
        e[0] == "result" and e[2] == "pruned" for e in expected)
    assert_every_cut_resumes(source, snapshots, expected, tmp_path)


def test_a_report_that_is_not_a_number_stops_the_run_naming_the_call(tiny, user_module):
    bad = user_module("bad_report", "def score(genome, settings):\n"
                      "    settings['report'](1, 'high')\n    return 1.0\n") + ":score"
    with pytest.raises(EvaluatorError, match=r"report\(1, \.\.\.\) takes a number"):
        run(config(tiny, bad, strategy={"name": "random", "evaluations": 2}))


def test_without_a_rule_every_candidate_trains_in_full(tiny, plugin):
    summary = run(config(tiny, plugin, rule="none"))
    assert not events(summary.run_dir, "rung") and summary.pruned == 0
    assert all(len(r["curve"]) == 9 for r in events(summary.run_dir, "result")
               if not r["cached"])
    assert summary.epochs == 9 * summary.trained


def test_ask_tell_hands_a_promoted_candidate_out_again_from_its_rung(tiny):
    from evolution.asktell import open_run

    cfg = {**tiny, "name": "asktell", "search": SPACE, "deterministic": True,
           "strategy": {"name": "random", "evaluations": 8},
           "evaluation": {"objective": "score", "epochs": 4},
           "fidelity": {"rule": "asha", "min_epochs": 1, "eta": 2}}
    steps = []
    with open_run(cfg) as run_:
        while (trial := run_.ask()) is not None:
            steps.append((trial.index, trial.start_epoch, trial.settings["epochs"]))
            run_.tell(trial, sum(trial.genome.values) * trial.settings["epochs"])
    record = RunRecord(run_.path)
    assert {(s, e) for _, s, e in steps} <= {(0, 1), (1, 2), (2, 4)}
    for index in {i for i, _, _ in steps}:  # each step starts where the previous stopped
        starts = [(s, e) for i, s, e in steps if i == index]
        assert starts == [(0, 1), (1, 2), (2, 4)][:len(starts)]
    assert record.counts()["pruned"] == sum(
        1 for i in {i for i, _, _ in steps} if (2, 4) not in
        [(s, e) for j, s, e in steps if j == i])
    assert record.counts()["epochs"] == sum(e - s for _, s, e in steps)


def test_callbacks_hear_every_promotion(tiny, plugin):
    from evolution.callbacks import Callback, as_progress

    class Rungs(Callback):
        heard: list = []

        def on_rung(self, event):
            self.heard.append((event["index"], event["rung"]))

    summary = run(config(tiny, plugin), progress=as_progress([Rungs()]))
    assert Rungs.heard == [(e["index"], e["rung"]) for e in events(summary.run_dir, "rung")]
    assert Rungs.heard


def test_the_surrogate_ranks_a_pruned_candidate_below_the_finished_ones():
    from evolution.surrogate import targets

    y = targets([({}, 0.9, 0.0), ({}, 0.5, 0.0), ({}, 0.95, 1.0), ({}, 0.99, 2.0)])
    assert y[2] < min(y[:2]) and y[3] < y[2]  # one rung short, then two: as strategies rank
    assert list(targets([({}, 0.9, 0.0), ({}, 0.5, 0.0)])) == [0.9, 0.5]


def test_the_surrogate_learns_from_the_pruned_candidates_too(tiny, plugin, monkeypatch):
    """Most candidates of a multi-fidelity run stop at a rung: the model fits on them as well
    (every trained result that finished or was pruned, in the order they came), so it starts
    long before MIN_RESULTS candidates have finished."""
    from evolution import surrogate

    fitted = []
    real = surrogate.targets
    monkeypatch.setattr(surrogate, "targets", lambda obs: fitted.append(list(obs)) or real(obs))
    summary = run(config(tiny, plugin, proposal={"surrogate": True, "candidates": 4}))
    trained = [(e["genome"], e["values"][0], e["violation"] if e["status"] == "pruned" else 0.0)
               for e in events(summary.run_dir, "result") if not e["cached"]]
    assert fitted and fitted[-1] == trained[:len(fitted[-1])]
    first = fitted[0]
    assert len(first) == surrogate.MIN_RESULTS
    assert sum(short == 0 for _, _, short in first) < surrogate.MIN_RESULTS
    assert {short for _, _, short in fitted[-1]} == {0.0, 1.0, 2.0}


@pytest.mark.slow
def test_a_surrogate_run_with_pruning_cut_after_every_line_resumes_alike(tiny, plugin,
                                                                        tmp_path, monkeypatch):
    """The model is rebuilt from the cache and journal on resume, pruned results included."""
    short = {"name": "aging", "population": 4, "sample": 2, "cycles": 10}
    source, snapshots = recorded(config(tiny, plugin, "ref-surrogate", strategy=short,
                                        proposal={"surrogate": True, "candidates": 4}),
                                 monkeypatch)
    assert_every_cut_resumes(source, snapshots, trace(source), tmp_path)


def test_strategies_hear_each_trained_candidates_curve_before_its_values(tiny, plugin,
                                                                          monkeypatch):
    from evolution.strategies.aging import AgingStrategy
    from evolution.strategies.base import Strategy

    heard, told = [], []  # (ticket, curve); (ticket, curves heard by then)
    tell = AgingStrategy.tell
    monkeypatch.setattr(Strategy, "tell_curve",
                        lambda self, ticket, curve: heard.append((ticket, list(curve))))
    monkeypatch.setattr(AgingStrategy, "tell", lambda self, ticket, *args, **kwargs: (
        told.append((ticket, len(heard))), tell(self, ticket, *args, **kwargs))[1])
    summary = run(config(tiny, plugin))
    tickets = {e["index"]: e["ticket"] for e in events(summary.run_dir, "ask")}
    trained = [(tickets[e["index"]], e["curve"]) for e in events(summary.run_dir, "result")
               if not e["cached"]]
    assert heard == trained  # pruned ones too, each from its first epoch
    assert {len(curve) for _, curve in heard} == {1, 3, 9}  # pruned at 1, at 3, finished
    heard_by = dict(told)
    assert all(ticket in {t for t, _ in heard[:heard_by[ticket]]} for ticket, _ in trained)
