"""Multi-objective search: evonas' NSGA-II, NSGA-III, aging evolution with Pareto tournaments
and random search against Optuna's NSGA-II, by hypervolume at equal budgets (not collected by
pytest; needs the ``bench`` extra: ``pip install -e .[bench]``).

    .venv/bin/python tests/bench/bench_multiobjective.py [--seeds 20] [--quick]

Every method gets the same categorical space, the same deterministic landscape and the same
number of evaluations; evonas' strategies run through the real search loop (``Search`` with a
serial pool: canonical keys, cache, journal) and Optuna's sampler through an in-memory study.
An evaluation is every proposal, cache hits included (evonas' budget unit, and Optuna's trial),
so evonas is charged for the duplicates it proposes. For each seed the hypervolume of the first
50, 100 and 200 evaluations is measured with :func:`evolution.pareto.hypervolume` against a
fixed reference point per landscape (printed), and shown as a fraction of the box between that
point and the landscape's ideal corner (best conceivable value of each objective), so 1.0 is
out of reach. Landscapes (the values are synthetic but computed from the architecture):

* ``nb201``: NAS-Bench-201's cell, 6 edges x 5 ops (15,625 architectures). Maximise an
  accuracy-like value (10% when no path of non-``none`` edges joins input and output, else
  0.80-0.94 from capacity plus random per-edge and pairwise terms), minimise the parameters of
  the 15 searched cells (C = 16, 32, 64, five cells each).
* ``gcnn``: Genetic-CNN binary strings, stages (3, 4, 5) with 16, 32, 64 channels (19 bits).
  Maximise an accuracy-like value of the decoded stage graphs (depth and skip connections, with
  diminishing returns, plus a small per-architecture term), minimise the network's exact
  parameter count (GeneticNet on 3-channel input, 10 classes). Both depend only on the decoded
  network, so equivalent bit strings score alike (Optuna sees 19 independent bits).
* ``mobile`` (three objectives): an MBConv space, 5 blocks x (kernel 3/5/7, expansion 3/4/6,
  depth 2/3/4) = 15 positions (14.3 million architectures). Maximise an accuracy-like value
  (log multiply-adds plus random per-block terms), minimise parameters and a latency model
  (per-layer overhead, pointwise and memory-bound depthwise work at each block's resolution):
  latency is spent early, parameters late.

Printed: mean hypervolume (standard deviation) per method, budget and landscape; for evonas'
strategies also how many seeds beat the better of the two Optuna settings (paired by seed), and
a ``*`` where the mean is not ahead of it. Optuna runs with its defaults (population 50) and
with the population of evonas' NSGA-II.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import math
import random
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Sequence

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import networkx as nx  # noqa: E402

from evolution.config import config_from_dict  # noqa: E402
from evolution.journal import RunDirectory  # noqa: E402
from evolution.loop import Search  # noqa: E402
from evolution.pareto import hypervolume  # noqa: E402
from evolution.pool import SerialPool  # noqa: E402
from evolution.results import make_result  # noqa: E402
from evolution.strategies.nsga2 import NSGA2Config  # noqa: E402
from evolution.strategies.pareto_aging import ParetoAgingConfig  # noqa: E402
from genome import BinaryGenome, genome_from_dict
from genome.choice import ChoiceGenome  # noqa: E402

BUDGETS = (50, 100, 200)
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None
"""Run directories in memory where there is a tmpfs: the journal's fsyncs cost nothing there."""


# ------------------------------------------------------------------------------- landscapes
@dataclass(frozen=True)
class Landscape:
    name: str
    title: str
    search: dict[str, Any]            # evonas' search section
    choices: list[list[Any]]          # Optuna's categorical positions
    to_genome: Callable[[Sequence[Any]], Any]   # Optuna's values -> genome
    score: Callable[[Any], tuple[float, ...]]   # genome -> objective values
    objectives: list[dict[str, str]]
    reference: tuple[float, ...]
    ideal: tuple[float, ...]

    @property
    def weights(self) -> tuple[float, ...]:
        return tuple(1.0 if o["direction"] == "max" else -1.0 for o in self.objectives)

    @property
    def box(self) -> float:
        return math.prod(abs(i - r) for i, r in zip(self.ideal, self.reference))


def noise(key: str, scale: float) -> float:
    """A fixed per-architecture term (a string seed is hashed stably by ``random``)."""
    return random.Random(key).gauss(0.0, scale)


# NAS-Bench-201 ---------------------------------------------------------------------------
NB_OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
NB_EDGES = [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]
NB_WIDTHS = (16, 32, 64)


