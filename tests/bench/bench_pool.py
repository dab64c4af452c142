"""Pool benchmarks, printed side by side in one run (not collected by pytest).

    .venv/bin/python tests/bench/bench_pool.py [--genomes 12] [--epochs 3]

On a fixed set of distinct Genetic-CNN genomes (stages (3, 4), channels (16, 32)) trained by
the built-in trainer on the embedded digits set, each with its own fixed seed:

1. local pool, 1 vs 2 CPU workers (1 torch thread each): wall time and speedup
   (target >= 1.8x on 2 cores);
2. local pool vs Dask LocalCluster, 2 workers each: wall time ratio (target: Dask within 15%);
3. Dask LocalCluster with and without Dask's default MALLOC_TRIM_THRESHOLD_=65536;
4. worker utilization of an aging-evolution search on 2 local workers: busy time over wall
   time times workers, while the search loop runs (target >= 90%);
5. engine overhead per evaluation (strategy, cache, journal with an fsync per event, pool
   round trip) with a trivial evaluator: serial, local pool, Dask.

Pools are started (and their workers ready) before the clock starts; start-up is reported
separately. Wall times are from the first submission to the last result.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.pool import LocalPool, SerialPool  # noqa: E402
from evolution.pool import DaskPool  # noqa: E402
from evolution.loop import Search, derive_seed  # noqa: E402
from evolution.worker import make_task  # noqa: E402
from genome import BinaryGenome  # noqa: E402

TRIVIAL = '''
def fitness(genome, settings):
    code = genome.to_string()
    return code.count("1") / len(code)
'''


def genomes(n: int) -> list[BinaryGenome]:
    """``n`` random genomes of distinct canonical keys, the same on every run."""
    rng, out, keys = random.Random(0), [], set()
    while len(out) < n:
        g = BinaryGenome.random((3, 4), rng)
        if g.key() not in keys:
            keys.add(g.key())
            out.append(g)
    return out


def tasks(config, n: int) -> list[dict]:
    from training import load_dataset

    space = config.model_space(load_dataset(config.data.model_dump(mode="json")))
    return [make_task(config, space, index=i, seed=derive_seed(0, i), genome=g.to_dict())
            for i, g in enumerate(genomes(n))]


def drive(pool, todo: list[dict]) -> tuple[float, dict[int, dict]]:
    """Keep every slot busy until all of ``todo`` is done; wall seconds and results."""
    pending, results = list(todo), {}
    start = time.perf_counter()
    while pending or pool.running:
        while pending and pool.free:
            pool.submit(pending.pop(0))
        for r in pool.wait():
            results[r["index"]] = r
    return time.perf_counter() - start, results


def _cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine and by this process with its live
    children (the pool's workers), to tell how much of the machine others took."""
    import psutil

    t = psutil.cpu_times()
    machine = t.user + t.system + getattr(t, "nice", 0) + getattr(t, "irq", 0) + \
        getattr(t, "softirq", 0) + getattr(t, "steal", 0)
    me = psutil.Process()
    ours = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            c = proc.cpu_times()
            ours += c.user + c.system
        except psutil.Error:
            pass
    return machine, ours


def timed(make, todo, warmup):
    """Start a pool, warm each worker with one evaluation outside the set (a fresh worker's
    first evaluation also loads the data set and warms torch up), then time the set."""
    start = time.perf_counter()
    with make() as pool:
        pool.wait_ready()
        ready = time.perf_counter() - start
        for task in warmup[:pool.slots]:
            pool.submit(task)
        first = time.perf_counter()
        firsts = []
        while pool.running:
            firsts += pool.wait()
        warm = time.perf_counter() - first
        assert len({r["worker"] for r in firsts}) == pool.slots  # each worker warmed once
        machine0, ours0 = _cpu_seconds()
        seconds, results = drive(pool, todo)
        machine1, ours1 = _cpu_seconds()
    bad = [r for r in results.values() if r["status"] != "ok"]
    assert not bad, bad
    return {"ready": ready, "warm": warm, "seconds": seconds,
            "others": max(0.0, (machine1 - machine0) - (ours1 - ours0)) / seconds,
            "busy": sum(r["finished"] - r["started"] for r in results.values()),
            "accuracy": [round(results[i]["values"][0], 4) for i in sorted(results)]}


def aging_utilization(tmp: Path, evaluations: int, epochs: int) -> dict:
    config = config_from_dict({
        "search": {"stages": [3, 4], "channels": [16, 32]},
        "strategy": {"name": "aging", "population": 8, "sample": 3,
                     "cycles": evaluations - 8},
        "evaluation": {"epochs": epochs}, "pool": {"workers": 2}})
    from training import load_dataset

    space = config.model_space(load_dataset(config.data.model_dump(mode="json")))
    with LocalPool(2) as pool, \
            RunDirectory.create(tmp, "aging", config.to_dict(), exact=False) as rd:
        pool.wait_ready()
        search = Search(config, rd, pool, space)
        busy0, start = pool.busy_seconds, time.perf_counter()
        machine0, ours0 = _cpu_seconds()
        search.loop()
        machine1, ours1 = _cpu_seconds()
        wall = time.perf_counter() - start
        busy = pool.busy_seconds - busy0
    return {"wall": wall, "busy": busy, "utilization": busy / (wall * 2),
            "others": max(0.0, (machine1 - machine0) - (ours1 - ours0)) / wall,
            "trained": search.counts["trained"], "evaluations": search.counts["evaluations"]}


