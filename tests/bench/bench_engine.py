"""Engine benchmarks, printed side by side in one run (not collected by pytest).

    .venv/bin/python tests/bench/bench_engine.py [--quick]

1. Engine overhead per evaluation: the full loop (strategy, canonical keys, cache, journal with
   an fsync per event) around a trivial evaluator that returns at once.
2. The default digits search (runs/digits-genetic.yaml) with 1 worker vs 2 workers: wall time
   and speedup.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution import load_config, run  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.pool import SerialPool  # noqa: E402
from evolution.results import make_result  # noqa: E402
from evolution.loop import Search  # noqa: E402


def trivial(task):
    bits = task["genome"]["code"]
    value = bits.count("1") / len(bits)
    return make_result(task["index"], values=[value], started=0.0, finished=0.0)


def engine_overhead(tmp: Path, population: int, generations: int) -> dict:
    config = load_config(REPO / "runs" / "digits-genetic.yaml").replace(**{
        "search.stages": [5, 5, 5], "search.channels": [8, 8, 8],
        "strategy.population": population, "strategy.generations": generations})
    with RunDirectory.create(tmp, "overhead", config.to_dict(), exact=False) as rd, \
            SerialPool(evaluate=trivial) as pool:
        search = Search(config, rd, pool, config.model_space())
        start = time.perf_counter()
        search.loop()
        seconds = time.perf_counter() - start
    n = search.counts["evaluations"]
    return {"evaluations": n, "trained": search.counts["trained"], "seconds": seconds,
            "ms_per_evaluation": 1000 * seconds / n}


def digits(tmp: Path, workers: int, generations: int | None) -> dict:
    config = load_config(REPO / "runs" / "digits-genetic.yaml").replace(runs_dir=str(tmp))
    if generations is not None:
        config = config.replace(**{"strategy.generations": generations})
    start = time.perf_counter()
    summary = run(config, name=f"digits-{workers}w", workers=workers)
    return {"seconds": time.perf_counter() - start, "trained": summary.trained,
            "evaluations": summary.evaluations, "test": summary.final.get("test_accuracy")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller budgets")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        over = engine_overhead(tmp, 50, 3 if args.quick else 19)
        print(f"\n1. engine overhead, trivial evaluator, serial pool\n"
              f"   {over['evaluations']} evaluations ({over['trained']} distinct) in "
              f"{over['seconds']:.2f} s = {over['ms_per_evaluation']:.2f} ms per evaluation")
        gens = 1 if args.quick else None
        one = digits(tmp, 1, gens)
        two = digits(tmp, 2, gens)
        print("\n2. digits search (runs/digits-genetic.yaml)\n"
              f"   {'workers':>8} {'wall s':>8} {'trained':>8} {'evals':>6} {'test acc':>9}")
        for w, r in ((1, one), (2, two)):
            print(f"   {w:>8} {r['seconds']:>8.1f} {r['trained']:>8} {r['evaluations']:>6} "
                  f"{r['test']:>9.4f}")
        print(f"   speedup 2 vs 1 workers: {one['seconds'] / two['seconds']:.2f}x")


if __name__ == "__main__":
    main()
