"""Ask/tell over a run directory: the search's loop driven by your own code (a notebook, your
scheduler), with the journal, cache, snapshots and resume of a CLI run.

    run = evonas.open_run("my-search.yaml")        # or a run directory, to continue it
    while (trial := run.ask()) is not None:
        run.tell(trial, my_evaluation(trial.params))  # a number, values, or a dict of metrics
    run.close()                                    # or `with evonas.open_run(...) as run:`

It is the :class:`~evolution.loop.Search` of ``evonas run`` over a pool whose workers are you:
:meth:`Run.ask` hands out what the strategy proposes (identical architectures are answered
from the cache and never handed out), :meth:`Run.tell` journals the result and tells the
strategy. Reopening the run directory (after a crash or a kill) replays the journal and hands
out again, first, the trials that were asked and never told, with their index and seed. In
deterministic mode (``deterministic: true``) results are applied in the order trials were
asked, so a script that evaluates the same way writes the same journal however it was
interrupted.
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

from evolution.config import Config, ConfigError
from evolution.evaluator import normalise
from evolution.fidelity import task_step
from evolution.journal import (CONFIG, FORMAT, IDENTITY, RunDirectory, differences,
                               frozen_config, read_events)
from evolution.objectives import values_of
from evolution.pool.base import Pool
from evolution.results import FAILED, INFEASIBLE, OK, Result, make_result
from genome import genome_from_dict, get_encoding
from genome.errors import EvonasError

log = logging.getLogger(__name__)

TELL = "tell:user"
"""``evaluation.evaluator`` of a run driven by ask/tell whose config names no evaluator."""


class AskTellError(EvonasError):
    """A trial told twice, or not one of this run's, or asked beyond the outstanding limit."""


@dataclass(frozen=True)
class Trial:
    """One evaluation to run: its ``index`` in the run, the ``seed`` to use, the ``genome``,
    ``params`` (``{name: value}`` of a named choice space or of searched training settings,
    else ``{}``) and ``settings`` (the evaluation settings, searched values in place). Under
    multi-fidelity (``fidelity.rule``) a candidate comes back once per rung it is promoted
    to: train it from ``start_epoch`` to ``settings["epochs"]`` and tell its value there."""

    index: int
    seed: int
    genome: Any
    params: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    start_epoch: int = 0


class _Hand(Pool):
    """The pool whose worker is the caller: submitted tasks wait to be asked for, results come
    from :meth:`Run.tell`."""

    name = "asktell"

    def __init__(self, slots: int):
        super().__init__()
        self.slots = slots
        self.waiting: deque[dict[str, Any]] = deque()   # submitted, not handed out
        self.out: dict[int, dict[str, Any]] = {}          # handed out, not told
        self.told: list[Result] = []

    @classmethod
    def from_config(cls, pool: Any, workers: Optional[int] = None) -> "_Hand":
        return cls(workers or pool.workers)

    @property
    def free(self) -> int:
        return self.slots - len(self.waiting) - len(self.out)

    @property
    def running(self) -> int:
        return len(self.waiting) + len(self.out)

    def submit(self, task: dict[str, Any]) -> None:
        self.waiting.append(task)

    def wait(self, timeout: Optional[float] = None) -> list[Result]:
        told, self.told = self.told, []
        return told

    def close(self) -> None:
        self.waiting.clear()
        self.out.clear()


