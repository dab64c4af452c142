"""Ask/tell over a run directory (evonas.open_run): journalled, cached and resumable like a CLI
run; a script killed with SIGKILL and reopened writes the uninterrupted journal."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import evonas
from evolution.asktell import AskTellError
from evolution.journal import read_journal

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"op": ["a", "b"], "x": {"int": [0, 3]}, "k": {"values": [1, 2], "when": {"op": "b"}}}


def config(tmp_path: Path, **changes) -> dict:
    return {"name": "at", "runs_dir": str(tmp_path / "runs"), "seed": 5, "deterministic": True,
            "search": {"encoding": "choice", "params": PARAMS},
            "strategy": {"name": "aging", "population": 4, "sample": 2, "cycles": 16},
            "evaluation": {"objective": "score"}, "pool": {"workers": 2}, **changes}


def score(params: dict) -> float:
    return params["x"] + params.get("k", 0) * 0.5


def test_ask_tell_journals_caches_and_summarises(tmp_path):
    with evonas.open_run(config(tmp_path)) as run:
        told = 0
        while (trial := run.ask()) is not None:
            run.tell(trial, score(trial.params))
            told += 1
        assert run.done and run.counts["evaluations"] == 20
        assert told == run.counts["trained"] < 20  # repeats came from the cache, not from us
    events = list(read_journal(run.path))
    results = [e for e in events if e["event"] == "result"]
    assert [e["index"] for e in results] == list(range(20))
    assert sum(e["cached"] for e in results) == 20 - told
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["best"]["values"] == [max(e["values"][0] for e in results)] == [4.0]
    assert evonas.RunRecord(run.path).best(1)[0]["values"] == [4.0]


def test_tell_checks_what_it_gets_and_failures_are_results(tmp_path):
    run = evonas.open_run(config(tmp_path, objectives=[{"metric": "score"},
                                                       {"metric": "cost", "direction": "min"}],
                                 evaluation={},
                                 strategy={"name": "nsga2", "population": 4, "generations": 2}))
    first, second = run.ask(), run.ask()
    with pytest.raises(AskTellError, match="2 trials are out .*tell one"):
        run.ask()
    with pytest.raises(AskTellError, match="reports no metric 'cost'"):
        run.tell(first, {"score": 1.0})
    run.tell(first, (1.0, 2.0))  # still out after the bad tell; a sequence is the values
    with pytest.raises(AskTellError, match="told already"):
        run.tell(first, (1.0, 2.0))
    with pytest.raises(AskTellError, match="never asked"):
        run.tell(99, 1.0)
    run.tell(second, error=RuntimeError("out of memory"))
    run.close()
    results = [e for e in read_journal(run.path) if e["event"] == "result"]
    assert [(r["status"], r["values"]) for r in results] == [("ok", [1.0, 2.0]),
                                                             ("failed", None)]
    assert results[1]["message"] == "RuntimeError: out of memory"
    with pytest.raises(AskTellError, match="closed"):
        run.ask()
    from evolution.evaluator import EvaluatorError

    with pytest.raises(EvaluatorError, match=r"continue it with evonas.open_run\(RUN_DIR\)"):
        evonas.resume(run.path)  # `evonas resume` cannot be the evaluator: it says so


SCRIPT = textwrap.dedent('''
    import json, sys
    import evonas

    config, stop_at = json.loads(sys.argv[1]), int(sys.argv[2])
    run = evonas.open_run(config)
    while (trial := run.ask()) is not None:
        print("ASKED", trial.index, flush=True)
        if trial.index == stop_at:
            sys.stdin.readline()  # wait, trial out, for the SIGKILL
        x = trial.params
        run.tell(trial, x["x"] + x.get("k", 0) * 0.5 + trial.seed % 7 / 100)
    run.close()
    print("DONE", flush=True)
''')


def comparable(run_dir: Path) -> list[dict]:
    drop = ("time", "started", "finished", "seconds")
    return [{k: v for k, v in e.items() if k not in drop} for e in read_journal(run_dir)
            if e["event"] not in ("session", "end")]


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [3, 11])
def test_a_killed_ask_tell_script_reopened_writes_the_uninterrupted_journal(tmp_path, kill_at):
    script = tmp_path / "asktell_script.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(name: str, stop_at: int = -1) -> subprocess.Popen:
        data = json.dumps(config(tmp_path, name=name))
        return subprocess.Popen([sys.executable, str(script), data, str(stop_at)], cwd=tmp_path,
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                text=True)

    whole = start("whole")
    assert whole.communicate(timeout=300)[0].endswith("DONE\n")
    killed = start("killed", stop_at=kill_at)
    for line in killed.stdout:  # kill it between an ask and its tell
        if line.startswith(f"ASKED {kill_at}"):
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    cut = comparable(tmp_path / "runs" / "killed")
    assert [e["index"] for e in cut if e["event"] == "result"][-1] < kill_at  # told: before it
    again = start("killed")
    out = again.communicate(timeout=300)[0]
    assert out.startswith(f"ASKED {kill_at}\n") and out.endswith("DONE\n")  # handed out again
    assert comparable(tmp_path / "runs" / "killed") == comparable(tmp_path / "runs" / "whole")
