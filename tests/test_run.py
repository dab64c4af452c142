"""The search loop, the pools and the CLI, end to end on tiny settings."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from evolution import load_config, run
from evolution.config import config_from_dict
from evolution.journal import RunDirectory, read_journal
from evolution.pool import LocalPool, SerialPool
from evolution.results import make_result
from evolution.loop import Search, derive_seed
from evolution.worker import make_task
from genome import genome_from_dict
from safetensors.torch import load_file

from training import build_model, load_model


def fake_evaluator(calls):
    """Fitness = fraction of ones; genomes whose first bit is 1 and last bit is 1 fail."""
    def evaluate(task):
        genome = genome_from_dict(task["genome"])
        calls.append(genome.key())
        bits = [b for stage in genome.bits for b in stage]
        failed = bits[0] == 1 and bits[-1] == 1
        if failed:
            return make_result(task["index"], "failed", message="boom", started=0.0,
                               finished=0.0)
        value = sum(bits) / len(bits)
        return make_result(task["index"], values=[value], metrics={"val_accuracy": value},
                           started=0.0, finished=0.0)
    return evaluate


def search_with_fake(tiny, tmp_path, **changes):
    config = config_from_dict(tiny).replace(**changes)
    calls = []
    with RunDirectory.create(tmp_path / "runs", "fake", config.to_dict(), exact=True) as rd, \
            SerialPool(evaluate=fake_evaluator(calls)) as pool:
        search = Search(config, rd, pool, {"channels": [4, 4]})
        search.loop()
    return search, calls, list(read_journal(rd.path)), config


def test_loop_journals_every_evaluation_once(tiny, tmp_path):
    search, calls, journal, config = search_with_fake(tiny, tmp_path)
    budget = config.strategy.budget
    asks = [e for e in journal if e["event"] == "ask"]
    results = [e for e in journal if e["event"] == "result"]
    assert [e["index"] for e in asks] == list(range(budget))
    assert sorted(e["index"] for e in results) == list(range(budget))
    assert all(e["seed"] == derive_seed(config.seed, e["index"]) for e in asks)
    assert search.counts["evaluations"] == budget
    assert [e["generation"] for e in journal if e["event"] == "generation"] == \
        list(range(config.strategy.generations + 1))


def test_identical_architectures_are_trained_once(tiny, tmp_path):
    search, calls, journal, config = search_with_fake(
        tiny, tmp_path, **{"strategy.population": 8, "strategy.generations": 4})
    assert len(calls) == len(set(calls)), "an architecture was trained twice"
    results = [e for e in journal if e["event"] == "result"]
    cached = [e for e in results if e["cached"]]
    assert cached, "a 2x3-node space with 40 evaluations must repeat architectures"
    by_index = {e["index"]: e for e in results}
    for hit in cached:
        original = by_index[hit["cache_of"]]
        assert not original["cached"] and original["key"] == hit["key"]
        assert hit["values"] == original["values"] and hit["status"] == original["status"]
    assert search.counts["trained"] == len(calls) == len(results) - len(cached)
    assert search.counts["cache_hits"] == len(cached)


def test_failures_are_recorded_and_the_run_goes_on(tiny, tmp_path):
    search, _, journal, config = search_with_fake(
        tiny, tmp_path, **{"strategy.population": 8, "strategy.generations": 3})
    failed = [e for e in journal if e["event"] == "result" and e["status"] == "failed"]
    assert failed and all(e["message"] == "boom" and e["values"] is None for e in failed)
    assert search.counts["failures"] == len(failed)
    assert search.best["status"] == "ok"
    assert search.counts["evaluations"] == config.strategy.budget


@pytest.mark.slow
def test_local_pool_runs_tasks_and_survives_a_killed_worker(tiny):
    config = config_from_dict(tiny)
    base = make_task(config, {"channels": [4, 4]}, index=0, seed=1,
                     genome={"encoding": "binary", "code": "1_1-01"})
    with LocalPool(workers=1) as pool:
        # killed before it is ready: the evaluation never started, its replacement runs it
        pool.submit({**base, "index": 5})
        os.kill(pool._workers[0].process.pid, signal.SIGKILL)
        (first,) = pool.wait()
        assert (first["index"], first["status"], first["attempts"]) == (5, "ok", 1)
        victim = pool._workers[0].process.pid
        pool.submit({**base, "index": 0})
        assert pool.free == 0
        os.kill(victim, signal.SIGKILL)
        crashed = pool.wait()
        assert [(r["index"], r["status"]) for r in crashed] == [(0, "crashed")]
        assert "exit code -9" in crashed[0]["message"]
        assert pool.free == 1
        pool.submit({**base, "index": 1})
        (ok,) = pool.wait()
        assert ok["status"] == "ok" and ok["index"] == 1 and ok["pid"] != victim
        assert 0.0 <= ok["values"][0] <= 1.0
        pool.submit({**base, "index": 2, "genome": {"encoding": "binary", "code": "1-2"}})
        (bad,) = pool.wait()
        assert bad["status"] == "failed" and "GenomeError" in bad["message"]
        pool.submit({**base, "index": 3, "evaluation": {**base["evaluation"], "batch_size": "two"}})
        (broken,) = pool.wait()  # an unexpected exception keeps its traceback
        assert broken["status"] == "failed" and "TypeError" in broken["message"]
        assert "Traceback" in broken["traceback"]


@pytest.mark.slow
def test_local_and_serial_pools_give_identical_results(tiny):
    config = config_from_dict(tiny)
    tasks = [make_task(config, {"channels": [4, 4]}, index=i, seed=derive_seed(0, i),
                       genome={"encoding": "binary", "code": code})
             for i, code in enumerate(["1_1-01", "0_1-11", "1_0-10", "1_1-11"])]

    def collect(pool):
        out = {}
        pending = list(tasks)
        while pending or len(out) < len(tasks):
            while pending and pool.free:
                pool.submit(pending.pop())
            for r in pool.wait():
                out[r["index"]] = r["metrics"]["val_accuracy"], r["metrics"]["train_loss"]
        return out

    with SerialPool(threads=1) as serial:
        expected = collect(serial)
    with LocalPool(workers=2, threads=1) as local:
        assert collect(local) == expected


def test_run_writes_run_directory_and_best_model(tiny):
    config = config_from_dict(tiny)
    events = []
    summary = run(config, progress=events.append)
    rd = summary.run_dir
    assert rd == Path(tiny["runs_dir"]) / "tiny"
    assert {p.name for p in rd.iterdir()} >= {"config.yaml", "journal.jsonl", "best",
                                              "summary.json"}
    assert load_config(rd / "config.yaml") == config
    results = [e for e in read_journal(rd) if e["event"] == "result"]
    assert len(results) == summary.evaluations == config.strategy.budget
    # best/ is an export folder like any other: genome, settings, safetensors weights
    genome_doc = json.loads((rd / "best" / "genome.json").read_text())
    settings = json.loads((rd / "best" / "settings.json").read_text())
    assert genome_doc["genome"] == summary.best["genome"]
    assert settings["source"]["index"] == summary.best["index"]
    assert settings["metrics"]["val_accuracy"] == pytest.approx(summary.best_values[0])
    assert 0.0 <= settings["metrics"]["test_accuracy"] <= 1.0
    assert settings["metrics"] == summary.final
    model = build_model(genome_from_dict(genome_doc["genome"]), settings["space"])
    model.load_state_dict(load_file(rd / "best" / "model.safetensors"))
    model.eval()
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), load_model(rd / "best")(x))
    assert [e["event"] for e in events][:1] == ["start"]
    assert Counter(e["event"] for e in events)["result"] == config.strategy.budget
    # a second run with the same name takes the next free directory; an exact name does not
    assert run(config).run_dir.name == "tiny-2"
    from genome.errors import EvonasError
    with pytest.raises(EvonasError, match="already exists"):
        run(config, name="tiny")


def evonas(*args, cwd):
    return subprocess.run([sys.executable, "-m", "evolution.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_cli_search_end_to_end_with_two_workers(tiny, write_config, tmp_path):
    path = write_config({**tiny, "pool": {"backend": "local", "workers": 1}})
    done = evonas("run", path, "--workers", 2, "--name", "cli", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "on 2 worker(s)" in done.stderr
    assert done.stderr.count("generation ") == tiny["strategy"]["generations"] + 1
    assert "best genome" in done.stdout and "test accuracy" in done.stdout
    rd = tmp_path / "runs" / "cli"
    assert str(rd) in done.stdout
    workers = {e["worker"] for e in read_journal(rd)
               if e["event"] == "result" and not e["cached"]}
    assert workers == {0, 1}


def test_cli_errors_are_clear(tiny, write_config, tmp_path):
    done = evonas("run", tmp_path / "nope.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "cannot read config file" in done.stderr
    bad = write_config({**tiny, "strategy": {"populaton": 3}}, "bad.yaml")
    done = evonas("run", bad, cwd=tmp_path)
    assert done.returncode == 2 and "unknown key 'strategy.populaton'" in done.stderr
    assert "Traceback" not in done.stderr
    done = evonas("run", bad, "--workers", 0, cwd=tmp_path)
    assert done.returncode == 2 and "--workers must be at least 1" in done.stderr


@pytest.mark.slow
def test_workers_that_cannot_start_stop_the_run_with_a_clear_error(tiny, tmp_path):
    """A script without a __main__ guard re-runs itself in every spawned worker, which then
    exits before taking work: the run must stop with advice instead of retrying forever."""
    config = {**tiny, "pool": {"backend": "local", "workers": 1}}
    script = tmp_path / "unguarded.py"
    script.write_text(f"from evolution import run\nfrom evolution.config import config_from_dict\n"
                      f"run(config_from_dict({config!r}))\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0
    assert "PoolError" in done.stderr and 'if __name__ == "__main__":' in done.stderr


@pytest.mark.slow
def test_ctrl_c_stops_workers_and_keeps_a_consistent_journal(tiny, write_config, tmp_path):
    config = {**tiny, "pool": {"backend": "local", "workers": 2},
              "strategy": {**tiny["strategy"], "generations": 50}}
    path = write_config(config)
    proc = subprocess.Popen([sys.executable, "-m", "evolution.cli", "run", str(path),
                             "--name", "stopped"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = ""
    for line in proc.stderr:  # blocks until the first generation is done
        seen += line
        if line.startswith("generation"):
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, seen + err
    assert "interrupted" in err and "Traceback" not in err
    assert str(tmp_path / "runs" / "stopped") in err
    journal = list(read_journal(tmp_path / "runs" / "stopped"))  # every line parses
    results = [e for e in journal if e["event"] == "result"]
    assert len(results) >= tiny["strategy"]["population"]
    for pid in {e["pid"] for e in results if e.get("pid")}:
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "\nState:\tZ" in status.read_text(), f"worker {pid} alive"
