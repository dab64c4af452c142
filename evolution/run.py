"""The search loop: ask the strategy, evaluate on the pool, tell the strategy, record everything.

    strategy.ask ──► cache? ──► pool.submit(task) ──► pool.wait ──► journal ──► strategy.tell

Every asked genome gets the next evaluation index and a seed derived from (run seed, index), so
results do not depend on which worker ran what. Identical architectures (same canonical key;
settings are fixed per run) are trained once: later asks reuse the result and are journalled as
cache hits. A non-ok result is told to the strategy as the worst fitness and the run goes on.
"""
from __future__ import annotations

import hashlib
import logging
import math
import random
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from evolution.config import Config
from evolution.journal import RunDirectory, atomic_write
from evolution.pool import Pool, make_pool
from evolution.strategies import WORST, Ask, make_strategy

log = logging.getLogger(__name__)

Progress = Callable[[dict[str, Any]], None]


def derive_seed(run_seed: int, index: int) -> int:
    """The seed of evaluation ``index``: a stable 31-bit hash of (run seed, index)."""
    digest = hashlib.sha256(f"evonas:{run_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class RunSummary:
    """What a finished run found. ``best`` is ``None`` when no evaluation succeeded."""

    run_dir: Path
    evaluations: int
    trained: int
    cache_hits: int
    failures: int
    seconds: float
    best: Optional[dict[str, Any]] = None
    final: dict[str, Any] = field(default_factory=dict)

    @property
    def best_genome(self) -> Optional[str]:
        """The best genome's text form."""
        from genome import genome_from_dict

        return genome_from_dict(self.best["genome"]).to_string() if self.best else None

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "evaluations": self.evaluations,
                "trained": self.trained, "cache_hits": self.cache_hits,
                "failures": self.failures, "seconds": self.seconds, "best": self.best,
                "final": self.final}


def model_space(config: Config, splits: Any = None) -> dict[str, Any]:
    """The decoder's settings for this run: what the genome does not say (with the data set's
    shape when there is one)."""
    space = config.search.space()
    if splits is not None:
        space.update(in_channels=splits.in_channels, num_classes=splits.num_classes)
    return space


def check_evaluator(config: Config, space: dict[str, Any]) -> None:
    """Import the configured evaluator and call it once on a random genome of the space, so a
    wrong path or return type stops the run before it starts. The genome comes from its own
    RNG; the strategy's randomness is untouched."""
    from evolution.evaluator import call_evaluator
    from evolution.strategies.base import make_toolbox
    from evolution.worker import evaluator_settings

    rng = random.Random(f"evaluator-check:{config.seed}")
    genome = make_toolbox(config.search, config.strategy, rng).random_genome()
    task = {"training": config.evaluation.model_dump(mode="json"), "space": space,
            "seed": derive_seed(config.seed, -1), "index": -1}
    call_evaluator(config.evaluation.evaluator, genome, evaluator_settings(task),
                   config.evaluation.objective)


def _rank(result: dict[str, Any]) -> tuple[float, float]:
    """Order of results for "best": higher fitness, then lower validation loss."""
    loss = result["metrics"].get("val_loss")
    return result["fitness"], -loss if loss is not None else -math.inf


class Search:
    """The loop over a given pool and run directory, without data loading or final training
    (which :func:`run` adds). Tests and benchmarks drive it with a trivial evaluator."""

    def __init__(self, config: Config, run_dir: RunDirectory, pool: Pool, space: dict[str, Any],
                 progress: Optional[Progress] = None):
        self.config, self.run_dir, self.pool = config, run_dir, pool
        self.progress = progress or (lambda event: None)
        self.strategy = make_strategy(config, random.Random(config.seed))
        self.base_task = {"space": space, "data": config.data.model_dump(mode="json"),
                          "training": config.evaluation.model_dump(mode="json"),
                          "evaluator": config.evaluation.evaluator,
                          "objective": config.evaluation.objective}
        self.next_index = 0
        self.asked: dict[int, dict[str, Any]] = {}       # index -> ask event
        self.running: dict[str, int] = {}                # key -> index being trained
        self.waiting: dict[str, list[int]] = {}          # key -> indices waiting on it
        self.cache: dict[str, dict[str, Any]] = {}       # key -> result that trained it
        self.ready: deque[dict[str, Any]] = deque()      # tasks to submit when a slot frees
        self.best: Optional[dict[str, Any]] = None
        self.counts = {"evaluations": 0, "trained": 0, "cache_hits": 0, "failures": 0}

    def loop(self) -> None:
        while not self.strategy.done:
            self._fill()
            if self.strategy.done:
                break
            if not self.running:
                raise RuntimeError("search stalled: nothing is running and the strategy asks "
                                   "for nothing")
            for result in self.pool.wait():
                self._finish(result)

    def _fill(self) -> None:
        """Submit ready tasks, then ask for new genomes, while a slot is free."""
        while self.pool.free > 0 and not self.strategy.done:
            if self.ready:
                self.pool.submit(self.ready.popleft())
                continue
            asks = self.strategy.ask(1)
            if not asks:
                return
            self._start(asks[0])

    def _start(self, ask: Ask) -> None:
        index = self.next_index
        self.next_index += 1
        key = ask.genome.key()
        event = {"event": "ask", "index": index, "ticket": ask.ticket,
                 "seed": derive_seed(self.config.seed, index), "genome": ask.genome.to_dict(),
                 "key": key, "time": time.time()}
        self.asked[index] = event
        self.run_dir.append(event)
        if key in self.cache:
            self._record(index, self.cache[key], cache_of=self.cache[key]["index"])
        elif key in self.running:
            self.waiting.setdefault(key, []).append(index)
        else:
            self._submit(index)

    def _submit(self, index: int) -> None:
        event = self.asked[index]
        self.running[event["key"]] = index
        task = {**self.base_task, "index": index, "seed": event["seed"],
                "genome": event["genome"]}
        if self.pool.free > 0:
            self.pool.submit(task)
        else:
            self.ready.append(task)

    def _finish(self, result: dict[str, Any]) -> None:
        key = self.asked[result["index"]]["key"]
        del self.running[key]
        waiting = self.waiting.pop(key, [])
        self.counts["trained"] += 1
        if result["status"] == "crashed":  # not the architecture's fault: train it again
            self._record(result["index"], result)
            if waiting:
                self._submit(waiting[0])
                self.waiting[key] = waiting[1:]
            return
        self.cache[key] = result
        self._record(result["index"], result)
        for index in waiting:
            self._record(index, result, cache_of=result["index"])

    def _record(self, index: int, result: dict[str, Any], cache_of: Optional[int] = None) -> None:
        ask = self.asked[index]
        event = {"event": "result", "index": index, "genome": ask["genome"], "key": ask["key"],
                 "seed": ask["seed"], "status": result["status"], "fitness": result["fitness"],
                 "metrics": result.get("metrics", {}), "message": result.get("message", ""),
                 "cached": cache_of is not None}
        if cache_of is None:
            event.update(worker=result.get("worker"), pid=result.get("pid"),
                         started=result.get("started"),
                         finished=result.get("finished"),
                         seconds=(result.get("finished") or 0) - (result.get("started") or 0))
            if "traceback" in result:
                event["traceback"] = result["traceback"]
        else:
            event["cache_of"] = cache_of
            self.counts["cache_hits"] += 1
        self.run_dir.append(event)
        self.counts["evaluations"] += 1
        ok = event["status"] == "ok"
        if not ok:
            self.counts["failures"] += 1
        elif self.best is None or _rank(event) > _rank(self.best):
            self.best = event
        self.progress({**event, "best": self.best and self.best["fitness"], **self.counts})
        for extra in self.strategy.tell(ask["ticket"], event["fitness"] if ok else WORST):
            self.run_dir.append({**extra, "time": time.time()})
            self.progress(extra)


