"""The Dask backend: a real scheduler and two `dask worker` processes on 127.0.0.1, and
LocalClusters started by the pool (with failures, and with GPU slots faked on a CPU machine)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evolution import run
from evolution.config import config_from_dict
from evolution.journal import read_journal
from evolution.pool import DaskPool, PoolError
from evolution.worker import make_task

pytestmark = pytest.mark.slow  # worker processes and clusters: not in the fast loop

DASK = str(Path(sys.executable).with_name("dask"))

# What the README tells cluster users to put in their Dask config for evonas workers.
NO_MALLOC_TRIM = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
"""

EVALUATORS = '''
import os, signal, time


def score(genome, settings):
    code = genome.to_string()
    return {"val_accuracy": code.count("1") / len(code)}


def troubles(genome, settings):
    """Evaluation 0 kills its worker on every attempt; evaluation 1 never ends."""
    if settings["index"] == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    if settings["index"] == 1:
        time.sleep(3600)
    return score(genome, settings)


def where(genome, settings):
    return {"val_accuracy": 1.0, "device": settings["device"],
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def slow_after_a_hang(genome, settings):
    """Evaluation 0 never ends; evaluation 1 takes 2 s (well under the 8 s timeout)."""
    if settings["index"] == 0:
        time.sleep(3600)
    time.sleep(2)
    return score(genome, settings)
'''


def wait_for_file(path: Path, procs, seconds: float = 60) -> str:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if any(p.poll() is not None for p in procs):
            break
        time.sleep(0.05)
    raise AssertionError(f"{path} did not appear; see the logs in {path.parent}")


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes (one single-threaded worker each) on
    127.0.0.1, configured as the README says; yields the scheduler's address. Started once for
    the module's tests (each leaves the cluster idle)."""
    from distributed import Client

    tmp_path = tmp_path_factory.mktemp("dask-cluster")

    config_dir = tmp_path / "dask-config"
    config_dir.mkdir()
    (config_dir / "evonas.yaml").write_text(NO_MALLOC_TRIM)
    env = {**os.environ, "DASK_CONFIG": str(config_dir)}
    scheduler_file = tmp_path / "scheduler.json"
    procs = []

    def start(name, *args):
        log = open(tmp_path / f"{name}.log", "w")
        procs.append(subprocess.Popen([DASK, *map(str, args)], cwd=tmp_path, env=env,
                                      stdout=log, stderr=subprocess.STDOUT))
        log.close()

    try:  # port 0: the scheduler picks a free port and writes it to the scheduler file
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
              "--no-dashboard", "--scheduler-file", scheduler_file)
        address = json.loads(wait_for_file(scheduler_file, procs))["address"]
        for i in range(2):
            start(f"worker-{i}", "worker", address, "--nworkers", "1", "--nthreads", "1",
                  "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}")
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_a_search_runs_on_an_existing_dask_cluster(tiny, dask_cluster):
    config = config_from_dict({**tiny, "pool": {"backend": "dask", "address": dask_cluster}})
    summary = run(config)  # the built-in trainer on the synthetic data set
    results = [e for e in read_journal(summary.run_dir) if e["event"] == "result"]
    trained = [r for r in results if not r["cached"]]
    assert len(results) == config.strategy.budget
    assert all(r["status"] == "ok" for r in results), [r["message"] for r in results]
    assert len({r["worker"] for r in trained}) == 2  # both workers took evaluations
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in trained)
    assert len({r["pid"] for r in trained}) == 2
    assert summary.final["test_accuracy"] is not None
    with DaskPool(address=dask_cluster) as pool:  # what the pool learns about the workers
        assert pool.slots == 2 and pool.free == 2
        assert [i["MALLOC_TRIM_THRESHOLD_"] for i in pool.worker_info.values()] == [None] * 2


def test_a_local_cluster_turns_dead_workers_and_timeouts_into_results(tiny, user_module):
    user_module("dask_evaluators", EVALUATORS)
    config = config_from_dict({
        **tiny, "evaluation": {"evaluator": "dask_evaluators:troubles"},
        "pool": {"backend": "dask", "workers": 2, "timeout": 10, "max_retries": 1}})
    summary = run(config)
    results = {e["index"]: e for e in read_journal(summary.run_dir) if e["event"] == "result"}
    assert len(results) == config.strategy.budget
    assert results[0]["status"] == "crashed"
    assert "died on each of 2 attempt(s) (KilledWorker" in results[0]["message"]
    assert results[1]["status"] == "timeout" and "pool.timeout (10 s" in results[1]["message"]
    assert all(r["status"] == "ok" for i, r in results.items() if i > 1 and not r["cached"])
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def test_a_timeout_counts_from_the_start_on_a_worker_not_from_submission(tiny, user_module):
    """Evaluation 1 is submitted when evaluation 0 times out, while the only worker restarts
    (about 5 s here) and then imports torch again: timed from submission it would pass the 8 s
    timeout, timed from its start it takes a few seconds and is ok."""
    user_module("dask_evaluators", EVALUATORS)
    config = config_from_dict(tiny)
    tasks = [make_task(config.replace(**{"evaluation.evaluator":
                                         "dask_evaluators:slow_after_a_hang"}),
                       {"channels": [4, 4]}, index=i, seed=i,
                       genome={"encoding": "binary", "code": "1_1-01"}) for i in (0, 1)]
    with DaskPool(workers=1, timeout=8) as pool:
        pool.submit(tasks[0])
        (hung,) = pool.wait()
        pool.submit(tasks[1])
        (ok,) = pool.wait()
    assert hung["status"] == "timeout" and "from its start on a worker" in hung["message"]
    assert ok["status"] == "ok", ok["message"]


