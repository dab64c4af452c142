"""What does multi-fidelity save? Aging evolution training every candidate in full against the
same search with asynchronous successive halving (ASHA), at the same number of candidates, on
real training over the embedded digits (not collected by pytest).

    .venv/bin/python tests/bench/bench_multifidelity.py [--seeds 0 1 2] [--spaces binary cell]
        [--candidates N] [--epochs N] [--min-epochs N] [--eta 3] [--workers 2]
        [--no-same-epochs] [--no-surrogate]

Per space and seed, side by side: full fidelity, ASHA, ASHA again with the full-fidelity run's
epochs as its ``budget_epochs`` (so that it trains more candidates at the same cost) and ASHA
with the surrogate ranking proposals (``proposal.surrogate``, fitted on the pruned candidates
too): training epochs spent, training seconds (every step's ``train_seconds``) and wall
seconds, the best candidate's validation accuracy during the search and its test accuracy after
the final retraining (the same retraining for all).
Then, from the full-fidelity runs (every candidate's whole learning curve), the Spearman rank
correlation between the validation accuracy at the first rung and at the top: how far the
first rung's ranking can be trusted on this task.
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.curves import spearman  # noqa: E402
from evolution.journal import read_journal  # noqa: E402
from evolution.loop import run  # noqa: E402

SPACES = {
    # narrow models, so that the architecture matters on digits (with [16, 32] channels every
    # genome reaches 0.98-1.0 validation accuracy and the ranking is noise)
    "binary": {"encoding": "binary", "stages": [3, 4], "channels": [4, 8]},
    "cell": {"encoding": "cell", "blocks": 2, "cells_per_stack": 1, "filters": 4,
             "ops": ["identity", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3",
                     "max_pool_3x3", "dil_sep_conv_3x3"]},
}
PLANS = {"binary": {"candidates": 40, "epochs": 27, "min_epochs": 3},
         "cell": {"candidates": 24, "epochs": 9, "min_epochs": 1}}
"""Per space, what a command-line option left unset takes: cell models train about 5x slower
per epoch on the CPU, so their search is shorter."""


def config(space: str, seed: int, args: argparse.Namespace, rule: str, tmp: str,
           budget_epochs: int | None = None, surrogate: bool = False):
    """Aging evolution over ``args.candidates``; with ``budget_epochs``, as many candidates as
    that many epochs allow (ASHA at the full-fidelity run's cost); ``surrogate``: proposals
    ranked by the surrogate (which learns from the pruned candidates too)."""
    population = max(4, args.candidates // 4)
    cycles = args.candidates - population if budget_epochs is None else 100 * args.candidates
    return config_from_dict({
        "name": f"{space}-{rule}-{seed}-{budget_epochs}-{surrogate}", "runs_dir": tmp,
        "seed": seed, "proposal": {"surrogate": surrogate},
        "search": SPACES[space],
        "strategy": {"name": "aging", "population": population, "sample": 3,
                     "cycles": cycles},
        "data": {"dataset": "digits"},
        "evaluation": {"epochs": args.epochs, "batch_size": 64, "lr": 0.05},
        "fidelity": {"rule": rule, "min_epochs": args.min_epochs, "eta": args.eta,
                     "budget_epochs": budget_epochs},
        "pool": {"backend": "local", "workers": args.workers, "threads_per_worker": 1}})


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
    parser.add_argument("--candidates", type=int, help="default: per space, see PLANS")
    parser.add_argument("--epochs", type=int, help="the top rung; default: per space")
    parser.add_argument("--min-epochs", type=int, help="the first rung; default: per space")
    parser.add_argument("--eta", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--same-epochs", action=argparse.BooleanOptionalAction, default=True,
                        help="also run asha with the full run's epochs as budget_epochs")
    parser.add_argument("--surrogate", action=argparse.BooleanOptionalAction, default=True,
                        help="also run asha with proposal.surrogate")
    given = parser.parse_args()
    print(f"aging evolution against aging + asha (eta {given.eta}) on digits; "
          f"{given.workers} workers")
    print(f"{'space':<7}{'seed':>5}  {'run':<16}{'candidates':>11}{'epochs':>7}{'pruned':>7}"
          f"{'train s':>9}{'wall s':>8}{'best val':>9}{'test':>8}")
    for space in given.spaces:
        args = argparse.Namespace(**{**vars(given), **{k: v for k, v in PLANS[space].items()
                                                        if getattr(given, k) is None}})
        print(f"{space}: {args.candidates} candidates, rungs at {args.min_epochs} * "
              f"{args.eta}**k epochs up to {args.epochs}")
        rows: dict[str, list] = {"full": [], "asha": []}
        rows.update({"asha, same epochs": []} if args.same_epochs else {})
        rows.update({"asha + surrogate": []} if args.surrogate else {})
        with tempfile.TemporaryDirectory() as tmp:
            for seed in args.seeds:
                for name in rows:
                    rule = "none" if name == "full" else "asha"
                    budget = rows["full"][-1]["epochs"] if name == "asha, same epochs" else None
                    start = time.perf_counter()
                    summary = run(config(space, seed, args, rule, tmp, budget,
                                         surrogate=name == "asha + surrogate"))
                    m = {**measure(summary, args.min_epochs),
                         "wall": time.perf_counter() - start}
                    rows[name].append(m)
                    print(f"{space:<7}{seed:>5}  {name:<16}{m['candidates']:>11}{m['epochs']:>7}"
                          f"{m['pruned']:>7}{m['train_seconds']:>9.1f}{m['wall']:>8.1f}"
                          f"{m['val']:>9.4f}{m['test']:>8.4f}", flush=True)
        full, asha = rows["full"], rows["asha"]
        same, ranked = rows.get("asha, same epochs"), rows.get("asha + surrogate")

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
        if same:
            wins = sum(a["test"] >= f["test"] for a, f in zip(same, full))
            print(f"{space}: at the full runs' epochs, asha trained {mean(same, 'candidates'):.0f} "
                  f"candidates: test {mean(same, 'test'):.4f} vs {mean(full, 'test'):.4f} "
                  f"(equal or better on {wins} of {len(same)} seeds)")
        if ranked:
            wins = sum(a["test"] >= f["test"] for a, f in zip(ranked, full))
            print(f"{space}: asha + surrogate: epochs {mean(ranked, 'epochs'):.0f} "
                  f"({mean(full, 'epochs') / mean(ranked, 'epochs'):.2f}x fewer than full); "
                  f"best val {mean(ranked, 'val'):.4f}; test {mean(ranked, 'test'):.4f} vs "
                  f"{mean(full, 'test'):.4f} full, {mean(asha, 'test'):.4f} asha (equal or "
                  f"better than full on {wins} of {len(ranked)} seeds)")
        rhos = [spearman(r["firsts"], r["finals"]) for r in full]
        rhos = [math.nan if rho is None else rho for rho in rhos]
        print(f"{space}: Spearman of validation accuracy at epoch {args.min_epochs} vs epoch "
              f"{args.epochs} over each full run's candidates: "
              + ", ".join(f"{rho:.2f}" for rho in rhos)
              + f" (mean {statistics.mean(rhos):.2f})")


if __name__ == "__main__":
    main()
