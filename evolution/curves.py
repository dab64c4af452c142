"""Learning curves and rungs as a run directory records them, read through
:class:`~evolution.record.RunRecord` for the report (``curves.png``, the Learning curves section
of ``report.md``) and ``evonas status``.

A trained result's ``curve`` is a list of points ``{"epoch": e, metric: value, ...}`` (the
built-in trainer: ``train_loss``, ``val_loss``, ``val_accuracy``; a user evaluator: what it
passed to ``report(epoch, metrics)``); a value may be ``None`` where it was not finite. Under a
multi-fidelity rule a candidate promoted at a rung is a ``rung`` event, one stopped there a
``pruned`` result whose ``rung`` is the epochs it reached (see :mod:`evolution.fidelity`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from evolution.fidelity import Fidelity
from evolution.record import RunRecord
from evolution.results import OK, PRUNED

MIN_PAIRS = 3
"""Finished candidates a rank correlation needs (two always give +-1)."""


def trained(record: RunRecord) -> list[dict[str, Any]]:
    """The results that trained something (cache hits repeat another evaluation's curve)."""
    return [r for r in record.results if not r.get("cached")]


def curve_metric(record: RunRecord) -> Optional[str]:
    """The metric the curves show: the first objective the curve points hold, else the first
    validation metric (``val_...``) in them, else their first metric; ``None`` when no result
    has a curve."""
    seen: dict[str, None] = {}
    for result in trained(record):
        for point in result.get("curve") or []:
            seen.update((k, None) for k in point if k != "epoch")
    if not seen:
        return None
    for objective in record.objectives:
        if objective.metric in seen:
            return objective.metric
    return next((k for k in seen if k.startswith("val_")), next(iter(seen)))


def points(result: Mapping[str, Any], metric: str) -> tuple[list[float], list[float]]:
    """Epochs and values of ``metric`` along the result's curve, in epoch order; a point
    without a finite value is NaN (a gap in the line)."""
    pairs = []
    for position, point in enumerate(result.get("curve") or [], 1):
        if metric not in point:
            continue
        value = point[metric]
        finite = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        pairs.append((float(point.get("epoch", position)), float(value) if finite else math.nan))
    pairs.sort(key=lambda p: p[0])
    return [e for e, _ in pairs], [v for _, v in pairs]


def has_curves(record: RunRecord, metric: Optional[str] = None) -> bool:
    """Whether some trained result's curve has ``metric`` (default: :func:`curve_metric`) at
    two epochs or more: a line to draw, not a single point."""
    metric = metric or curve_metric(record)
    return metric is not None and any(len(points(r, metric)[0]) >= 2 for r in trained(record))


def rungs(record: RunRecord) -> list[int]:
    """The epochs where the run's fidelity rule decided (below the top rung); empty without
    one."""
    return Fidelity(record.config, 1.0).rungs[:-1]


@dataclass
class Rung:
    """One rung of a multi-fidelity run. ``reached``: candidates that trained to it (promoted
    or pruned there; at the top rung, those that finished); ``spearman``: the rank correlation
    of the first objective at this rung with its final value, over the ``pairs`` candidates
    that finished (``None`` for fewer than :data:`MIN_PAIRS`, or values all alike)."""

    epochs: int
    reached: int
    promoted: Optional[int] = None
    pruned: Optional[int] = None
    spearman: Optional[float] = None
    pairs: int = 0

    @property
    def top(self) -> bool:
        return self.promoted is None

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "reached": self.reached, "promoted": self.promoted,
                "pruned": self.pruned, "spearman": self.spearman, "pairs": self.pairs}


def rung_table(record: RunRecord) -> list[Rung]:
    """Per rung of a multi-fidelity run (the top rung last): how many candidates reached it,
    were promoted and were pruned there, and how well the values there rank the finished
    candidates as their final values do. Empty for a run without a fidelity rule."""
    decisions = rungs(record)
    if not decisions:
        return []
    results = trained(record)
    final = {r["index"]: float(r["values"][0]) for r in results
             if r.get("status") == OK and r.get("values")}
    table = []
    for epochs in decisions:
        at = {e["index"]: float(e["values"][0]) for e in record.rungs
              if e.get("rung") == epochs and e.get("values")}
        pruned = sum(r.get("status") == PRUNED and r.get("rung") == epochs for r in results)
        both = [i for i in at if i in final]
        table.append(Rung(epochs, len(at) + pruned, len(at), pruned,
                          spearman([at[i] for i in both], [final[i] for i in both]), len(both)))
    top = Fidelity(record.config, 1.0).top
    return table + [Rung(top, len(final))]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Optional[float]:
    """Spearman's rank correlation of paired values (ties get their average rank); ``None``
    for fewer than :data:`MIN_PAIRS` pairs or when either side has a single value."""
    if len(xs) < MIN_PAIRS or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    from scipy.stats import spearmanr

    return float(spearmanr(xs, ys).statistic)
