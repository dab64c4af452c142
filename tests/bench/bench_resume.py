"""Resume and snapshot costs, printed side by side (not collected by pytest).

    .venv/bin/python tests/bench/bench_resume.py [--evaluations 5000]

1. Time to resume a run whose journal holds about 10,000 entries (5,000 asks and results of
   aging evolution over Genetic-CNN genomes): from its snapshot plus the journal after it, and
   from the whole journal (snapshot removed).
2. Time to write one snapshot of aging evolution with a population of 100 cell genomes (B=5).
Both are to be read against one evaluation, which takes seconds to hours.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.pool import SerialPool  # noqa: E402
from evolution.results import make_result  # noqa: E402
from evolution.loop import Search, _rebuild  # noqa: E402


def trivial(task):
    key = str(task["genome"])
    fitness = (sum(map(ord, key)) % 1000) / 1000
    return make_result(task["index"], values=[fitness], metrics={"fitness": fitness},
                       started=0.0, finished=0.0)


def config(tmp: Path, search: dict, population: int, cycles: int, every: int = 10):
    return config_from_dict({
        "runs_dir": str(tmp), "search": search, "snapshot_every": every,
        "strategy": {"name": "aging", "population": population, "sample": 10, "cycles": cycles},
        "evaluation": {"evaluator": "bench:trivial", "objective": "fitness"},
        "pool": {"backend": "serial"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        binary = {"encoding": "binary", "stages": [5, 5, 5], "channels": [8, 8, 8]}
        cfg = config(tmp, binary, 100, args.evaluations - 100, every=50)
        start = time.perf_counter()
        with RunDirectory.create(tmp, "long", cfg.to_dict(), exact=True) as rd, \
                SerialPool(evaluate=trivial) as pool:
            Search(cfg, rd, pool, cfg.model_space()).loop()
        write_seconds = time.perf_counter() - start

        def resume_seconds() -> tuple[float, int]:
            start = time.perf_counter()
            opened, events = RunDirectory.open(tmp / "long")
            with opened, SerialPool(evaluate=trivial) as pool:
                search = _rebuild(cfg, opened, pool, cfg.model_space(), lambda e: None, events)
            assert search.counts["evaluations"] == args.evaluations and search.strategy.done
            return time.perf_counter() - start, len(events)

        with_snapshot, lines = resume_seconds()
        (tmp / "long" / "state.json").unlink()
        full_replay, _ = resume_seconds()

        cell = {"encoding": "cell", "blocks": 5}
        cfg = config(tmp, cell, 100, 0)
        with RunDirectory.create(tmp, "cells", cfg.to_dict(), exact=True) as rd, \
                SerialPool(evaluate=trivial) as pool:
            search = Search(cfg, rd, pool, cfg.model_space())
            search.loop()
            assert len(search.strategy.population) == 100
            times = []
            for _ in range(20):
                start = time.perf_counter()
                search.snapshot()
                times.append(time.perf_counter() - start)
            size = (rd.path / "state.json").stat().st_size
    print(f"journal: {lines:,} entries ({args.evaluations:,} evaluations), written by the "
          f"search loop in {write_seconds:.1f} s (one fsync per entry)\n")
    print(f"{'measure':<52} {'seconds':>9}")
    print(f"{'resume: snapshot + journal after it':<52} {with_snapshot:>9.3f}")
    print(f"{'resume: whole journal replayed (no snapshot)':<52} {full_replay:>9.3f}")
    print(f"{'snapshot write, 100 cell genomes (median of 20)':<52} "
          f"{statistics.median(times):>9.4f}   ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
