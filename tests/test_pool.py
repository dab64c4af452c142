"""The local pool: devices, and failures that become results instead of a crashed or hung run.

The evaluators under test live in a module written into ``tmp_path`` (the run's working
directory, from which spawned workers import it). Evaluation 0 is the one that misbehaves;
markers created with ``O_EXCL`` tell a first attempt from a retry across processes.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from evolution import run
from evolution.config import ConfigError, config_from_dict
from evolution.journal import read_journal
from evolution.pool import LocalPool, PoolError, SerialPool, make_pool, resolve_slots
from evolution.worker import evaluate_task, make_task

pytestmark = pytest.mark.slow  # worker processes: not in the fast loop

EVALUATORS = '''
import ctypes, os, signal, threading, time


def _first(name):
    """True for the one process that creates marker ``name`` (in the cwd) first; it holds
    that process's pid."""
    try:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    return True


def score(genome, settings):
    code = genome.to_string()
    return {"val_accuracy": code.count("1") / len(code), "pid": os.getpid()}


def blocks_once(genome, settings):
    """Evaluation 0 blocks on its first attempt until its worker is killed."""
    if settings["index"] == 0 and _first("attempt-0"):
        threading.Event().wait()
    return score(genome, settings)


def segfaults_once(genome, settings):
    if settings["index"] == 0 and _first("attempt-0"):
        ctypes.string_at(0)  # SIGSEGV
    return score(genome, settings)


def always_dies(genome, settings):
    if settings["index"] == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    return score(genome, settings)


def hangs(genome, settings):
    if settings["index"] == 0:
        time.sleep(3600)
    return score(genome, settings)


def hungry(genome, settings):
    if settings["index"] == 0:
        block = bytearray(1536 * 2**20)  # 1.5 GiB, written (zeroed) at once
        return {"val_accuracy": float(len(block) > 0)}
    return score(genome, settings)


def nan(genome, settings):
    return float("nan")


def raises(genome, settings):
    raise ValueError("this architecture is not welcome")


def cuda_oom(genome, settings):
    import torch
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