def nb201(seed: int = 201) -> Landscape:
    rng = random.Random(seed)
    unary = [[rng.gauss(0, 1) for _ in NB_OPS] for _ in NB_EDGES]
    pairs = {(i, j): [[rng.gauss(0, 0.7) for _ in NB_OPS] for _ in NB_OPS]
             for i in range(6) for j in range(i + 1, 6)}
    rugged = {}
    for x in itertools.product(range(len(NB_OPS)), repeat=6):
        rugged[x] = (sum(unary[i][v] for i, v in enumerate(x))
                     + sum(t[x[i]][x[j]] for (i, j), t in pairs.items()))
    lo, hi = min(rugged.values()), max(rugged.values())
    op_params = {"nor_conv_3x3": lambda c: 9 * c * c + 2 * c,
                 "nor_conv_1x1": lambda c: c * c + 2 * c}
    table = {}
    for x, r in rugged.items():
        ops = [NB_OPS[v] for v in x]
        params = sum(5 * op_params[op](c) for op in ops if op in op_params for c in NB_WIDTHS)
        reach = {0}
        for (u, v), op in zip(NB_EDGES, ops):  # edges listed in topological order
            if op != "none" and u in reach:
                reach.add(v)
        if 3 not in reach:
            accuracy = 0.10
        else:
            n3, n1 = ops.count("nor_conv_3x3"), ops.count("nor_conv_1x1")
            capacity = math.log1p(9 * n3 + n1) / math.log1p(54)
            accuracy = 0.80 + 0.14 * (0.55 * capacity + 0.45 * (r - lo) / (hi - lo))
        table[tuple(ops)] = (accuracy, float(params))
    most = max(p for _, p in table.values())
    return Landscape(
        "nb201", "NAS-Bench-201 cell, 6 edges x 5 ops (15,625 architectures)",
        {"encoding": "choice", "choices": [NB_OPS] * 6}, [NB_OPS] * 6, ChoiceGenome,
        lambda g: table[tuple(g.values)],
        [{"metric": "accuracy", "direction": "max"}, {"metric": "params", "direction": "min"}],
        reference=(0.80, most), ideal=(0.94, 0.0))


# Genetic-CNN ----------------------------------------------------------------------------
GC_STAGES, GC_WIDTHS, GC_IN, GC_CLASSES = (3, 4, 5), (16, 32, 64), 3, 10


@lru_cache(maxsize=None)
def gcnn_stage(genome_code: str, s: int) -> tuple[int, int, int]:
    """(kept nodes, longest input-to-output path in edges, extra edges beyond a chain)."""
    graph = BinaryGenome.from_string(genome_code).stage_graph(s)
    kept = sum(1 for _, role in graph.nodes(data="role") if role == "node")
    depth = nx.dag_longest_path_length(graph)
    inner = sum(1 for u, v in graph.edges if graph.nodes[u]["role"] == graph.nodes[v]["role"]
                == "node")
    return kept, depth, max(0, inner - max(kept - 1, 0))


def gcnn_params(kept: Sequence[int]) -> float:
    """GeneticNet's parameters: per stage the input node's conv-BN from the previous width,
    one conv-BN per kept node and the output node's; the linear head."""
    total, c_in = 0, GC_IN
    for c, n in zip(GC_WIDTHS, kept):
        total += 9 * c_in * c + 2 * c + (n + 1) * (9 * c * c + 2 * c)
        c_in = c
    return float(total + c_in * GC_CLASSES + GC_CLASSES)


def gcnn_score(genome: BinaryGenome) -> tuple[float, float]:
    key = genome.key()
    stages = [gcnn_stage(key, s) for s in range(len(GC_STAGES))]
    work = sum(w * (depth - 1 + 0.5 * min(extra, 3))
               for w, (_, depth, extra) in zip((1.0, 0.8, 0.6), stages))
    accuracy = 0.60 + 0.30 * (1 - math.exp(-work / 3)) + noise(key, 0.004)
    return accuracy, gcnn_params([kept for kept, _, _ in stages])


