"""What does multi-fidelity save? Aging evolution training every candidate in full against the
same search with asynchronous successive halving (ASHA), at the same number of candidates, on
real training over the embedded digits (not collected by pytest).

    .venv/bin/python tests/bench/bench_multifidelity.py [--seeds 0 1 2] [--spaces binary cell]
        [--candidates 40] [--epochs 9] [--min-epochs 1] [--eta 3] [--workers 2]

Per space and seed, side by side: training epochs spent, training seconds (every step's
``train_seconds``) and wall seconds, the best candidate's validation accuracy during the
search and its test accuracy after the final retraining (the same retraining for both).
Then, from the full-fidelity runs (every candidate's whole learning curve), the Spearman rank
correlation between the validation accuracy at the first rung and at the top: how far the
first rung's ranking can be trusted on this task.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import read_journal  # noqa: E402
from evolution.loop import run  # noqa: E402

SPACES = {
    "binary": {"encoding": "binary", "stages": [3, 4], "channels": [16, 32]},
    "cell": {"encoding": "cell", "blocks": 3, "cells_per_stack": 1, "filters": 8,
             "ops": ["identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3",
                     "max_pool_3x3", "dil_sep_conv_3x3"]},
}


def config(space: str, seed: int, args: argparse.Namespace, rule: str, tmp: str):
    population = max(4, args.candidates // 4)
    return config_from_dict({
        "name": f"{space}-{rule}-{seed}", "runs_dir": tmp, "seed": seed,
        "search": SPACES[space],
        "strategy": {"name": "aging", "population": population, "sample": 3,
                     "cycles": args.candidates - population},
        "data": {"dataset": "digits"},
        "evaluation": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05},
        "fidelity": {"rule": rule, "min_epochs": args.min_epochs, "eta": args.eta},
        "pool": {"backend": "local", "workers": args.workers, "threads_per_worker": 1}})


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(x: list[float]) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=float)
        values = np.asarray(x)
        for v in np.unique(values):  # ties share their mean rank
            r[values == v] = r[values == v].mean()
        return r
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def measure(summary, first_rung: int) -> dict:
    events = list(read_journal(summary.run_dir))
    steps = [e for e in events if e["event"] == "rung"
             or (e["event"] == "result" and not e["cached"])]
    firsts, finals = [], []
    for e in events:
        if e["event"] == "result" and not e["cached"] and e["status"] == "ok":
            curve = {p["epoch"]: p["val_accuracy"] for p in e.get("curve") or []}
            if first_rung in curve:
                firsts.append(curve[first_rung])
                finals.append(e["metrics"]["val_accuracy"])
    return {"epochs": summary.epochs, "candidates": summary.trained,
            "pruned": summary.pruned,
            "train_seconds": sum(e["metrics"].get("train_seconds", 0.0) for e in steps),
            "val": summary.best["metrics"]["val_accuracy"],
            "test": summary.final.get("test_accuracy"),
            "firsts": firsts, "finals": finals}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--spaces", nargs="+", default=list(SPACES), choices=list(SPACES))
    parser.add_argument("--candidates", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=9)
    parser.add_argument("--min-epochs", type=int, default=1)
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"aging evolution, {args.candidates} candidates, top rung {args.epochs} epochs; "
          f"asha: min_epochs {args.min_epochs}, eta {args.eta}; {args.workers} workers")
    print(f"{'space':<7}{'seed':>5}  {'rule':<5}{'epochs':>7}{'pruned':>7}{'train s':>9}"
          f"{'wall s':>8}{'best val':>9}{'test':>8}")
    for space in args.spaces:
        rows = {"none": [], "asha": []}
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                for rule in rows:
                    start = time.perf_counter()
                    summary = run(config(space, seed, args, rule, tmp))
                    m = {**measure(summary, args.min_epochs),
                         "wall": time.perf_counter() - start}
                    rows[rule].append(m)
                    print(f"{space:<7}{seed:>5}  {rule:<5}{m['epochs']:>7}{m['pruned']:>7}"
                          f"{m['train_seconds']:>9.1f}{m['wall']:>8.1f}{m['val']:>9.4f}"
                          f"{m['test']:>8.4f}", flush=True)
        full, asha = rows["none"], rows["asha"]

        def mean(rs, key):
            return statistics.mean(r[key] for r in rs)
        ratio = mean(full, "epochs") / mean(asha, "epochs")
        wins = sum(a["test"] >= f["test"] for a, f in zip(asha, full))
        print(f"{space}: epochs {mean(full, 'epochs'):.0f} full vs {mean(asha, 'epochs'):.0f} "
              f"asha ({ratio:.2f}x fewer); train seconds {mean(full, 'train_seconds'):.1f} vs "
              f"{mean(asha, 'train_seconds'):.1f} "
              f"({mean(full, 'train_seconds') / mean(asha, 'train_seconds'):.2f}x); "
              f"best val {mean(full, 'val'):.4f} vs {mean(asha, 'val'):.4f}; test "
              f"{mean(full, 'test'):.4f} vs {mean(asha, 'test'):.4f} (asha equal or better "
              f"on {wins} of {len(asha)} seeds)")
        rhos = [spearman(r["firsts"], r["finals"]) for r in full]
        print(f"{space}: Spearman of validation accuracy at epoch {args.min_epochs} vs epoch "
              f"{args.epochs} over each full run's candidates: "
              + ", ".join(f"{rho:.2f}" for rho in rhos)
              + f" (mean {statistics.mean(rhos):.2f})")


if __name__ == "__main__":
    main()
