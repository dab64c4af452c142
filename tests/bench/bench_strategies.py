"""Every strategy against Optuna's TPE, per trained architecture, on three landscapes computed
exhaustively (not collected by pytest).

    .venv/bin/python tests/bench/bench_strategies.py [--seeds 30] [--jobs 2]
        [--landscapes nk ...] [--budgets 25 50] [--strategies local+surrogate ...]
        [--tpe-cache FILE]

``--budgets`` reads fewer budgets (runs stop at the largest); ``--strategies`` runs only those
(TPE always, as the reference); ``--tpe-cache`` keeps TPE's figures in a JSON file between runs
(they depend only on landscape, seed and budgets).

Landscapes (each normalised to [0, 1], its optimum known by enumeration):
  additive  choice space 6 positions x 5 values (15,625 architectures, NAS-Bench-201's size):
            per-position terms + pairwise interaction terms.
  nk        an NK landscape, 10 positions x 3 values (59,049), K = 3: each position's term
            depends on its value and the next three (cyclically); rugged, with epistasis.
  gcnn      Genetic-CNN genomes, stages (4, 5) (16 bits, 65,536 bit strings): a random term per
            canonical stage graph and per pair of them (what the network is, not its bits).

Budgets are distinct architectures evaluated (trained): 25, 50, 100 and 200. Every evonas
strategy runs through the real search loop (canonical keys, cache, journal) with a serial pool
and a table lookup; each run goes to 200 trained architectures and is read at each budget (no
strategy's proposals depend on the budget, so this equals separate runs). Optuna's TPE
(``TPESampler(seed)``, defaults) proposes over the same categorical space; a repeated
architecture is answered from a cache and not counted. Printed per landscape and budget: mean
best, mean regret to the optimum, how often the optimum was found, and paired wins / ties /
losses against TPE (same seed index).
"""
from __future__ import annotations

import argparse
import itertools
import json
import logging
import random
import statistics
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.pool import SerialPool  # noqa: E402
from evolution.results import make_result  # noqa: E402
from evolution.loop import Search  # noqa: E402

BUDGETS = (25, 50, 100, 200)
VALUES = ["conv3x3", "conv1x1", "skip", "pool", "none"]
STAGES = (4, 5)


# ----------------------------------------------------------------------------- landscapes
def _normalised(raw: dict) -> dict:
    lo, hi = min(raw.values()), max(raw.values())
    return {k: (v - lo) / (hi - lo) for k, v in raw.items()}


def additive(seed: int = 2019) -> tuple[dict, list[list]]:
    rng = random.Random(seed)
    positions = 6
    unary = [[rng.gauss(0, 1) for _ in VALUES] for _ in range(positions)]
    pairs = {(i, j): [[rng.gauss(0, 0.7) for _ in VALUES] for _ in VALUES]
             for i in range(positions) for j in range(i + 1, positions)}
    raw = {}
    for x in itertools.product(range(len(VALUES)), repeat=positions):
        raw[tuple(VALUES[v] for v in x)] = (
            sum(unary[i][v] for i, v in enumerate(x))
            + sum(t[x[i]][x[j]] for (i, j), t in pairs.items()))
    return _normalised(raw), [VALUES] * positions


def nk(seed: int = 7, n: int = 10, a: int = 3, k: int = 3) -> tuple[dict, list[list]]:
    rng = random.Random(seed)
    tables = [[rng.random() for _ in range(a ** (k + 1))] for _ in range(n)]
    raw = {}
    for x in itertools.product(range(a), repeat=n):
        total = 0.0
        for i in range(n):
            index = 0
            for j in range(k + 1):
                index = index * a + x[(i + j) % n]
            total += tables[i][index]
        raw[x] = total / n
    return _normalised(raw), [list(range(a))] * n


def gcnn(seed: int = 11) -> tuple[dict, list[list]]:
    from genome.binary import _canonical_stage, bits_per_stage

    rng = random.Random(seed)
    forms = []
    for k in STAGES:
        forms.append({bits: _canonical_stage(k, bits)
                      for bits in itertools.product((0, 1), repeat=bits_per_stage(k))})
    term = [{f: rng.gauss(0, 1) for f in sorted(set(s.values()))} for s in forms]
    pair = {(f, g): rng.gauss(0, 0.7) for f in sorted(term[0]) for g in sorted(term[1])}
    raw = {}
    for b0, f0 in forms[0].items():
        for b1, f1 in forms[1].items():
            raw[b0 + b1] = term[0][f0] + term[1][f1] + pair[f0, f1]
    return _normalised(raw), [[0, 1]] * sum(bits_per_stage(k) for k in STAGES)


