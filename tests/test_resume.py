"""Checkpoint and resume: kill a real `evonas run` at random moments, resume, and get the same
journal as an uninterrupted run; damaged run directories; extending; refusing changed configs;
the lock; status."""
from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evolution import resume, run
from evolution.config import ConfigError, config_from_dict
from evolution.journal import (RunDirectory, RunDirectoryError, atomic_write, lock_owner,
                               read_events, read_journal)
from evolution.status import run_status

PLUGIN = textwrap.dedent('''
    import hashlib, time

    def score(genome, settings):
        """Deterministic in the genome, and slow enough (about 40 ms) to be killed mid-way."""
        digest = genome.key().encode()
        deadline = time.perf_counter() + 0.04
        while time.perf_counter() < deadline:
            digest = hashlib.sha256(digest).digest()
        return {"fitness": int.from_bytes(hashlib.sha256(genome.key().encode()).digest()[:4],
                                          "big") / 2**32, "bits": genome.key().count("1")}
''')


@pytest.fixture
def plugin(user_module):
    return user_module("slow_bench", PLUGIN) + ":score"


def plugin_config(tiny, plugin, **strategy):
    return {**tiny, "search": {"encoding": "binary", "stages": [3, 4, 4], "channels": [4, 4, 4]},
            "strategy": strategy or {"name": "aging", "population": 6, "sample": 3, "cycles": 30},
            "evaluation": {"evaluator": plugin, "objective": "fitness"},
            "snapshot_every": 1}


def trace(run_dir: Path) -> list[tuple]:
    """What must not depend on interruptions: every ask and result, in order."""
    out = []
    for e in read_journal(run_dir):
        if e["event"] == "ask":
            out.append(("ask", e["index"], e["ticket"], json.dumps(e["genome"]), e["seed"]))
        elif e["event"] == "result":
            out.append(("result", e["index"], e["status"], e["values"], e["cached"]))
    return out


def evonas(*args, cwd):
    return subprocess.Popen([sys.executable, "-m", "evolution.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("strategy", [
    {"name": "aging", "population": 6, "sample": 3, "cycles": 34},
    {"name": "genetic", "population": 8, "generations": 4, "p_crossover": 0.5},
    {"name": "nsga2", "population": 8, "generations": 4},  # two objectives, a constraint
])
@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_journal(
        tiny, plugin, write_config, tmp_path, strategy):
    config = plugin_config(tiny, plugin, **strategy)
    if strategy["name"] == "nsga2":
        config["evaluation"] = {"evaluator": plugin}
        config["objectives"] = [{"metric": "fitness", "direction": "max"},
                                {"metric": "bits", "direction": "min"}]
        config["constraints"] = {"bits": {"max": 7}}
    reference = run(config_from_dict(config), name="reference")
    assert reference.evaluations == config_from_dict(config).strategy.budget

    path = write_config(config)
    run_dir = tmp_path / "runs" / "killed"
    rng = random.Random(7)
    kills = 0
    for attempt in range(12):
        args = ("run", path, "--name", "killed") if attempt == 0 else ("resume", run_dir)
        proc = evonas(*args, cwd=tmp_path)
        journal = run_dir / "journal.jsonl"
        before = journal.stat().st_size if journal.exists() else 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if journal.exists() and journal.stat().st_size > before:
                break  # this session is evaluating
        time.sleep(rng.uniform(0.0, 0.6))  # the random moment of the kill
        if proc.poll() is not None:
            out, err = proc.communicate()
            assert proc.returncode == 0, err
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        kills += 1
    else:
        proc = evonas("resume", run_dir, cwd=tmp_path)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    assert kills >= 3, "the run finished too fast to be interrupted"
    results = [e for e in read_journal(run_dir) if e["event"] == "result"]
    assert sorted(e["index"] for e in results) == list(range(reference.evaluations))
    assert trace(run_dir) == trace(reference.run_dir)
    assert run_status(run_dir)["state"] == "finished"


@pytest.mark.slow
def test_snapshot_write_survives_sigkill(tmp_path):
    """Kill a process while it rewrites a large snapshot in a loop: the file on disk is always
    one complete version, never a torn one."""
    target = tmp_path / "state.json"
    code = textwrap.dedent(f'''
        import json, sys
        from pathlib import Path
        from evolution.journal import write_json
        path = Path({str(target)!r})
        for i in range(100000):
            write_json(path, {{"version": i, "payload": ["x" * 100] * 20000}})
            if i == 0:
                print("ready", flush=True)
    ''')
    for moment in (0.0, 0.05, 0.13, 0.21):
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(moment)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        data = json.loads(target.read_text())
        assert len(data["payload"]) == 20000
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "state.json"]
    assert all(name.startswith(".state.json.") for name in leftovers)


