"""Engine overhead per evaluation with the surrogate on and off, at 1,000 results (not collected
by pytest).

    .venv/bin/python tests/bench/bench_surrogate.py [--at 1000] [--window 200] [--repeat 3]

Aging evolution (P 20, S 5) on a choice space of 10 positions x 5 values (9.8 million
architectures: nothing runs out), a trivial evaluator that returns at once, the serial pool and
the real loop (canonical keys, cache, journal with an fsync per event). Printed side by side:
wall and CPU milliseconds of engine time per evaluation (CPU: this process only, so a busy
machine does not inflate it; wall includes the journal's fsync per event) over the ``window`` evaluations after ``at`` results,
and with the surrogate its refits and their time over the whole run.
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
from evolution.loop import Search  # noqa: E402


def trivial(task):
    values = task["genome"]["values"]
    value = sum((i % 3 + 1) * v for i, v in enumerate(values)) / 100.0
    return make_result(task["index"], values=[value], metrics={"fitness": value},
                       started=0.0, finished=0.0)


def measure(tmp: str, surrogate: bool, at: int, window: int) -> dict:
    config = config_from_dict({
        "seed": 1, "runs_dir": tmp,
        "search": {"encoding": "choice", "choices": [[0, 1, 2, 3, 4]] * 10},
        "strategy": {"name": "aging", "population": 20, "sample": 5,
                     "cycles": at + window - 20},
        "proposal": {"surrogate": surrogate},
        "evaluation": {"evaluator": "bench:trivial", "objective": "fitness"},
        "pool": {"backend": "serial"}})
    stamps: list[float] = []
    with RunDirectory.create(tmp, f"overhead-{surrogate}", config.to_dict(),
                             exact=False) as rd, SerialPool(evaluate=trivial) as pool:
        search = Search(config, rd, pool, config.model_space(),
                        progress=lambda e: stamps.append((time.perf_counter(), time.process_time()))
                        if e.get("event") == "result" else None)
        search.loop()
        model = search.strategy.proposer.surrogate
    assert search.counts["trained"] == at + window
    (wall0, cpu0), (wall1, cpu1) = stamps[at - 1], stamps[at + window - 1]
    return {"ms": 1000 * (wall1 - wall0) / window, "cpu_ms": 1000 * (cpu1 - cpu0) / window, "fits": model.fits if model else 0,
            "fit_s": model.fit_seconds if model else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at", type=int, default=1000)
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per setting, alternating; the median and range are printed")
    args = parser.parse_args()
    runs: dict[bool, list[dict]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for attempt in range(args.repeat):
            for surrogate in (False, True):
                runs[surrogate].append(measure(f"{tmp}/{attempt}", surrogate, args.at,
                                               args.window))
    print(f"engine time per evaluation, evaluations {args.at}-{args.at + args.window}, "
          f"median (min-max) of {args.repeat} runs each:")
    print(f"{'surrogate':<10} {'wall ms / eval':>20} {'CPU ms / eval':>20} "
          f"{'refits (whole run)':>19} {'fitting s (whole run)':>22}")
    for surrogate, rs in runs.items():
        def spread(key: str) -> str:
            values = sorted(r[key] for r in rs)
            return f"{statistics.median(values):.2f} ({values[0]:.2f}-{values[-1]:.2f})"
        print(f"{'on' if surrogate else 'off':<10} {spread('ms'):>20} {spread('cpu_ms'):>20} "
              f"{rs[0]['fits']:>19} {statistics.median(r['fit_s'] for r in rs):>22.2f}")


if __name__ == "__main__":
    main()