def test_a_local_cluster_gives_each_gpu_slot_its_own_worker(tiny, user_module, monkeypatch):
    """No GPU here: two GPUs are faked, which is enough to check that each worker sees only
    its own GPU, offers resource GPU=1, and that tasks ask for it."""
    import evolution.pool.slots

    user_module("dask_evaluators", EVALUATORS)
    monkeypatch.setattr(evolution.pool.slots, "visible_gpus", lambda: ["0", "1"])
    config = config_from_dict(tiny)
    config = config.replace(**{"evaluation.evaluator": "dask_evaluators:where"})
    base = make_task(config, {"channels": [4, 4]}, index=0, seed=0,
                     genome={"encoding": "binary", "code": "1_1-01"})
    with DaskPool(devices="auto") as pool:
        assert pool.gpu and pool.slots == 2
        gpu_of = {addr: info["cuda_visible_devices"] for addr, info in pool.worker_info.items()}
        assert sorted(gpu_of.values()) == ["0", "1"]
        assert {w["resources"].get("GPU") for w in pool._workers().values()} == {1}
        results = []
        for index in range(4):
            pool.submit({**base, "index": index})
            if not pool.free:
                results += pool.wait()
        while pool.running:
            results += pool.wait()
    assert len(results) == 4
    for r in results:
        assert r["status"] == "ok" and r["device"] == r["metrics"]["device"] == "cuda:0"
        assert r["gpu"] == r["metrics"]["cuda_visible_devices"] == gpu_of[r["worker"]]


def test_an_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(PoolError, match="cannot reach the Dask scheduler at pool.address"):
        DaskPool(address="tcp://127.0.0.1:9", connect_timeout=2)


def test_a_constrained_multi_objective_run_on_dask_equals_the_serial_one(tiny, dask_cluster):
    """NSGA-II with a size constraint, in deterministic mode: the Dask cluster's journal holds
    the serial pool's results, the same infeasible architectures refused before training, and
    the same front and hypervolume."""
    base = {**tiny, "strategy": {"name": "nsga2", "population": 4, "generations": 1},
            "objectives": [{"metric": "val_accuracy", "direction": "max"},
                           {"metric": "params", "direction": "min"}],
            "constraints": {"params": {"max": 1000}}, "deterministic": True}
    serial = run(config_from_dict({**base, "name": "serial"}))
    dask = run(config_from_dict({**base, "name": "dask",
                                 "pool": {"backend": "dask", "address": dask_cluster,
                                          "workers": 2}}))

    def trace(summary):
        return [(e["index"], e["key"], e["status"], e["values"], e.get("precheck"))
                for e in read_journal(summary.run_dir) if e["event"] == "result"]
    assert trace(dask) == trace(serial)
    assert any(status == "infeasible" and precheck for _, _, status, _, precheck in trace(dask))
    assert dask.front == serial.front and dask.hypervolume == serial.hypervolume
    assert dask.evaluations == serial.evaluations == 8


def test_multi_fidelity_on_dask_continues_each_promoted_candidate_like_the_serial_pool(
        tiny, dask_cluster):
    """ASHA with the built-in trainer, in deterministic mode: every promoted candidate's
    checkpoint travels with its next step to whichever worker takes it, and the journal holds
    the serial pool's decisions and metrics."""
    from tests.test_faults import trace
    from tests.test_fidelity_training import fidelity_config

    serial = run(fidelity_config(tiny, "serial").replace(**{"pool.workers": 2}))
    config = fidelity_config(tiny, "dask").replace(
        **{"pool.backend": "dask", "pool.address": dask_cluster, "pool.workers": 2})
    dask = run(config)
    assert trace(dask.run_dir) == trace(serial.run_dir)
    assert any(e["event"] == "rung" for e in read_journal(dask.run_dir))
    assert dask.epochs == serial.epochs < 4 * dask.trained