def test_torn_last_line_is_dropped_with_a_warning(tiny, plugin, caplog):
    config = config_from_dict(plugin_config(tiny, plugin))
    reference = run(config, name="reference")
    partial = run(config.replace(**{"strategy.cycles": 10}), name="partial")
    journal = partial.run_dir / "journal.jsonl"
    with open(journal, "a") as f:
        f.write('{"event": "result", "index": 99, "sta')  # died mid-write
    with pytest.raises(ConfigError):  # a different budget is a different config...
        run(config, name="partial", resume=True)
    done = resume(partial.run_dir, extend=30)  # ...but extending is allowed
    assert "cut off" in caplog.text
    assert trace(done.run_dir) == trace(reference.run_dir)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "ahead"])
def test_bad_snapshots_fall_back_to_the_whole_journal(tiny, plugin, damage, caplog):
    config = config_from_dict(plugin_config(tiny, plugin))
    reference = run(config, name="reference")
    stopped = run(config.replace(**{"strategy.cycles": 12}), name="stopped")
    state = stopped.run_dir / "state.json"
    if damage == "missing":
        state.unlink()
    elif damage == "corrupt":
        state.write_text('{"format": 1, "lines": 5, "strategy": {"gen')
    else:
        data = json.loads(state.read_text())
        state.write_text(json.dumps({**data, "lines": data["lines"] + 1000}))
    done = resume(stopped.run_dir, extend=30)
    assert trace(done.run_dir) == trace(reference.run_dir)
    if damage != "missing":
        assert "replaying the whole journal" in caplog.text


def test_unknown_format_is_a_clear_error(tiny, plugin):
    summary = run(config_from_dict(plugin_config(tiny, plugin)), name="old")
    state = summary.run_dir / "state.json"
    state.write_text(json.dumps({**json.loads(state.read_text()), "format": 99}))
    with pytest.raises(RunDirectoryError, match="format 99.*reads formats 1 and 2"):
        resume(summary.run_dir)


def test_damage_inside_the_journal_is_an_error(tmp_path):
    (tmp_path / "journal.jsonl").write_text('{"event": "ask"}\nnot json\n{"event": "ask"}\n')
    with pytest.raises(RunDirectoryError, match="damaged at byte 17"):
        read_events(tmp_path)


@pytest.mark.parametrize("strategy, extra", [
    ({"name": "genetic", "population": 6, "generations": 2}, 4),
    ({"name": "aging", "population": 6, "sample": 3, "cycles": 10}, 25),
    ({"name": "random", "evaluations": 10}, 18),
])
def test_extending_a_finished_run_equals_a_longer_run(tiny, plugin, strategy, extra):
    key = {"genetic": "generations", "aging": "cycles", "random": "evaluations"}[strategy["name"]]
    short = run(config_from_dict(plugin_config(tiny, plugin, **strategy)), name="short")
    longer = run(config_from_dict(plugin_config(tiny, plugin, **{**strategy, key: extra})),
                 name="long")
    extended = resume(short.run_dir, extend=extra)
    assert extended.evaluations == longer.evaluations
    assert trace(extended.run_dir) == trace(longer.run_dir)
    with pytest.raises(ConfigError, match="at least"):
        resume(short.run_dir, extend=1)


def test_resuming_a_finished_run_changes_nothing(tiny, plugin):
    done = run(config_from_dict(plugin_config(tiny, plugin)), name="done")
    before = trace(done.run_dir)
    again = resume(done.run_dir)
    assert trace(again.run_dir) == before and again.evaluations == done.evaluations


def test_changed_config_is_refused_with_the_differing_keys(tiny, plugin):
    config = config_from_dict(plugin_config(tiny, plugin))
    run(config.replace(**{"strategy.cycles": 5}), name="base")
    changed = config.replace(**{"strategy.cycles": 5, "seed": 9, "strategy.sample": 2})
    with pytest.raises(ConfigError) as info:
        run(changed, name="base", resume=True)
    assert "seed, strategy.sample" in str(info.value)
    assert "evonas resume" in str(info.value) and "--cycles N" in str(info.value)
    assert run(config.replace(**{"strategy.cycles": 5}), name="base", resume=True)
    fresh = run(config, name="never-started", resume=True)  # nothing to resume: start it
    assert fresh.evaluations == config.strategy.budget


