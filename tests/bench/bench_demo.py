"""Does the default demo show the search working? `make run`'s search (runs/digits-pareto.yaml:
NSGA-II, validation accuracy against parameters on the embedded digits set) over several seeds,
its final front's hypervolume against the random initial population's (not collected by
pytest).

    .venv/bin/python tests/bench/bench_demo.py [--seeds 0 1 2] [--config runs/digits-pareto.yaml]

Both hypervolumes are measured from the config's reference point, so seeds compare on one
scale. Printed per seed: the initial population's front (generation 0) and hypervolume, the
final front and hypervolume, the gain, and which evaluation found each final front member.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.loop import run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", default=str(REPO / "runs" / "digits-pareto.yaml"))
    args = parser.parse_args()
    data = yaml.safe_load(Path(args.config).read_text())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            start = time.perf_counter()
            summary = run(config_from_dict({**data, "seed": seed, "runs_dir": tmp,
                                            "name": f"seed{seed}"}))
            rows.append((seed, summary, time.perf_counter() - start))
    reference = rows[0][1].reference
    print(f"{Path(args.config).name}: reference point {reference}")
    print(f"{'seed':>4} {'initial HV':>11} {'final HV':>10} {'gain':>8} {'front':>6} "
          f"{'seconds':>8}  front members (evaluation: values)")
    gains = []
    for seed, s, seconds in rows:
        gain = s.hypervolume / s.initial_hypervolume - 1
        gains.append(gain)
        members = ", ".join(f"{m['index']}: " + "/".join(f"{v:.4g}" for v in m["values"])
                            for m in s.front)
        print(f"{seed:>4} {s.initial_hypervolume:>11.5g} {s.hypervolume:>10.5g} {gain:>+8.1%} "
              f"{len(s.front):>6} {seconds:>8.1f}  {members}")
    print(f"hypervolume gain over the initial population: mean {statistics.mean(gains):+.1%}, "
          f"smallest {min(gains):+.1%} over {len(gains)} seeds")


if __name__ == "__main__":
    main()