def gcnn() -> Landscape:
    def to_genome(bits):
        out, start = [], 0
        for k in GC_STAGES:
            n = k * (k - 1) // 2
            out.append(tuple(bits[start:start + n]))
            start += n
        return BinaryGenome(GC_STAGES, tuple(out))
    n_bits = sum(k * (k - 1) // 2 for k in GC_STAGES)
    return Landscape(
        "gcnn", f"Genetic-CNN, stages {GC_STAGES}, widths {GC_WIDTHS} ({n_bits} bits)",
        {"encoding": "binary", "stages": list(GC_STAGES), "channels": list(GC_WIDTHS)},
        [[0, 1]] * n_bits, to_genome, gcnn_score,
        [{"metric": "accuracy", "direction": "max"}, {"metric": "params", "direction": "min"}],
        reference=(0.60, gcnn_params(GC_STAGES)), ideal=(0.90, gcnn_params((0, 0, 0))))


# MBConv space, three objectives -----------------------------------------------------------
MB_KERNELS, MB_EXPANDS, MB_DEPTHS = [3, 5, 7], [3, 4, 6], [2, 3, 4]
MB_WIDTHS, MB_RES, MB_STEM = (24, 40, 80, 112, 160), (56, 28, 14, 14, 7), 16


def mb_cost(values: Sequence[int]) -> tuple[float, float, float]:
    """(parameters, multiply-adds, latency in ms) of the MBConv blocks: expansion 1x1,
    depthwise k x k, projection 1x1 per layer; latency 0.02 ms per layer plus pointwise work at
    0.4 GMAC/ms and depthwise at 0.05 GMAC/ms (memory bound)."""
    params = macs = latency = 0.0
    c_in = MB_STEM
    for b, (c, r) in enumerate(zip(MB_WIDTHS, MB_RES)):
        k, e, d = values[3 * b:3 * b + 3]
        for _ in range(d):
            mid = e * c_in
            pointwise, depthwise = c_in * mid + mid * c, k * k * mid
            params += pointwise + depthwise
            macs += r * r * (pointwise + depthwise)
            latency += 0.02 + r * r * pointwise / 4e8 + r * r * depthwise / 5e7
            c_in = c
    return params, macs, latency


def mobile(seed: int = 3) -> Landscape:
    rng = random.Random(seed)
    choices = [MB_KERNELS, MB_EXPANDS, MB_DEPTHS] * len(MB_WIDTHS)
    unary = [[rng.gauss(0, 1) for _ in values] for values in choices]
    pair = [[[rng.gauss(0, 0.7) for _ in MB_EXPANDS] for _ in MB_KERNELS] for _ in MB_WIDTHS]
    block = [[unary[3 * b][i] + unary[3 * b + 1][j] + unary[3 * b + 2][m] + pair[b][i][j]
              for i, j, m in itertools.product(range(3), repeat=3)] for b in range(5)]
    lo, hi = sum(map(min, block)), sum(map(max, block))
    smallest = mb_cost([min(v) for v in choices])
    largest = mb_cost([max(v) for v in choices])
    span = math.log(largest[1] / smallest[1])

    def score(genome):
        values = genome.values
        params, macs, latency = mb_cost(values)
        index = [choices[p].index(v) for p, v in enumerate(values)]
        rugged = sum(block[b][9 * index[3 * b] + 3 * index[3 * b + 1] + index[3 * b + 2]]
                     for b in range(5))
        capacity = math.log(macs / smallest[1]) / span
        accuracy = (0.65 + 0.15 * (0.6 * capacity ** 0.7 + 0.4 * (rugged - lo) / (hi - lo))
                    + noise(genome.key(), 0.002))
        return accuracy, params, latency
    return Landscape(
        "mobile", "MBConv, 5 blocks x (kernel, expansion, depth), 3 values each (14.3M)",
        {"encoding": "choice", "choices": choices}, choices, ChoiceGenome, score,
        [{"metric": "accuracy", "direction": "max"}, {"metric": "params", "direction": "min"},
         {"metric": "latency_ms", "direction": "min"}],
        reference=(0.65, largest[0], largest[2]), ideal=(0.80, smallest[0], smallest[2]))


LANDSCAPES = (nb201, gcnn, mobile)


# ------------------------------------------------------------------------------- the methods
def evonas_strategies(landscape: Landscape, budget: int) -> dict[str, dict[str, Any]]:
    """evonas' strategies with their default settings, run long enough for ``budget``."""
    n = NSGA2Config().population
    p = ParetoAgingConfig().population
    nsga = {"population": n, "generations": math.ceil(budget / n) - 1}
    out = {"nsga2": {"name": "nsga2", **nsga}}
    if len(landscape.objectives) > 2:
        out["nsga3"] = {"name": "nsga3", **nsga}
    out["pareto_aging"] = {"name": "pareto_aging", "cycles": budget - p}
    out["random"] = {"name": "random", "evaluations": budget}
    return out


def run_evonas(landscape: Landscape, strategy: dict[str, Any], seed: int, tmp: Path
               ) -> list[tuple[float, ...]]:
    """The objective values of every evaluation in order (cache hits included)."""
    config = config_from_dict({
        "seed": seed, "runs_dir": str(tmp), "search": landscape.search,
        "strategy": strategy, "objectives": landscape.objectives,
        "evaluation": {"evaluator": "bench:landscape"}, "pool": {"backend": "serial"}})
    metrics = [o["metric"] for o in landscape.objectives]

    def evaluate(task):
        values = landscape.score(genome_from_dict(task["genome"]))
        return make_result(task["index"], values=values, metrics=dict(zip(metrics, values)),
                           started=0.0, finished=0.0)
    seen: dict[int, tuple[float, ...]] = {}

    def progress(event):
        if event.get("event") == "result":
            seen[event["index"]] = tuple(event["values"])
    name = f"{landscape.name}-{strategy['name']}-{seed}"
    with RunDirectory.create(tmp, name, config.to_dict(), exact=False) as rd, \
            SerialPool(evaluate=evaluate) as pool:
        Search(config, rd, pool, config.model_space(), progress=progress).loop()
    return [seen[i] for i in range(len(seen))]


def run_optuna(landscape: Landscape, population: int, seed: int, budget: int
               ) -> list[tuple[float, ...]]:
    import optuna

    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(
        directions=["maximize" if w > 0 else "minimize" for w in landscape.weights],
        sampler=sampler)
    values: list[tuple[float, ...]] = []

    def objective(trial):
        genome = landscape.to_genome([trial.suggest_categorical(f"x{i}", c)
                                      for i, c in enumerate(landscape.choices)])
        values.append(landscape.score(genome))
        return values[-1]
    study.optimize(objective, n_trials=budget)
    return values


def hv_curve(landscape: Landscape, values: list[tuple[float, ...]]) -> list[float]:
    return [hypervolume(values[:b], landscape.weights, landscape.reference) / landscape.box
            for b in BUDGETS]


# ------------------------------------------------------------------------------- the table
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="5 seeds (a smoke run)")
    args = parser.parse_args()
    seeds = 5 if args.quick else args.seeds
    logging.getLogger("evolution").setLevel(logging.WARNING)
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    budget = max(BUDGETS)
    matched = NSGA2Config().population
    started = time.perf_counter()
    print(f"hypervolume of the first {', '.join(map(str, BUDGETS))} evaluations, {seeds} seeds; "
          f"as a fraction of the box between the reference point and the ideal corner; "
          f"optuna {optuna.__version__}\n")
    for make in LANDSCAPES:
        landscape = make()
        tmp = Path(tempfile.mkdtemp(prefix="bench_mo_", dir=SCRATCH))
        methods = {name: (lambda s, st=strategy: run_evonas(landscape, st, s, tmp))
                   for name, strategy in evonas_strategies(landscape, budget).items()}
        methods["optuna NSGA-II (pop 50)"] = lambda s: run_optuna(landscape, 50, s, budget)
        methods[f"optuna NSGA-II (pop {matched})"] = (
            lambda s: run_optuna(landscape, matched, s, budget))
        curves: dict[str, list[list[float]]] = {}
        for name, method in methods.items():
            curves[name] = [hv_curve(landscape, method(seed)) for seed in range(seeds)]
        shutil.rmtree(tmp)
        optuna_names = [n for n in curves if n.startswith("optuna")]
        directions = ", ".join(f"{o['direction']} {o['metric']}" for o in landscape.objectives)
        print(f"{landscape.name}: {landscape.title}; {directions}")
        print(f"  reference point {fmt(landscape.reference)}, ideal corner {fmt(landscape.ideal)}")
        header = "".join(f"{'@' + str(b):>18}" for b in BUDGETS)
        print(f"  {'method':<26}{header}   seeds ahead of optuna's better (paired)")
        for name, runs in curves.items():
            cells, wins = [], []
            for j in range(len(BUDGETS)):
                column = [r[j] for r in runs]
                mean, std = statistics.mean(column), statistics.pstdev(column)
                mark = " "
                if name not in optuna_names:
                    rival = max(optuna_names,
                                key=lambda o: statistics.mean(r[j] for r in curves[o]))
                    mark = " " if mean > statistics.mean(r[j] for r in curves[rival]) else "*"
                    wins.append(sum(a[j] > b[j] for a, b in zip(runs, curves[rival])))
                cells.append(f"{mean:.4f} ({std:.4f}){mark:<2}")
            paired = " / ".join(f"{w:>2}" for w in wins)
            print(f"  {name:<26}" + "".join(f"{c:>18}" for c in cells)
                  + (f"   {paired}" if wins else ""))
        print()
    print("mean (std) over seeds; * the mean is not ahead of optuna's better setting at that "
          f"budget; wall time {time.perf_counter() - started:.0f} s")


def fmt(point: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in point) + ")"


if __name__ == "__main__":
    main()
