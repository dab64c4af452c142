"""The AmoebaNet digits search against random cells of the same space (not collected by pytest).

    .venv/bin/python tests/bench/bench_amoeba_vs_random.py [--random 10]

Runs runs/digits-amoeba.yaml (aging evolution, 2 workers), then trains --random genomes drawn
uniformly from the same space under the same evaluation settings (the random strategy), and
prints the search's best validation accuracy beside the random genomes' median, min and max,
with wall times.
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

from evolution import load_config, run  # noqa: E402
from evolution.journal import read_journal  # noqa: E402


def fitnesses(run_dir: Path) -> list[float]:
    return [e["values"][0] for e in read_journal(run_dir)
            if e["event"] == "result" and e["status"] == "ok"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=10, help="random genomes to train")
    args = parser.parse_args()
    config = load_config(REPO / "runs" / "digits-amoeba.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        config = config.replace(runs_dir=tmp)
        start = time.perf_counter()
        search = run(config, name="aging")
        search_seconds = time.perf_counter() - start
        baseline = config.replace(strategy={"name": "random", "evaluations": args.random},
                                  seed=config.seed + 1)
        start = time.perf_counter()
        rand = run(baseline, name="random")
        random_seconds = time.perf_counter() - start
        found = fitnesses(search.run_dir)
        drawn = fitnesses(rand.run_dir)
    print(f"\nsearch: {config.strategy.name}, {search.evaluations} evaluations, "
          f"{search_seconds:.0f} s on {config.pool.workers} workers; "
          f"random: {len(drawn)} genomes, {random_seconds:.0f} s")
    print(f"{'':<28} {'val accuracy':>12}")
    print(f"{'search best':<28} {search.best_values[0]:>12.4f}")
    print(f"{'search, median of all':<28} {statistics.median(found):>12.4f}")
    print(f"{'random genomes, median':<28} {statistics.median(drawn):>12.4f}")
    print(f"{'random genomes, min / max':<28} {min(drawn):>6.4f} / {max(drawn):.4f}")
    print(f"search best beats the random median by "
          f"{search.best_values[0] - statistics.median(drawn):+.4f}; its test accuracy after "
          f"retraining: {search.final['test_accuracy']:.4f}")


if __name__ == "__main__":
    main()