def where(genome, settings):
    return {"val_accuracy": 1.0, "device": settings["device"], "pid": os.getpid(),
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def exits(genome, settings):
    import sys
    sys.exit(3)


def interrupts(genome, settings):
    raise KeyboardInterrupt


def forks(genome, settings):
    """Leaves a grandchild behind that would sleep for an hour; its pid goes to a file."""
    import subprocess
    child = subprocess.Popen(["sleep", "3600"])
    with open(f"orphan-{settings['index']}", "w") as f:
        f.write(str(child.pid))
    return score(genome, settings)
'''


@pytest.fixture
def evaluators(user_module, tmp_path):
    """``evaluators.NAME`` is importable here and in spawned workers (cwd = tmp_path)."""
    user_module("evaluators", EVALUATORS)
    return tmp_path


def search_config(tiny, evaluator, **pool):
    return config_from_dict({**tiny, "evaluation": {"evaluator": f"evaluators:{evaluator}"},
                             "pool": {"backend": "local", "workers": 2, **pool}})


def results_of(summary):
    return [e for e in read_journal(summary.run_dir) if e["event"] == "result"]


def task(config, index, evaluator=None, **evaluation):
    changes = {f"evaluation.{key}": value for key, value in evaluation.items()}
    if evaluator:
        changes["evaluation.evaluator"] = f"evaluators:{evaluator}"
    config = config.replace(**changes)
    return make_task(config, {"channels": [4, 4]}, index=index, seed=index,
                     genome={"encoding": "binary", "code": "1_1-01"})


def collect(pool, tasks):
    """Run ``tasks`` through ``pool``, keeping its slots full; results by index."""
    pending, out = list(tasks), {}
    while pending or pool.running:
        while pending and pool.free:
            pool.submit(pending.pop(0))
        for result in pool.wait():
            out[result["index"]] = result
    return out


def wait_for(path: Path, seconds: float = 60) -> str:
    """The content of ``path`` once a process wrote it (bounded polling)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.02)
    raise AssertionError(f"{path} did not appear within {seconds} s")


# ----------------------------------------------------------------------------------- devices
def test_devices_config_is_validated():
    for devices, expected in [("gpu", "got 'gpu'"), (["cuda:0", "cpu"], "a list names GPUs"),
                              ([], "got []"), (["cuda:1", "cuda:1"], "names a GPU twice")]:
        with pytest.raises(ConfigError, match="pool.devices") as info:
            config_from_dict({"pool": {"devices": devices}})
        assert expected in str(info.value)
    assert config_from_dict({"pool": {"devices": "cuda:1"}}).pool.devices == ["cuda:1"]
    for pool, key in [({"backend": "serial", "timeout": 5}, "pool.timeout"),
                      ({"address": "tcp://127.0.0.1:8786"}, "pool.address"),
                      ({"backend": "dask", "max_tasks_per_worker": 3}, "--lifetime"),
                      ({"backend": "dask", "address": "tcp://h:1", "memory_limit_mb": 900},
                       "--memory-limit")]:
        with pytest.raises(ConfigError, match=key):
            config_from_dict({"pool": pool})


def test_devices_resolve_to_slots_without_gpus(tiny):
    assert [s.device for s in resolve_slots("auto", 3)] == ["cpu"] * 3  # no GPU here
    assert all(s.env == {} for s in resolve_slots("auto", 3))
    cpu = resolve_slots("cpu", 2)
    assert [s.env for s in cpu] == [{"CUDA_VISIBLE_DEVICES": ""}] * 2  # hide GPUs
    with pytest.raises(PoolError, match="names cuda:0, but this machine has no CUDA GPU") as e:
        resolve_slots(["cuda:0"], 2)
    assert "pool.devices: auto" in str(e.value)
    with pytest.raises(PoolError, match="no CUDA GPU"):  # the run stops before it starts
        make_pool(config_from_dict({**tiny, "pool": {"backend": "local",
                                                     "devices": ["cuda:0"]}}))


def test_devices_resolve_to_gpu_slots(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,7")  # torch counts 2 of them
    auto = resolve_slots("auto", workers=8, slots_per_gpu=2)
    assert [(s.device, s.env["CUDA_VISIBLE_DEVICES"], s.worker_device) for s in auto] == [
        ("cuda:0", "3", "cuda:0"), ("cuda:0", "3", "cuda:0"),
        ("cuda:1", "5", "cuda:0"), ("cuda:1", "5", "cuda:0")]
    assert [s.env for s in resolve_slots(["cuda:1"], 8)] == [{"CUDA_VISIBLE_DEVICES": "5"}]
    with pytest.raises(PoolError, match="only cuda:0..cuda:1 are visible"):
        resolve_slots(["cuda:0", "cuda:2"], 8)


def test_gpu_workers_start_with_only_their_gpu_visible(tiny, evaluators, monkeypatch):
    """No GPU here, but the mechanism is real: each worker process starts with its own
    CUDA_VISIBLE_DEVICES and is told to use cuda:0, which it reports back."""
    import evolution.pool.slots

    monkeypatch.setattr(evolution.pool.slots, "visible_gpus", lambda: ["0", "1"])
    config = search_config(tiny, "where", devices="auto")
    with make_pool(config) as pool:
        assert pool.slots == 2
        out = collect(pool, [task(config, i, "where") for i in range(4)])
    seen = {(r["metrics"]["cuda_visible_devices"], r["gpu"], r["device"],
             r["metrics"]["device"]) for r in out.values()}
    assert seen == {("0", "0", "cuda:0", "cuda:0"), ("1", "1", "cuda:0", "cuda:0")}
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # the parent's environment is unchanged


# ---------------------------------------------------------------------------------- failures
@pytest.mark.parametrize("how", ["sigkill", "segfault"])
def test_a_worker_that_dies_is_replaced_and_its_evaluation_retried(tiny, evaluators, how):
    evaluator = "blocks_once" if how == "sigkill" else "segfaults_once"
    config = search_config(tiny, evaluator)
    killer = None
    if how == "sigkill":  # kill the worker while it is inside evaluation 0
        def kill():
            os.kill(int(wait_for(evaluators / "attempt-0")), signal.SIGKILL)
        killer = threading.Thread(target=kill, daemon=True)
        killer.start()
    summary = run(config)
    if killer:
        killer.join()
    first = int((evaluators / "attempt-0").read_text())
    results = results_of(summary)
    assert len(results) == config.strategy.budget
    assert all(r["status"] == "ok" for r in results), [r["message"] for r in results]
    (zero,) = [r for r in results if r["index"] == 0]
    assert zero["pid"] != first  # the retry ran on the replacement worker...
    assert first not in {r.get("pid") for r in results}  # ...and the dead one returned nothing
    assert summary.failures == 0


def test_retries_are_bounded_then_the_evaluation_is_crashed(tiny, evaluators):
    config = search_config(tiny, "always_dies")
    with LocalPool(workers=1, max_retries=2) as pool:
        out = collect(pool, [task(config, i, "always_dies") for i in range(3)])
        assert pool.stats()["restarts"] == 3 and pool.stats()["retries"] == 2
    assert out[0]["status"] == "crashed" and out[0]["attempts"] == 3
    assert "SIGKILL) on each of 3 attempts" in out[0]["message"]
    assert len(out[0]["retried"]) == 2
    assert [out[i]["status"] for i in (1, 2)] == ["ok", "ok"]
    assert out[0]["pid"] not in {out[1]["pid"], out[2]["pid"]}


def test_an_evaluation_past_the_timeout_is_stopped_and_its_worker_replaced(tiny, evaluators):
    config = search_config(tiny, "hangs", timeout=2)
    summary = run(config)
    results = results_of(summary)
    (zero,) = [r for r in results if r["index"] == 0]
    assert zero["status"] == "timeout" and "pool.timeout (2 s)" in zero["message"]
    # stopped at the deadline, not when its hour-long sleep would have ended
    assert 2 <= zero["finished"] - zero["started"] < 600
    others = [r for r in results if r["index"] != 0 and not r["cached"]]
    assert others and all(r["status"] == "ok" for r in others)
    assert zero["pid"] not in {r["pid"] for r in others}  # killed, and replaced
    assert summary.evaluations == config.strategy.budget


def test_nan_loss_and_exceptions_are_failed_results_and_the_worker_goes_on(tiny, evaluators):
    config = config_from_dict(tiny)
    tasks = [task(config, 0, lr=1e12),        # the built-in trainer diverges
             task(config, 1, "nan"), task(config, 2, "raises"), task(config, 3, "score")]
    with LocalPool(workers=1) as pool:
        out = collect(pool, tasks)
    assert out[0]["status"] == "failed" and "NonFiniteLoss" in out[0]["message"]
    assert out[1]["status"] == "failed" and "not a finite number" in out[1]["message"]
    assert out[2]["status"] == "failed"
    assert out[2]["message"] == "ValueError: this architecture is not welcome"
    assert "evaluators.py" in out[2]["traceback"] and "in raises" in out[2]["traceback"]
    assert out[3]["status"] == "ok"
    assert len({r["pid"] for r in out.values()}) == 1  # one worker took every failure


def test_cuda_out_of_memory_is_failed_and_empties_the_cache(tiny, evaluators, monkeypatch):
    """Simulated (no GPU here): the evaluation raises torch's CUDA OOM error."""
    import torch

    emptied = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    result = evaluate_task(task(config_from_dict(tiny), 0, "cuda_oom"))
    assert result["status"] == "failed" and result["out_of_memory"] == "cuda"
    assert result["message"].startswith("OutOfMemoryError: CUDA out of memory")
    assert emptied == [True]


def test_an_evaluation_over_the_memory_limit_fails_without_taking_the_run_down(tiny,
                                                                                  evaluators):
    from evolution.evaluator import load_evaluator
    from genome import BinaryGenome

    # without the limit the allocation succeeds (here, in the test process)
    assert load_evaluator("evaluators:hungry")(BinaryGenome.from_string("1"),
                                               {"index": 0}) == {"val_accuracy": 1.0}
    config = search_config(tiny, "hungry", memory_limit_mb=1300)
    summary = run(config)
    results = results_of(summary)
    (zero,) = [r for r in results if r["index"] == 0]
    assert zero["status"] == "failed" and zero["message"].startswith("MemoryError")
    assert all(r["status"] == "ok" for r in results if r["index"] != 0 and not r["cached"])
    assert summary.evaluations == config.strategy.budget
    with pytest.raises(PoolError, match="memory_limit_mb is 100 MB, but a worker already"):
        with LocalPool(workers=1, memory_limit_mb=100) as pool:
            pool.submit(task(config, 0, "score"))
            pool.wait()


# ---------------------------------------------------------------------------------- workers
def test_workers_are_recycled_after_max_tasks_and_replaced_when_they_die_idle(tiny, evaluators):
    config = config_from_dict(tiny)
    with LocalPool(workers=1, max_tasks_per_worker=2) as pool:
        pids = [collect(pool, [task(config, i, "score")])[i]["pid"] for i in range(5)]
        assert pids[0] == pids[1] != pids[2] == pids[3] != pids[4]
        assert pool.recycled == 2 and pool.restarts == 0
        stats = pool.stats()
        assert stats["completed"] == 5 and stats["running"] == 0
        assert stats["busy_seconds"] == pool.busy_seconds > 0
        assert 0 < stats["utilization"] <= 1
        (worker,) = stats["workers"]
        assert worker["pid"] == pids[4] and worker["done"] == 1
        for pid in pids[:4]:  # retired workers exited and were reaped
            status = Path(f"/proc/{pid}/status")
            assert not status.exists() or "\nState:\tZ" not in status.read_text()
        # a worker that dies while idle is replaced before it gets the next task
        victim = pool._workers[0].process
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(timeout=10)
        result = collect(pool, [task(config, 9, "score")])[9]
        assert result["status"] == "ok" and result["pid"] != victim.pid
        assert result["attempts"] == 1 and pool.restarts == 1


def test_progress_attributes(tiny, evaluators):
    config = config_from_dict(tiny)
    with SerialPool() as serial:
        serial.submit(task(config, 0, "score"))
        assert (serial.running, serial.free) == (1, 0)
        serial.wait()
        assert serial.running == 0 and serial.busy_seconds > 0
    with LocalPool(workers=2) as pool:
        for i in range(2):
            pool.submit(task(config, i, "score"))
        assert (pool.running, pool.free) == (2, 0)
        assert pool.stats()["running"] == 2
        out = collect(pool, [])
        assert len(out) == 2 and pool.running == 0
        assert pool.busy_seconds == pytest.approx(
            sum(r["finished"] - r["started"] for r in out.values()))


def test_sys_exit_and_keyboard_interrupt_in_an_evaluation_are_its_failures(tiny, evaluators):
    config = config_from_dict(tiny)
    with LocalPool(workers=1, max_retries=1) as pool:
        out = collect(pool, [task(config, 0, "exits"), task(config, 1, "interrupts"),
                             task(config, 2, "score")])
    assert out[0]["status"] == "failed" and "sys.exit(3)" in out[0]["message"]
    assert out[1]["status"] == "failed" and out[1]["error"] == "KeyboardInterrupt"
    assert all(out[i]["attempts"] == 1 for i in (0, 1))  # failures, not crashes: not retried
    assert out[2]["status"] == "ok" and out[2]["pid"] == out[0]["pid"]  # the worker went on


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split()[2] != "Z"


def test_processes_an_evaluation_forks_do_not_outlive_the_pool(tiny, evaluators):
    import select

    config = config_from_dict(tiny)
    with LocalPool(workers=1) as pool:
        out = collect(pool, [task(config, 0, "forks")])
        orphan = int((evaluators / "orphan-0").read_text())
        assert out[0]["status"] == "ok" and _alive(orphan)
        exited = os.pidfd_open(orphan)  # readable once the process has exited
    # close() sent SIGKILL to the worker's group; the orphan dies when it next runs, so wait
    # for its exit (the timeout only keeps a regression from hanging the suite)
    assert select.select([exited], [], [], 120)[0] and not _alive(orphan)
    os.close(exited)


def test_a_worker_stopped_before_it_is_ready_is_replaced_after_start_timeout(tiny, evaluators):
    config = config_from_dict(tiny)
    with LocalPool(workers=1, start_timeout=10) as pool:  # ample for a loaded machine
        stopped = pool._workers[0].pid
        os.kill(stopped, signal.SIGSTOP)  # as if stuck importing torch, forever
        out = collect(pool, [task(config, 0, "score")])
    assert out[0]["status"] == "ok" and out[0]["pid"] != stopped
    assert out[0]["attempts"] == 1 and pool.restarts == 1


def test_workers_that_are_never_ready_in_time_say_to_raise_start_timeout(tiny, evaluators):
    config = config_from_dict(tiny)
    with pytest.raises(PoolError, match=r"not ready after pool.start_timeout \(0.001 s\).*"
                                        r"raise pool.start_timeout"):
        with LocalPool(workers=1, start_timeout=0.001) as pool:  # no worker starts that fast
            collect(pool, [task(config, 0, "score")])