LANDSCAPES = {"additive": additive, "nk": nk, "gcnn": gcnn}


def search_space(landscape: str, choices: list[list]) -> dict:
    if landscape == "gcnn":
        return {"encoding": "binary", "stages": list(STAGES), "channels": [4, 4]}
    return {"encoding": "choice", "choices": choices}


def lookup(landscape: str, genome: dict) -> tuple:
    if landscape == "gcnn":
        from genome import BinaryGenome

        return tuple(b for stage in BinaryGenome.from_dict(genome).bits for b in stage)
    return tuple(genome["values"])


def canonical(landscape: str, x: tuple) -> str:
    """What the run loop's cache would call ``x`` (TPE's point): the canonical key."""
    if landscape != "gcnn":
        return json.dumps(x)
    from genome import BinaryGenome
    from genome.binary import bits_per_stage

    cut = bits_per_stage(STAGES[0])
    return BinaryGenome(STAGES, (x[:cut], x[cut:])).key()


# ----------------------------------------------------------------------------- strategies
AGING = {"name": "aging", "population": 20, "sample": 5, "cycles": 180}
STRATEGIES = {
    "random": ({"name": "random", "evaluations": 200}, {}),
    "aging (paper)": (AGING, {"repeats": True}),
    "aging": (AGING, {}),
    "aging+surrogate": (AGING, {"surrogate": True}),
    "local": ({"name": "local", "evaluations": 200}, {}),
    "local+surrogate": ({"name": "local", "evaluations": 200}, {"surrogate": True}),
    "genetic": ({"name": "genetic", "population": 20, "generations": 9}, {}),
}


def best_at_budgets(values: list[tuple[bool, float]]) -> list[float]:
    """Best value after each budget of trained architectures, from (trained, value) in order."""
    out, best, trained = [], -1.0, 0
    for new, value in values:
        best = max(best, value)
        trained += new
        while len(out) < len(BUDGETS) and trained >= BUDGETS[len(out)]:
            out.append(best)
    return out + [best] * (len(BUDGETS) - len(out))


def _budgeted(strategy: dict) -> dict:
    """``strategy`` cut to the largest budget read (its proposals do not depend on it)."""
    key = {"aging": "cycles", "genetic": "generations"}.get(strategy["name"], "evaluations")
    total = BUDGETS[-1]
    if strategy["name"] == "aging":
        total -= strategy["population"]
    elif strategy["name"] == "genetic":
        total = -(-total // strategy["population"]) - 1
    return {**strategy, key: max(1, total)}


def run_evonas(landscape: str, name: str, seed: int, tmp: str) -> list[float]:
    table, choices = TABLES[landscape]
    strategy, proposal = STRATEGIES[name]
    config = config_from_dict({
        "seed": seed, "runs_dir": tmp, "search": search_space(landscape, choices),
        "strategy": _budgeted(strategy), "proposal": {**proposal, "max_asks": 2000},
        "evaluation": {"evaluator": "bench:table", "objective": "fitness"},
        "pool": {"backend": "serial"}, "snapshot_every": 1000})
    seen: list[tuple[bool, float]] = []

    def evaluate(task):
        fitness = table[lookup(landscape, task["genome"])]
        return make_result(task["index"], values=[fitness], metrics={"fitness": fitness},
                           started=0.0, finished=0.0)

    with RunDirectory.create(tmp, f"{landscape}-{name.replace(' ', '')}-{seed}",
                             config.to_dict(), exact=False) as rd, \
            SerialPool(evaluate=evaluate) as pool:
        search = Search(config, rd, pool, config.model_space())
        real = search._apply

        def apply(event):
            real(event)
            seen.append((not event["cached"], event["values"][0]))
        search._apply = apply
        search.loop()
    return best_at_budgets(seen)


def run_tpe(landscape: str, seed: int) -> list[float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table, choices = TABLES[landscape]
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed))
    seen: list[tuple[bool, float]] = []
    done: set = set()
    for _ in range(2000):
        trial = study.ask()
        x = tuple(trial.suggest_categorical(f"x{i}", c) for i, c in enumerate(choices))
        key = canonical(landscape, x)
        value = table[x]
        seen.append((key not in done, value))
        done.add(key)
        study.tell(trial, value)
        if len(done) >= BUDGETS[-1]:
            break
    return best_at_budgets(seen)