def test_lock_refuses_a_second_driver_and_a_dead_holder_leaves_it_free(tmp_path, caplog):
    with RunDirectory.create(tmp_path, "locked", {"seed": 0}, exact=True) as held:
        assert lock_owner(held.path) == os.getpid()
        with pytest.raises(RunDirectoryError, match=f"in use by process {os.getpid()} on "):
            RunDirectory.open(held.path)
        assert lock_owner(held.path) == os.getpid()  # the refused open changed nothing
    assert lock_owner(tmp_path / "locked") is None and \
        (tmp_path / "locked" / "lock").read_text() == ""
    # a holder that died leaves its pid in the file but no OS lock: the run is free
    (tmp_path / "locked" / "lock").write_text(f"999999 {socket.gethostname()}\n")
    assert lock_owner(tmp_path / "locked") is None
    opened, _ = RunDirectory.open(tmp_path / "locked")
    assert (tmp_path / "locked" / "lock").read_text().split()[0] == str(os.getpid())
    opened.close()
    # one written on another host is taken over, but not silently
    (tmp_path / "locked" / "lock").write_text("4242 elsewhere\n")
    with caplog.at_level("WARNING"):
        RunDirectory.open(tmp_path / "locked")[0].close()
    assert "process 4242 on host elsewhere" in caplog.text


def _race(path: str, start: float, conn) -> None:
    """Open the run directory at ``start`` (wall clock); report whether it got the lock, hold
    it until told to let go."""
    from evolution.journal import RunDirectory, RunDirectoryError

    while time.time() < start:
        pass
    try:
        opened, _ = RunDirectory.open(path)
    except RunDirectoryError:
        conn.send(False)
        return
    conn.send(True)
    conn.recv()
    opened.close()


@pytest.mark.slow
def test_processes_opening_a_run_at_the_same_moment_never_share_it(tmp_path):
    import multiprocessing

    RunDirectory.create(tmp_path, "race", {"seed": 0}, exact=True).close()
    ctx = multiprocessing.get_context("fork")
    for trial in range(20):
        start = time.time() + 0.3
        pipes = [ctx.Pipe() for _ in range(4)]
        procs = [ctx.Process(target=_race, args=(str(tmp_path / "race"), start, child))
                 for _, child in pipes]
        for p in procs:
            p.start()
        got = [parent.recv() for parent, _ in pipes]
        assert sum(got) == 1, f"trial {trial}: {sum(got)} processes held the lock"
        for (parent, _), won in zip(pipes, got):
            if won:
                parent.send("release")
        for p in procs:
            p.join()


def test_status_reports_progress_best_failures_and_state(tiny, plugin, tmp_path):
    config = config_from_dict(plugin_config(tiny, plugin))
    summary = run(config.replace(**{"strategy.cycles": 4}), name="st")
    st = run_status(summary.run_dir)
    assert st["state"] == "finished" and st["completed"] == st["budget"] == 10
    assert st["statuses"] == {"ok": 10} and st["sessions"] == 1
    assert [b["values"] for b in st["best"]] == sorted((b["values"] for b in st["best"]),
                                                       reverse=True)
    (summary.run_dir / "summary.json").unlink()
    with open(summary.run_dir / "journal.jsonl", "a") as f:
        f.write(json.dumps({"event": "ask", "index": 10}) + "\n")
    st = run_status(summary.run_dir)
    assert st["state"] == "stopped" and st["in_flight"] == 1
    done = subprocess.run([sys.executable, "-m", "evolution.cli", "status",
                           str(summary.run_dir)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0 and "10/10 trained, 10 evaluations, 1 interrupted" in done.stdout
    assert "aging: strategy.cycles = 4 (10 architectures)" in done.stdout
    assert "stopped" in done.stdout and "rank" in done.stdout
    with pytest.raises(RunDirectoryError):
        run_status(tmp_path / "nowhere")


@pytest.mark.slow
def test_deterministic_mode_makes_two_workers_match_one(tiny, plugin):
    config = config_from_dict({**plugin_config(tiny, plugin), "deterministic": True,
                               "pool": {"backend": "local", "workers": 2}})
    a = run(config, name="a")
    b = run(config, name="b")
    assert trace(a.run_dir) == trace(b.run_dir)
    assert {e["worker"] for e in read_journal(a.run_dir)
            if e["event"] == "result" and not e["cached"]} == {0, 1}


def test_atomic_write_leaves_no_temp_files_on_error(tmp_path):
    def boom(f):
        f.write("partial")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", boom)
    assert list(tmp_path.iterdir()) == []