def _final_evaluation(config: Config, run_dir: RunDirectory, best: dict[str, Any],
                      space: dict[str, Any]) -> dict[str, Any]:
    """Retrain the best genome with its evaluation seed and the workers' thread count, which
    reproduces the search's numbers on CPU; measure it on the test split (its only use) and
    save its genome, settings, metrics and weights in ``best/``."""
    import torch

    from genome import genome_from_dict
    from training import load_dataset, score

    splits = load_dataset(config.data.model_dump(mode="json"))
    training = config.evaluation.model_dump(mode="json")
    threads = torch.get_num_threads()
    torch.set_num_threads(config.pool.threads_per_worker)  # as in the workers: same numbers
    try:
        metrics, model = score(genome_from_dict(best["genome"]), space, splits, training,
                               best["seed"], with_test=True)
    finally:
        torch.set_num_threads(threads)
    out = run_dir.path / "best"
    atomic_write(out / "model.pt", lambda f: torch.save(model.state_dict(), f), mode="wb")
    run_dir.write_json("best/genome.json", {
        "genome": best["genome"], "key": best["key"], "index": best["index"],
        "seed": best["seed"], "space": space, "evaluation": training,
        "data": config.data.model_dump(mode="json"), "search_metrics": best["metrics"],
        "metrics": metrics})
    return metrics


def run(config: Config, *, name: Optional[str] = None, workers: Optional[int] = None,
        progress: Optional[Progress] = None) -> RunSummary:
    """Run the search ``config`` describes, in a new run directory, and return its summary.

    ``name`` (the CLI's ``--name``) names the run directory exactly; without it the config's
    name is used, with ``-2``, ``-3``, ... appended when that directory is taken. ``workers``
    overrides ``pool.workers``. ``progress`` receives every journal event as it happens.
    """
    from training import load_dataset

    progress = progress or (lambda event: None)
    start = time.time()
    if name is not None:
        config = config.replace(name=name)
    evaluator = config.evaluation.evaluator
    if evaluator:
        space = model_space(config)
        check_evaluator(config, space)
        task = f"evaluator {evaluator}"
    with ExitStack() as stack:
        pool = stack.enter_context(make_pool(config, workers))  # workers start meanwhile
        if not evaluator:
            splits = load_dataset(config.data.model_dump(mode="json"))  # fail fast, download once
            space, task = model_space(config, splits), splits.describe()
        run_dir = stack.enter_context(RunDirectory.create(
            config.runs_dir, config.name, config.to_dict(), exact=name is not None))
        log.info("run directory %s; %s", run_dir.path, task)
        progress({"event": "start", "run_dir": str(run_dir.path),
                  "budget": config.strategy.budget, "workers": pool.slots, "data": task})
        search = Search(config, run_dir, pool, space, progress)
        search.loop()
        pool.close()  # free the cores for the final training
        final = {}
        if search.best is not None and not evaluator:
            progress({"event": "final_training", "index": search.best["index"]})
            final = _final_evaluation(config, run_dir, search.best, space)
        summary = RunSummary(run_dir.path, seconds=time.time() - start, best=search.best,
                             final=final, **search.counts)
        run_dir.write_json("summary.json", summary.to_dict())
        return summary