class Run:
    """A run directory opened for ask/tell (see the module docstring). Holds the directory's
    lock until :meth:`close`."""

    def __init__(self, config: Config, run_dir: RunDirectory, events: list[dict[str, Any]],
                 *, progress: Optional[Callable[[dict[str, Any]], None]] = None):
        from evolution.loop import _rebuild

        self.config = config
        self._dir = run_dir
        self._pool = _Hand(config.pool.workers)
        self._started = time.time()
        self._search = _rebuild(config, run_dir, self._pool, config.model_space(),
                                progress or (lambda event: None), events)
        run_dir.append({"event": "session", "time": time.time(), "started": self._started,
                        "pid": os.getpid(), "resumed": bool(events), "workers": self._pool.slots,
                        "format": FORMAT, "driver": "asktell"})
        self._search.resume_in_flight()
        self._closed = False

    # ------------------------------------------------------------------------------ reading
    @property
    def path(self) -> Path:
        return self._dir.path

    @property
    def done(self) -> bool:
        """The budget is spent (or ``proposal.max_asks`` reached) and every trial is told."""
        return self._search.done

    @property
    def best(self) -> Optional[dict[str, Any]]:
        """The best result so far (its journal event), ``None`` before a success."""
        return self._search.best

    @property
    def counts(self) -> dict[str, int]:
        return dict(self._search.counts)

    @property
    def outstanding(self) -> list[int]:
        """Indices of trials handed out and not told yet."""
        return sorted(self._pool.out)

    # ------------------------------------------------------------------------------ ask/tell
    def ask(self) -> Optional[Trial]:
        """The next trial to evaluate; ``None`` when the budget is spent (or, in deterministic
        mode, when the next proposal waits on a trial not told yet). Trials asked in an
        earlier session and never told come first. :class:`AskTellError` when
        ``pool.workers`` trials are already out."""
        self._check_open()
        search = self._search
        if not self._pool.waiting:
            search._fill()
            search._drain()
        if not self._pool.waiting:
            if self._pool.out and not search.done and self._pool.free <= 0:
                raise AskTellError(
                    f"{len(self._pool.out)} trials are out ({', '.join(map(str, self.outstanding))}"
                    f"), as many as pool.workers allows; tell one before asking again")
            return None
        task = self._pool.waiting.popleft()
        self._pool.out[task["index"]] = task
        genome = genome_from_dict(task["genome"])
        _, searched = get_encoding(genome.encoding).split(genome)
        named = get_encoding(self.config.search.encoding).named(genome, self.config.search)
        step = task_step(task, task["evaluation"]["epochs"])
        return Trial(task["index"], task["seed"], genome, params=dict(named or {}),
                     settings={**task["evaluation"], **searched, "epochs": step["stop"]},
                     start_epoch=step["start"])

    def tell(self, trial: Union[Trial, int], value: Any = None, *,
             error: Union[str, BaseException, None] = None) -> None:
        """Record the outcome of ``trial`` (or its index): ``value`` is a number (the one
        objective), a sequence of numbers (every objective, in config order) or a dict of
        metrics with every objective's metric; ``error`` (a message or the exception) records a
        failed evaluation instead. The result is journalled and told to the strategy at once
        (deterministic mode: once every earlier trial is told)."""
        self._check_open()
        index = trial.index if isinstance(trial, Trial) else int(trial)
        task = self._pool.out.pop(index, None)
        if task is None:
            raise AskTellError(f"trial {index} is not out: "
                               + ("it was told already" if index < self._search.next_index
                                  else "it was never asked")
                               + f"; out now: {self.outstanding or 'none'}")
        try:
            result = self._result(task, value, error)
        except BaseException:
            self._pool.out[index] = task  # nothing recorded: tell it again
            raise
        if result["status"] != FAILED:  # the epochs it was asked to train
            step = task_step(task, task["evaluation"]["epochs"])
            result["epochs"] = step["stop"] - step["start"]
        search = self._search
        search._arrived(result)  # under multi-fidelity a rung: promoted, it is asked again
        search._drain()

    def _result(self, task: dict[str, Any], value: Any, error: Any) -> Result:
        index, objectives = task["index"], task["objectives"]
        if error is not None:
            message = (f"{type(error).__name__}: {error}" if isinstance(error, BaseException)
                       else str(error))
            return make_result(index, FAILED, message=message, error=type(error).__name__
                               if isinstance(error, BaseException) else "error")
        if (isinstance(value, Sequence) and not isinstance(value, (str, bytes))
                and len(value) == len(objectives)):
            value = dict(zip(objectives, value))
        try:
            metrics = normalise(value, objectives, "the told value")
            values = values_of(metrics, objectives)
        except EvonasError as exc:
            raise AskTellError(f"trial {index}: {exc}") from None
        from evolution.constraints import Constraints, describe

        violation, broken = Constraints.from_dict(task.get("constraints")).check(metrics)
        if broken:
            return make_result(index, INFEASIBLE, metrics=metrics, message=describe(broken),
                               violation=violation, violations=broken)
        return make_result(index, OK, values=values, metrics=metrics)

    # ------------------------------------------------------------------------------ closing
    def _check_open(self) -> None:
        if self._closed:
            raise AskTellError(f"the run {self.path} is closed; open it again with "
                               f"evonas.open_run({str(self.path)!r})")

    def close(self) -> None:
        """Snapshot, journal the session's end, write ``summary.json`` when the run is done,
        and release the directory. Trials out stay outstanding: reopening hands them out
        again."""
        if self._closed:
            return
        try:
            self._search.snapshot()
            now = time.time()
            self._dir.append({"event": "end", "time": now, "seconds": now - self._started})
            if self.done:
                from evolution.loop import RunSummary
                from evolution.record import sessions_seconds

                summary = RunSummary(self.path, seconds=now - self._started,
                                     total_seconds=sessions_seconds(read_events(self.path)[0]),
                                     best=self._search.best, task=self.config.task.name,
                                     evaluator=True, **self._search.counts,
                                     **self._search.front_summary())
                self._dir.write_json("summary.json", summary.to_dict())
        finally:
            self._closed = True
            self._dir.close()

    def __enter__(self) -> "Run":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_run(config: Any, *, callbacks: Any = (),
             progress: Optional[Callable[[dict[str, Any]], None]] = None) -> Run:
    """Open a run for ask/tell: ``config`` is a run directory (continued), or a config
    (``Config``, dict or YAML path) whose ``runs_dir/name`` is continued when it exists (its
    config must be the same) and started otherwise. A config without an evaluator gets
    ``evaluation.evaluator: tell:user`` (you evaluate), so any metric may be an objective."""
    from evolution.api import as_config
    from evolution.callbacks import as_progress
    from evolution.config import config_from_dict

    on_event = as_progress(callbacks, progress)
    target = Path(config) if isinstance(config, (str, os.PathLike)) else None
    if target is not None and target.is_dir() and (target / CONFIG).exists():
        cfg = config_from_dict(frozen_config(target), str(target / IDENTITY))
        run_dir, events = RunDirectory.open(target)
        return _opened(cfg, run_dir, events, on_event)
    try:
        cfg = as_config(config)
    except ConfigError:  # objectives the trainer does not report: the user evaluates
        cfg = None
    if cfg is None or not cfg.evaluation.evaluator:
        cfg = as_config(config, TELL)
    path = Path(cfg.runs_dir) / cfg.name
    if (path / CONFIG).exists():
        frozen = config_from_dict(frozen_config(path), str(path / IDENTITY))
        changed = differences(cfg.to_dict(), frozen.to_dict(), ignore=("name", "runs_dir"))
        if changed:
            raise ConfigError(f"the config differs from the one {path} was started with, in: "
                              f"{', '.join(changed)}; open the run directory itself to "
                              f"continue it, or give the config another name")
        run_dir, events = RunDirectory.open(path)
        return _opened(frozen, run_dir, events, on_event)
    run_dir = RunDirectory.create(cfg.runs_dir, cfg.name, cfg.to_dict(), exact=True)
    return _opened(cfg, run_dir, [], on_event)


def _opened(config: Config, run_dir: RunDirectory, events: list[dict[str, Any]],
            progress: Any) -> Run:
    try:
        return Run(config, run_dir, events, progress=progress)
    except BaseException:
        run_dir.close()
        raise