def overhead(tmp: Path, make, evaluations: int) -> float:
    config = config_from_dict({
        "search": {"stages": [5, 5, 5], "channels": [8, 8, 8]},
        "strategy": {"name": "random", "evaluations": evaluations},
        "evaluation": {"evaluator": "bench_trivial:fitness", "objective": "fitness"}})
    with make() as pool, \
            RunDirectory.create(tmp, "overhead", config.to_dict(), exact=False) as rd:
        pool.wait_ready()
        search = Search(config, rd, pool, {"channels": [8, 8, 8]})
        start = time.perf_counter()
        search.loop()
        seconds = time.perf_counter() - start
    return 1000 * seconds / search.counts["evaluations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genomes", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--aging-evaluations", type=int, default=24)
    parser.add_argument("--overhead-evaluations", type=int, default=300)
    args = parser.parse_args()
    import dask
    import distributed
    import torch

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("distributed").setLevel(logging.ERROR)  # after importing it
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}, torch "
          f"{torch.__version__}, dask {dask.__version__} / distributed "
          f"{distributed.__version__}")
    config = config_from_dict({"search": {"stages": [3, 4], "channels": [16, 32]},
                               "evaluation": {"epochs": args.epochs}})
    *todo, warm_a, warm_b = tasks(config, args.genomes + 2)
    warmup = [warm_a, warm_b]
    print(f"genome set: {len(todo)} distinct Genetic-CNN genomes, stages (3, 4), channels "
          f"(16, 32), digits, {args.epochs} epochs, 1 torch thread per worker\n")

    one = timed(lambda: LocalPool(1), todo, warmup)
    two = timed(lambda: LocalPool(2), todo, warmup)
    dask_pool = timed(lambda: DaskPool(2), todo, warmup)
    trimmed = timed(lambda: DaskPool(2, unset_malloc_trim=False), todo, warmup)
    assert one["accuracy"] == two["accuracy"] == dask_pool["accuracy"], "results differ"

    rows = [("local pool, 1 worker", one), ("local pool, 2 workers", two),
            ("Dask LocalCluster, 2 workers", dask_pool),
            ("  same, MALLOC_TRIM_THRESHOLD_=65536", trimmed)]
    print(f"{'':37} {'start s':>7} {'1st eval s':>10} {'wall s':>7} {'busy s':>7} "
          f"{'s/eval':>7} {'others':>6}")
    for name, r in rows:
        print(f"{name:37} {r['ready']:>7.1f} {r['warm']:>10.1f} {r['seconds']:>7.2f} "
              f"{r['busy']:>7.2f} {r['busy'] / len(todo):>7.3f} {r['others']:>6.2f}")
    print("(start: until every worker is ready; 1st eval: one warm-up evaluation per worker, "
          "outside the set;\n wall: the set, first submission to last result; busy: the "
          "evaluations' own time, summed;\n others: cores used meanwhile by processes "
          "outside this benchmark; figures are only fair near 0)\n")
    if max(r["others"] for _, r in rows) > 0.2:
        print("WARNING: other processes used the CPU during the measurements; rerun on a "
              "quiet machine\n")
    print(f"1. speedup, 2 vs 1 local workers:            "
          f"{one['seconds'] / two['seconds']:.2f}x   (target >= 1.8x)")
    print(f"2. Dask LocalCluster vs local pool, wall:    "
          f"{dask_pool['seconds'] / two['seconds']:.2f}    (target <= 1.15)")
    print(f"3. Dask with vs without MALLOC_TRIM_THRESHOLD_: wall "
          f"{trimmed['seconds'] / dask_pool['seconds']:.2f}x, time per evaluation "
          f"{trimmed['busy'] / dask_pool['busy']:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        aging = aging_utilization(tmp, args.aging_evaluations, args.epochs)
        print(f"4. aging evolution, 2 local workers, from workers ready to the last result: "
              f"{aging['evaluations']} evaluations ({aging['trained']} trained) in "
              f"{aging['wall']:.1f} s, busy {aging['busy']:.1f} s: utilization "
              f"{aging['utilization']:.1%}   (target >= 90%; others {aging['others']:.2f})")
        (tmp / "bench_trivial.py").write_text(TRIVIAL)
        cwd = os.getcwd()
        os.chdir(tmp)  # workers import the trivial evaluator from here
        sys.path.insert(0, str(tmp))
        try:
            n = args.overhead_evaluations
            serial = overhead(tmp, SerialPool, n)
            local = overhead(tmp, lambda: LocalPool(2), n)
            dask_ms = overhead(tmp, lambda: DaskPool(2), n)
        finally:
            os.chdir(cwd)
        print(f"5. engine overhead per evaluation, trivial evaluator, random search of {n}: "
              f"serial {serial:.2f} ms, local pool (2 workers) {local:.2f} ms, "
              f"Dask LocalCluster (2 workers) {dask_ms:.2f} ms")


if __name__ == "__main__":
    main()