def job(args: tuple[str, str, int, tuple[int, ...]]
        ) -> tuple[str, str, int, list[float], float]:
    landscape, name, seed, budgets = args
    global BUDGETS
    BUDGETS = budgets
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = (run_tpe(landscape, seed) if name == "TPE (optuna)"
               else run_evonas(landscape, name, seed, tmp))
    return landscape, name, seed, out, time.perf_counter() - started


TABLES: dict = {}


def _init() -> None:
    logging.disable(logging.WARNING)
    for name, make in LANDSCAPES.items():
        TABLES[name] = make()


def main() -> None:
    global BUDGETS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--landscapes", nargs="+", default=list(LANDSCAPES),
                        choices=list(LANDSCAPES))
    parser.add_argument("--budgets", nargs="+", type=int, default=list(BUDGETS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGIES),
                        choices=list(STRATEGIES))
    parser.add_argument("--tpe-cache", type=Path, default=None)
    args = parser.parse_args()
    BUDGETS = tuple(sorted(args.budgets))
    names = list(args.strategies) + ["TPE (optuna)"]
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    cache = (json.loads(args.tpe_cache.read_text())
             if args.tpe_cache and args.tpe_cache.exists() else {})

    def cached(land: str, name: str, seed: int) -> str:
        return json.dumps([land, seed, BUDGETS]) if name == "TPE (optuna)" else ""

    jobs = [(land, name, seed, BUDGETS) for land in args.landscapes for name in names
            for seed in seeds if cached(land, name, seed) not in cache]
    started = time.perf_counter()
    with Pool(args.jobs, initializer=_init) as pool:
        done = pool.map(job, jobs, chunksize=1)
    done += [(land, name, seed, cache[cached(land, name, seed)], 0.0)
             for land in args.landscapes for name in names for seed in seeds
             if cached(land, name, seed) in cache]
    results = {(land, name, seed): out for land, name, seed, out, _ in done}
    if args.tpe_cache:
        cache.update({cached(land, name, seed): out for (land, name, seed), out in results.items()
                      if name == "TPE (optuna)"})
        args.tpe_cache.write_text(json.dumps(cache))
    seconds = {}
    for land, name, _, _, s in done:
        seconds[name] = seconds.get(name, 0.0) + s
    _init()
    print(f"{args.seeds} seeds, budgets in distinct architectures trained; "
          f"{time.perf_counter() - started:.0f} s on {args.jobs} processes\n")
    for land in args.landscapes:
        table, _ = TABLES[land]
        optimum = max(table.values())
        print(f"== {land}: {len(table):,} architectures")
        print(f"{'strategy':<17}" + "".join(
            f" | {'best':>6} {'regret':>7} {'hits':>4} {'W/T/L vs TPE':>12}" for _ in BUDGETS))
        print(f"{'budget':<17}" + "".join(f" | {b:>33}" for b in BUDGETS))
        for name in names:
            row = f"{name:<17}"
            for i, _ in enumerate(BUDGETS):
                best = [results[land, name, s][i] for s in seeds]
                tpe = [results[land, "TPE (optuna)", s][i] for s in seeds]
                wins = sum(b > t for b, t in zip(best, tpe))
                ties = sum(b == t for b, t in zip(best, tpe))
                hits = sum(b == optimum for b in best)
                wtl = f"{wins}/{ties}/{args.seeds - wins - ties}" if name != "TPE (optuna)" \
                    else "-"
                row += (f" | {statistics.mean(best):>6.4f} "
                        f"{statistics.mean(optimum - b for b in best):>7.4f} {hits:>4} "
                        f"{wtl:>12}")
            print(row)
        print()
    print("seconds per run: " + ", ".join(
        f"{n} {seconds[n] / (args.seeds * len(args.landscapes)):.2f}" for n in names))


if __name__ == "__main__":
    main()
