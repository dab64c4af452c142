"""Faults injected for real, many times, into runs driven through the command line; one table.

    .venv/bin/python tests/bench/bench_faults.py [--times N]

Each row injects one kind of fault N times (processes killed, files cut, disks "filled" with a
file-size limit, workers frozen, locks raced) into small deterministic runs and compares every
recovered run with an uninterrupted one: ``survived`` counts runs that ended with the whole,
identical journal; ``lost`` / ``repeated`` count results missing from, or doubled in, the
journals; ``bad exits`` counts commands that ended with a traceback or an exit code other than
the documented one. The target is every row survived, nothing lost or repeated, no bad exit.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

from evolution.journal import JOURNAL, RunDirectory, RunDirectoryError, read_journal  # noqa: E402

EVALUATOR = '''
import os
import time
from pathlib import Path

def score(genome, settings, seconds=0.02):
    """Deterministic; 20 ms, so that a kill lands in the middle of a run. While it evaluates, a
    file busy/<pid> names the worker, for the bench to kill it there."""
    busy = Path("busy") / str(os.getpid())
    busy.touch()
    time.sleep(seconds)
    v = list(genome.values)
    busy.unlink()
    return {"score": (9 * v[0] + 3 * v[1] + v[2]) / 26.0}

def slow(genome, settings):
    return score(genome, settings, seconds=0.6)

def hangs(genome, settings):
    if settings["index"] == 3:
        time.sleep(3600)
    return score(genome, settings)
'''
CONFIG = {"search": {"encoding": "choice", "choices": [[0, 1, 2]] * 3},
          "strategy": {"name": "aging", "population": 6, "sample": 3, "cycles": 34},
          "evaluation": {"evaluator": "faults_eval:score", "objective": "score"},
          "pool": {"backend": "local", "workers": 2}, "deterministic": True,
          "snapshot_every": 2}


def evonas(*args, cwd: Path, limit: int | None = None, **kw) -> subprocess.Popen:
    def prepare():
        if limit is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.Popen([sys.executable, "-m", "evolution.cli", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=prepare, **kw)


def trace(run_dir: Path) -> list:
    out = []
    for e in read_journal(run_dir):
        if e["event"] == "ask":
            out.append(("ask", e["index"], json.dumps(e["genome"]), e["seed"]))
        elif e["event"] == "result":
            out.append(("result", e["index"], e["status"], e["values"], e["cached"]))
        elif e["event"] in ("generation", "window"):
            out.append((e["event"], e.get("evaluations"), e["best"]))
    return out


class Row:
    def __init__(self, fault: str):
        self.fault, self.injected, self.runs, self.survived = fault, 0, 0, 0
        self.lost = self.repeated = self.bad = 0

    def check(self, run_dir: Path, reference: list) -> None:
        got = trace(run_dir)
        results = [e[1] for e in got if e[0] == "result"]
        expected = {e[1] for e in reference if e[0] == "result"}
        self.lost += len(expected - set(results))
        self.repeated += len(results) - len(set(results))
        self.runs += 1
        self.survived += got == reference

    def exit(self, proc: subprocess.Popen, allowed: tuple[int, ...], err: str) -> None:
        if proc.returncode not in allowed or "Traceback" in err:
            self.bad += 1


def write_config(folder: Path, name: str, **changes) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**CONFIG, "name": name, **changes}))
    return path


def reference(work: Path) -> tuple[Path, list]:
    proc = evonas("run", write_config(work, "reference"), cwd=work)
    proc.communicate(timeout=600)
    assert proc.returncode == 0
    return work / "runs" / "reference", trace(work / "runs" / "reference")


def resume_until_done(run_dir: Path, work: Path, row: Row) -> None:
    proc = evonas("resume", run_dir, cwd=work)
    _, err = proc.communicate(timeout=600)
    row.exit(proc, (0,), err)


def driver_kills(work: Path, ref: list, times: int) -> Row:
    row = Row("driver SIGKILL at random moments")
    rng = random.Random(0)
    run_dir = work / "runs" / "killed"
    config = write_config(work, "killed")
    again = ("run", config, "--name", "killed", "--resume")  # what a pre-emptible job repeats
    proc = evonas(*again, cwd=work)
    while row.injected < times:
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is not None:
            break
        proc.kill()
        proc.communicate()
        row.injected += 1
        proc = evonas(*again, cwd=work)
    _, err = proc.communicate(timeout=600)
    row.exit(proc, (0,), err)
    row.check(run_dir, ref)
    return row


def journal_cuts(work: Path, source: Path, ref: list, times: int) -> Row:
    row = Row("journal cut after a line (torn mid-line too)")
    lines = (source / JOURNAL).read_bytes().splitlines(keepends=True)
    rng = random.Random(1)
    for i in range(times):
        k = rng.randrange(1, len(lines))
        copy = work / f"cut-{i}"
        copy.mkdir()
        for name in ("config.yaml", "run.json"):
            shutil.copy(source / name, copy / name)
        torn = lines[k][: rng.randrange(len(lines[k]))] if i % 2 else b""
        (copy / JOURNAL).write_bytes(b"".join(lines[:k]) + torn)
        row.injected += 1
        resume_until_done(copy, work, row)
        row.check(copy, ref)
    return row


def disk_full(work: Path, ref: list, times: int) -> Row:
    row = Row("file-size limit (disk full) mid-run")
    rng = random.Random(2)
    for i in range(times):
        name = f"full-{i}"
        proc = evonas("run", write_config(work, name), cwd=work,
                      limit=rng.randrange(6_000, 30_000))
        _, err = proc.communicate(timeout=600)
        row.injected += 1
        row.exit(proc, (0, 3), err)  # 0 when the run ended before it reached the limit
        resume_until_done(work / "runs" / name, work, row)
        row.check(work / "runs" / name, ref)
    return row


def worker_kills(work: Path, ref: list, times: int) -> Row:
    """Workers SIGKILLed mid-evaluation: crashes are retried (max_retries), so the journal is
    the uninterrupted one."""
    row = Row("worker SIGKILL during an evaluation")
    name = "workers"
    config = write_config(work, name, pool={"backend": "local", "workers": 2,
                                            "max_retries": 3 * times},
                          evaluation={"evaluator": "faults_eval:slow", "objective": "score"})
    proc = evonas("run", config, cwd=work)
    rng = random.Random(3)
    while row.injected < times and proc.poll() is None:
        time.sleep(rng.uniform(0.05, 0.5))
        pids = os.listdir(work / "busy")  # workers inside an evaluation now
        if pids:
            try:
                os.kill(int(rng.choice(pids)), signal.SIGKILL)
            except ProcessLookupError:  # it had just finished; its file stays behind
                continue
            row.injected += 1
    _, err = proc.communicate(timeout=600)
    row.exit(proc, (0,), err)
    row.check(work / "runs" / name, ref)
    return row


def frozen_workers(work: Path, times: int) -> Row:
    """A worker SIGSTOPped before it is ready, and an evaluation that hangs: start_timeout and
    timeout replace them; the run ends (nothing to compare: a timeout is a result)."""
    row = Row("worker frozen at start / evaluation hung")
    for i in range(times):
        name = f"frozen-{i}"
        config = write_config(work, name, pool={"backend": "local", "workers": 2,
                                                "start_timeout": 30, "timeout": 3},
                              evaluation={"evaluator": "faults_eval:hangs", "objective": "score"})
        proc = evonas("run", config, cwd=work)
        for _ in range(100):  # the first worker, as soon as it exists
            pids = subprocess.run(["pgrep", "-f", "multiprocess.spawn", "-P", str(proc.pid)],
                                  capture_output=True, text=True).stdout.split()
            if pids:
                os.kill(int(pids[0]), signal.SIGSTOP)
                break
            time.sleep(0.05)
        _, err = proc.communicate(timeout=600)
        row.injected += 2
        row.exit(proc, (0,), err)
        results = [e for e in read_journal(work / "runs" / name) if e["event"] == "result"]
        trained = [e["status"] for e in results if not e["cached"]]
        row.lost += 40 - len({e["index"] for e in results})
        row.repeated += len(results) - len({e["index"] for e in results})
        row.runs += 1
        row.survived += len(results) == 40 and trained.count("timeout") == 1
    return row


def _race(path: str, start: float, queue) -> None:
    while time.time() < start:
        pass
    try:
        opened, _ = RunDirectory.open(path)
    except RunDirectoryError:
        queue.put(0)
        return
    queue.put(1)
    time.sleep(0.5)
    opened.close()


def lock_races(work: Path, times: int) -> Row:
    row = Row("4 processes opening one run at once")
    RunDirectory.create(work, "race", {"seed": 0}, exact=True).close()
    ctx = multiprocessing.get_context("fork")
    for _ in range(times):
        queue, start = ctx.Queue(), time.time() + 0.2
        procs = [ctx.Process(target=_race, args=(str(work / "race"), start, queue))
                 for _ in range(4)]
        for p in procs:
            p.start()
        holders = sum(queue.get() for _ in procs)
        for p in procs:
            p.join()
        row.injected += 1
        row.runs += 1
        row.survived += holders == 1
        row.repeated += max(0, holders - 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--times", type=int, default=10, help="injections per fault")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "faults_eval.py").write_text(EVALUATOR)
        (work / "busy").mkdir()
        started = time.time()
        source, ref = reference(work)
        rows = [driver_kills(work, ref, args.times), journal_cuts(work, source, ref, args.times),
                disk_full(work, ref, args.times), worker_kills(work, ref, args.times),
                frozen_workers(work, max(1, args.times // 5)), lock_races(work, args.times)]
        print(f"{'fault':<46} {'injected':>8} {'runs survived':>13} {'lost':>5} "
              f"{'repeated':>8} {'bad exits':>9}")
        for r in rows:
            print(f"{r.fault:<46} {r.injected:>8} {f'{r.survived}/{r.runs}':>13} {r.lost:>5} "
                  f"{r.repeated:>8} {r.bad:>9}")
        print(f"\n{time.time() - started:.0f} s on {os.cpu_count()} cores; survived = runs whose "
              f"final journal equals the uninterrupted one (lock races: exactly one holder)")


if __name__ == "__main__":
    main()
