"""What a report shows of a run, read through :class:`~evolution.record.RunRecord`, and the
number formats the figures and ``report.md`` share."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from evolution.journal import RunDirectoryError
from evolution.record import RunRecord
from genome import EvonasError, genome_from_dict

RANDOM_WINDOW = 10    # results per window of a random search (its strategy's REPORT_EVERY)


class ReportError(EvonasError):
    """A run directory cannot be reported on, or a genome cannot be drawn."""


@dataclass
class Group:
    """One generation or window, labelled for an axis: the results told in it, and whether the
    strategy closed it (an open group is the tail of an unfinished run)."""

    label: str
    results: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = True


@dataclass
class RunData:
    """A run as the report draws it: the record, its groups, and the first objective, whose
    values the figures plot (``value(result)``)."""

    record: RunRecord
    groups: list[Group]
    generational: bool = False  # the groups are generations (genetic, NSGA-II, NSGA-III)

    @property
    def path(self):
        return self.record.path

    @property
    def config(self) -> Any:
        return self.record.config

    @property
    def results(self) -> list[dict[str, Any]]:
        return self.record.results

    @property
    def ok(self) -> list[dict[str, Any]]:
        return self.record.ok

    @property
    def not_ok(self) -> list[dict[str, Any]]:
        return self.record.not_ok

    @property
    def objective(self) -> str:
        """The first objective's metric, what the figures plot."""
        return self.record.objectives.items[0].metric

    @property
    def maximise(self) -> bool:
        return self.record.objectives.items[0].direction == "max"

    @property
    def summary(self) -> Optional[dict[str, Any]]:
        return self.record.summary

    def best(self, k: Optional[int] = None) -> list[dict[str, Any]]:
        return self.record.best(k)


def value(result: Mapping[str, Any]) -> float:
    """The first objective's value of an ok result."""
    return float(result["values"][0])


def load_run(run_dir: str | os.PathLike) -> RunData:
    """Read ``run_dir`` (config, journal, and summary / best genome when present).

    Raises :class:`ReportError` when the folder or its journal is missing or when no evaluation
    has finished yet. Unknown journal events are ignored; a torn last line (a run writing right
    now) is skipped.
    """
    try:
        record = RunRecord(run_dir)
        if not record.results:
            raise ReportError(f"the journal of {str(record.path)!r} has no results yet: no "
                              f"evaluation has finished; run the report again once one has")
        config = record.config
    except RunDirectoryError as exc:
        raise ReportError(str(exc)) from None
    # a generation or a population's worth of results (random search: a fixed window)
    window = getattr(config.strategy, "population", RANDOM_WINDOW)
    by_index = {r["index"]: r for r in record.results}
    grouped = record.groups(window)
    groups = [Group("", [by_index[i] for i in g.results], g.closed) for g in grouped]
    generational = bool(grouped) and grouped[0].kind == "generation"
    if generational:  # generation numbers
        for g, group in enumerate(groups):
            group.label = str(g)
    else:  # evaluation ranges first-last (1-based)
        end = 0
        for group in groups:
            group.label = f"{end + 1}-{end + len(group.results)}"
            end += len(group.results)
    return RunData(record, groups, generational)


def number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def genome_text(result: Mapping[str, Any]) -> str:
    """The genome's text form, ready for a markdown table cell (a pipe would end the cell)."""
    try:
        text = genome_from_dict(result["genome"]).to_string()
    except (EvonasError, KeyError, TypeError):
        text = str(result.get("key", "?"))
    return text.replace("|", "\\|")


def count(value: Any) -> str:
    n = number(value)
    return "-" if n is None else f"{int(round(n)):,}"


def mantissa(x: float) -> int:
    """The leading digit of ``x`` (> 0): 2 for 2000."""
    return int(round(x / 10 ** math.floor(math.log10(x) + 1e-9))) if x > 0 else 0


def si(value: Any) -> str:
    n = number(value)
    if n is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"
