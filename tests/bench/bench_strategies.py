"""Aging evolution vs the genetic algorithm vs random search at equal budgets, on a
deterministic landscape computed exhaustively (not collected by pytest).

    .venv/bin/python tests/bench/bench_strategies.py [--seeds 25] [--budget 200]

The landscape is a choice space of 6 positions x 5 values (15,625 architectures, the size of
NAS-Bench-201) with fitness = sum of per-position terms + pairwise interaction terms, drawn once
from a fixed seed and normalised to [0, 1]. Every strategy runs through the real search loop
(canonical keys, cache, journal) with a serial pool and a table-lookup evaluator. Printed side
by side: mean best fitness, mean regret to the optimum, how often the optimum was found, and
the mean number of distinct architectures evaluated.
"""
from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.pool import SerialPool  # noqa: E402
from evolution.results import make_result  # noqa: E402
from evolution.loop import Search  # noqa: E402

POSITIONS, VALUES = 6, ["conv3x3", "conv1x1", "skip", "pool", "none"]


def landscape(seed: int = 2019) -> dict[tuple, float]:
    rng = random.Random(seed)
    unary = [[rng.gauss(0, 1) for _ in VALUES] for _ in range(POSITIONS)]
    pairs = {(i, j): [[rng.gauss(0, 0.7) for _ in VALUES] for _ in VALUES]
             for i in range(POSITIONS) for j in range(i + 1, POSITIONS)}
    raw = {}
    for x in itertools.product(range(len(VALUES)), repeat=POSITIONS):
        raw[tuple(VALUES[v] for v in x)] = (
            sum(unary[i][v] for i, v in enumerate(x))
            + sum(t[x[i]][x[j]] for (i, j), t in pairs.items()))
    lo, hi = min(raw.values()), max(raw.values())
    return {k: (v - lo) / (hi - lo) for k, v in raw.items()}


def strategies(budget: int) -> dict[str, dict]:
    return {
        "aging": {"name": "aging", "population": 20, "sample": 5, "cycles": budget - 20},
        "genetic": {"name": "genetic", "population": 20, "generations": budget // 20 - 1,
                    "p_crossover": 0.5, "q_crossover": 0.5, "p_mutation": 0.8,
                    "q_mutation": 0.2},
        "random": {"name": "random", "evaluations": budget},
    }


def one_run(table, tmp: Path, strategy: dict, seed: int) -> tuple[float, int]:
    config = config_from_dict({
        "seed": seed, "runs_dir": str(tmp),
        "search": {"encoding": "choice", "choices": [VALUES] * POSITIONS},
        "strategy": strategy,
        "evaluation": {"evaluator": "bench:table", "objective": "fitness"},
        "pool": {"backend": "serial"}})

    def evaluate(task):
        fitness = table[tuple(task["genome"]["values"])]
        return make_result(task["index"], values=[fitness], metrics={"fitness": fitness},
                           started=0.0, finished=0.0)

    with RunDirectory.create(tmp, f"{strategy['name']}-{seed}", config.to_dict(),
                             exact=False) as rd, SerialPool(evaluate=evaluate) as pool:
        search = Search(config, rd, pool, config.model_space())
        search.loop()
    assert search.counts["evaluations"] == config.strategy.budget
    return search.best["values"][0], search.counts["trained"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--budget", type=int, default=200)
    args = parser.parse_args()
    table = landscape()
    optimum = max(table.values())
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, strategy in strategies(args.budget).items():
            runs = [one_run(table, Path(tmp), strategy, seed) for seed in range(args.seeds)]
            best = [b for b, _ in runs]
            rows[name] = (statistics.mean(best), statistics.stdev(best),
                          statistics.mean(optimum - b for b in best),
                          sum(b == optimum for b in best) / len(best),
                          statistics.mean(t for _, t in runs))
    print(f"landscape: {len(table):,} architectures ({POSITIONS} positions x {len(VALUES)} "
          f"values), budget {args.budget} evaluations, {args.seeds} seeds\n")
    print(f"{'strategy':<10} {'mean best':>10} {'std':>7} {'mean regret':>12} "
          f"{'found optimum':>14} {'distinct evals':>15}")
    for name, (mean, std, regret, found, distinct) in rows.items():
        print(f"{name:<10} {mean:>10.4f} {std:>7.4f} {regret:>12.4f} {found:>13.0%} "
              f"{distinct:>15.1f}")


if __name__ == "__main__":
    main()
