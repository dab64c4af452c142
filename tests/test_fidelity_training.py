"""Multi-fidelity search with the built-in trainer: a promoted candidate continues from its
checkpoint to the weights of an uninterrupted training, and a run killed around a promotion
resumes with nothing lost and nothing repeated."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from evolution import resume, run
from evolution.config import config_from_dict
from evolution.journal import JOURNAL, read_journal
from tests.conftest import merge
from tests.test_faults import trace
from training import load_dataset, score

FIDELITY = {"search": {"encoding": "binary", "stages": [3, 3], "channels": [4, 4]},
            "strategy": {"name": "aging", "population": 3, "sample": 2, "cycles": 5},
            "evaluation": {"epochs": 4, "batch_size": 16, "lr": 0.05},
            "fidelity": {"rule": "asha", "min_epochs": 1, "eta": 2},
            "deterministic": True}


def fidelity_config(tiny, name="mf"):
    return config_from_dict({**merge(tiny, {**FIDELITY, "name": name}),
                             "strategy": FIDELITY["strategy"]})


def test_a_promoted_candidate_ends_with_the_metrics_of_an_uninterrupted_training(tiny):
    config = fidelity_config(tiny)
    summary = run(config)
    journal = list(read_journal(summary.run_dir))
    results = [e for e in journal if e["event"] == "result" and not e["cached"]]
    finished = [r for r in results if r["status"] == "ok"]
    pruned = [r for r in results if r["status"] == "pruned"]
    assert finished and pruned
    promotions = {(e["index"], e["rung"]) for e in journal if e["event"] == "rung"}
    data = load_dataset(config.data.model_dump(mode="json"))
    space = config.model_space(data)
    evaluation = config.evaluation.model_dump(mode="json")
    from genome import genome_from_dict

    for r in finished:
        assert {(r["index"], 1), (r["index"], 2)} <= promotions  # it went through both rungs
        whole, _ = score(genome_from_dict(r["genome"]), space, data, evaluation, r["seed"])
        for metric in ("val_accuracy", "val_loss", "train_loss"):
            assert r["metrics"][metric] == whole[metric], metric
        assert [p["epoch"] for p in r["curve"]] == [1, 2, 3, 4]
    for r in pruned:  # trained to its rung only
        assert r["rung"] in (1, 2) and len(r["curve"]) == r["rung"]
    assert not any((summary.run_dir / "checkpoints").iterdir())  # each removed at its result


KILLER = """
import json, os, signal, sys
sys.path.insert(0, {root!r})
from evolution import run
from evolution.config import config_from_dict
from evolution.journal import RunDirectory
import training.trainer as trainer

where = {where!r}
real_append, real_train = RunDirectory.append, trainer.train

def append(self, event):
    real_append(self, event)
    if where == "after the rung line" and event["event"] == "rung":
        os.kill(os.getpid(), signal.SIGKILL)

def train(*args, **kwargs):
    if where == "while it continues" and kwargs.get("resume") is not None:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_train(*args, **kwargs)

RunDirectory.append, trainer.train = append, train
run(config_from_dict(json.loads({config!r})))
"""


@pytest.mark.slow
@pytest.mark.parametrize("where", ["after the rung line", "while it continues"])
def test_a_run_killed_around_a_promotion_resumes_losing_and_repeating_nothing(tiny, tmp_path,
                                                                              where):
    reference = run(fidelity_config(tiny, "reference")).run_dir
    killed = fidelity_config(tiny, "killed")
    script = KILLER.format(root=str(Path(__file__).resolve().parents[1]), where=where,
                           config=json.dumps(killed.to_dict()))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr  # killed for real, by SIGKILL
    run_dir = Path(killed.runs_dir) / "killed"
    cut = list(read_journal(run_dir))
    promoted = {e["index"] for e in cut if e["event"] == "rung"}
    answered = {e["index"] for e in cut if e["event"] == "result"}
    assert promoted - answered  # a promoted candidate was between two rungs at the kill
    assert list((run_dir / "checkpoints").iterdir())
    resume(run_dir)
    assert trace(run_dir) == trace(reference)
    results = [e["index"] for e in read_journal(run_dir) if e["event"] == "result"]
    assert len(results) == len(set(results))  # nothing repeated
    assert (run_dir / JOURNAL).read_bytes().count(b'"event":"rung"') == \
        (reference / JOURNAL).read_bytes().count(b'"event":"rung"')
