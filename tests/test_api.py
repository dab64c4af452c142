"""The Python API: evonas.search with a callable objective (function, lambda, closure) shipped to
spawned and Dask workers, clear errors for what cannot be shipped, callbacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import sqlite3
from pathlib import Path

import pytest

import evonas
from evolution.evaluator import EvaluatorError
from evolution.journal import read_journal

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"x": {"int": [0, 20]}, "y": {"uniform": [-1.0, 1.0]}}


def small(tiny: dict, **changes) -> dict:
    return {**tiny, "search": {"encoding": "choice", "params": PARAMS},
            "strategy": {"name": "aging", "population": 4, "sample": 2, "cycles": 4},
            "evaluation": {"objective": "score"}, **changes}


def test_a_closure_objective_runs_in_process_and_sees_named_params(tiny):
    target = 7  # captured

    def score(genome, settings):
        return -abs(settings["params"]["x"] - target) - settings["params"]["y"] ** 2

    summary = evonas.search(small(tiny, pool={"backend": "serial"}), objective=score)
    assert summary.evaluations == 8 and summary.failures == 0
    config = json.loads((summary.run_dir / "run.json").read_text())["config"]
    assert config["evaluation"]["evaluator"] == "callable:score"


def test_two_searches_in_two_threads_each_evaluate_with_their_own_objective(tiny):
    """Both objectives are named ``score``: each thread's tasks carry its own."""
    import threading

    both_started = threading.Barrier(2, timeout=120)  # both inside their search at once

    def searcher(value, out):
        def score(genome):
            return value
        out[value] = evonas.search(
            small(tiny, name=f"thread-{value}", pool={"backend": "serial"}), objective=score,
            progress=lambda event: event["event"] == "start" and both_started.wait())

    out: dict = {}
    threads = [threading.Thread(target=searcher, args=(v, out)) for v in (1.0, 2.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for value, summary in out.items():
        results = [e for e in read_journal(summary.run_dir) if e["event"] == "result"]
        assert results and all(r["values"] == [value] for r in results)


def test_an_objective_that_cannot_be_shipped_names_what_it_captured(tiny):
    db = sqlite3.connect(":memory:")  # a connection cannot travel to another process
    table = {"a": 1.0}

    def score(genome):
        db.execute("select 1")
        return table["a"]

    with pytest.raises(EvaluatorError, match=r"captures db \(sqlite3.Connection\), which "
                                             r"cannot be sent"):
        evonas.search(small(tiny, pool={"backend": "serial"}), objective=score)
    assert not (Path(tiny["runs_dir"]) / "tiny").exists()  # refused before the run started


def test_a_callable_run_resumed_from_the_cli_says_how_to_continue(tiny):
    from evolution.evaluator import load_evaluator

    with pytest.raises(EvaluatorError, match=r"evonas.search\(RUN_DIR, objective=fn\)"):
        load_evaluator("callable:score")


def test_callbacks_get_every_result_and_window(tiny):
    seen = {"start": 0, "result": [], "window": 0, "all": 0}

    class Log(evonas.Callback):
        def on_start(self, event):
            seen["start"] += 1

        def on_result(self, event):
            seen["result"].append((event["index"], event["best"]))

        def on_window(self, event):
            seen["window"] += 1

    def every(event):
        seen["all"] += 1

    summary = evonas.search(small(tiny, pool={"backend": "serial"}),
                            objective=lambda g: float(g.values[0]), callbacks=[Log(), every])
    assert seen["start"] == 1 and [i for i, _ in seen["result"]] == list(range(8))
    bests = [b for _, b in seen["result"]]
    assert bests == sorted(bests) and bests[-1] == summary.best_values[0]
    windows = [e for e in read_journal(summary.run_dir) if e["event"] == "window"]
    assert seen["window"] == len(windows) > 0 and seen["all"] >= 9 + len(windows)


SCRIPT = textwrap.dedent('''
    # no `if __name__ == "__main__":` guard, a lambda and a helper defined here
    import os, sys, evonas

    def shape(x, y):
        return -abs(x - 13) - y * y

    summary = evonas.search({
        "name": "script", "runs_dir": sys.argv[1], "seed": 1,
        "search": {"encoding": "choice", "params": %(params)r},
        "strategy": {"name": "aging", "population": 4, "sample": 2, "cycles": 6},
        "evaluation": {"objective": "score"},
        "pool": %(pool)r},
        objective=lambda g, s: {"score": shape(**s["params"]), "pid": os.getpid()})
    print("EVALUATIONS", summary.evaluations, summary.failures)
''')


def run_script(tmp_path: Path, pool: dict) -> list[dict]:
    script = tmp_path / "search_script.py"
    script.write_text(SCRIPT % {"params": PARAMS, "pool": pool})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "EVALUATIONS 10 0" in done.stdout
    return [e for e in read_journal(tmp_path / "runs" / "script") if e["event"] == "result"]


@pytest.mark.slow
def test_a_lambda_objective_runs_on_spawned_workers_from_a_script_without_a_guard(tmp_path):
    results = run_script(tmp_path, {"backend": "local", "workers": 2})
    pids = {r["metrics"]["pid"] for r in results if not r["cached"]}
    assert len(pids) == 2 and os.getpid() not in pids  # both workers, not this process


@pytest.mark.slow
def test_a_lambda_objective_runs_on_a_dask_local_cluster(tmp_path):
    results = run_script(tmp_path, {"backend": "dask", "workers": 2})
    assert all(r["status"] == "ok" for r in results)
    assert len({r["metrics"]["pid"] for r in results if not r["cached"]}) >= 1


def test_an_interrupted_callable_run_continues_from_python_with_its_objective(tiny):
    calls = []

    def score(genome):
        calls.append(genome.key())
        if len(calls) == 5:  # the user's Ctrl-C, once, in this process (serial pool)
            raise KeyboardInterrupt
        return float(genome.values[0])

    config = small(tiny, pool={"backend": "serial"}, deterministic=True)
    with pytest.raises(KeyboardInterrupt):
        evonas.search(config, objective=score)
    run_dir = Path(tiny["runs_dir"]) / "tiny"
    assert len([e for e in read_journal(run_dir) if e["event"] == "result"]) == 4
    with pytest.raises(EvaluatorError, match=r"evonas.search\(RUN_DIR, objective=fn\)"):
        evonas.resume(run_dir)  # what `evonas resume` does: the callable is not importable
    summary = evonas.search(run_dir, objective=score)
    assert summary.evaluations == 8 and summary.failures == 0
    # the same as an uninterrupted run
    whole = evonas.search({**config, "name": "whole"}, objective=score)
    assert whole.best_values == summary.best_values
    keys = lambda d: [e["key"] for e in read_journal(d) if e["event"] == "result"]
    assert keys(run_dir) == keys(whole.run_dir)
