"""The learning curves of a run (``curves.png``): the best finished candidates in colour, the
other finished ones faint, the pruned ones grey up to the rung they were stopped at, and the
rungs of a multi-fidelity run (see :mod:`evolution.curves`)."""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from evolution.curves import curve_metric, has_curves, points, rungs, trained
from evolution.report.data import RunData
from evolution.report.figures import _new_figure, _title
from evolution.results import OK, PRUNED

TOP_CURVES = 5
"""Best finished candidates drawn in colour."""
MAX_CURVES = 200
"""Faint (other finished) and grey (pruned) curves drawn at most, each; more are sampled."""
COLOURS = ["tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown"]


def sample(items: Sequence[Any], most: int = MAX_CURVES) -> list[Any]:
    """At most ``most`` of ``items``, spread evenly over them (the first and last included):
    the same every time."""
    if len(items) <= most:
        return list(items)
    picks = np.unique(np.linspace(0, len(items) - 1, most).round().astype(int))
    return [items[i] for i in picks]


def _segments(xs: list[float], ys: list[float]) -> list[np.ndarray]:
    """The finite stretches of a curve (a non-finite value breaks it), as line segments."""
    out, current = [], []
    for x, y in zip(xs, ys):
        if math.isfinite(y):
            current.append((x, y))
        else:
            if current:
                out.append(np.array(current))
            current = []
    if current:
        out.append(np.array(current))
    return out


def _drawn(what: str, shown: int, total: int) -> str:
    return f"{what} ({total})" if shown == total else \
        f"{what} ({shown} of {total} drawn, sampled evenly)"


def plot_curves(data: RunData) -> Optional[Figure]:
    """The curve metric (:func:`~evolution.curves.curve_metric`: the first objective where the
    curves hold it) against epoch: the :data:`TOP_CURVES` best finished candidates in colour,
    labelled by evaluation index; the other finished candidates faint; the pruned ones as thin
    grey lines ending with a dot at the rung they reached; dotted lines at the rungs of a
    multi-fidelity run. At most :data:`MAX_CURVES` faint and grey lines each, sampled evenly
    (the legend says so). ``None`` when no candidate's curve has two epochs."""
    record = data.record
    metric = curve_metric(record)
    if metric is None or not has_curves(record, metric):
        return None
    curves = {r["index"]: points(r, metric) for r in trained(record)}
    curves = {i: c for i, c in curves.items() if c[0]}
    top = [r for r in data.best() if r["index"] in curves][:TOP_CURVES]
    chosen = {r["index"] for r in top}
    results = sorted(trained(record), key=lambda r: r["index"])
    others = [r["index"] for r in results if r["index"] in curves and r["index"] not in chosen
              and r.get("status") == OK]
    pruned = [r["index"] for r in results if r["index"] in curves and r.get("status") == PRUNED]
    figure, ax = _new_figure(9, 5.2)
    for indices, colour, width, what in ((others, "#9fc5e8", 0.7, "other finished candidates"),
                                         (pruned, "0.55", 0.7, "pruned at a rung")):
        shown = sample(indices)
        if not shown:
            continue
        segments = [s for i in shown for s in _segments(*curves[i])]
        ax.add_collection(LineCollection(segments, colors=colour, linewidths=width, alpha=0.7,
                                         zorder=2, label=_drawn(what, len(shown), len(indices))))
        if indices is pruned:
            ends = [s[-1] for i in shown for s in _segments(*curves[i])[-1:]]
            if ends:
                ax.scatter(*np.array(ends).T, s=10, color="0.4", zorder=3)
    for colour, r in zip(COLOURS, top):
        xs, ys = curves[r["index"]]
        ax.plot(xs, ys, color=colour, lw=1.8, marker="o" if len(xs) <= 30 else None, ms=3,
                zorder=4, label=f"evaluation {r['index']} ({data.objective} "
                                f"{float(r['values'][0]):.4f})")
    decisions = rungs(record)
    for k, epochs in enumerate(decisions):
        ax.axvline(epochs, color="black", lw=1.0, ls=":", alpha=0.7, zorder=1,
                   label=(f"rungs ({data.config.fidelity.rule}) at "
                          f"{', '.join(map(str, decisions))} epochs" if k == 0 else None))
    ax.autoscale_view()
    epochs = [e for xs, _ in curves.values() for e in xs]
    ax.set_xlim(min(epochs) - 0.3, max(epochs) + 0.3)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    best = f"the {len(top)} best finished candidates" if top else "no candidate finished"
    ax.set_title(f"{_title(data)}\nlearning curves: {metric} per epoch; {best} in colour")
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return figure
