"""The figures of a run with several objectives: the Pareto front, pair by pair, and the
hypervolume against evaluations."""
from __future__ import annotations

from itertools import combinations
from typing import Optional

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from evolution.report.data import RunData
from evolution.report.figures import _title


def _reference_text(data: RunData) -> str:
    reference = data.record.reference
    if reference is None:
        return "no reference point yet"
    return "reference point " + ", ".join(
        f"{o.metric} {v:.4g}" for o, v in zip(data.record.objectives, reference))


def plot_front(data: RunData) -> Optional[Figure]:
    """One panel per pair of objectives: every distinct successful architecture, the ones on
    the run's Pareto front (over all objectives) highlighted and, with two objectives, joined
    by the front's staircase; the hypervolume's reference point as a cross. ``None`` without a
    successful result."""
    objectives = data.record.objectives
    distinct = data.best()
    if not distinct:
        return None
    front = data.record.front()
    on_front = {id(r) for r in front}
    values = np.array([r["values"] for r in distinct], dtype=float)
    mask = np.array([id(r) in on_front for r in distinct])
    pairs = list(combinations(range(len(objectives)), 2))
    columns = min(3, len(pairs))
    rows = -(-len(pairs) // columns)
    figure = Figure(figsize=(max(7.5, 5.2 * columns), 4.4 * rows + 0.8), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    reference = data.record.reference
    for ax, (i, j) in zip(axes, pairs):
        ax.scatter(values[~mask, i], values[~mask, j], s=16, color="#9aa5b1", alpha=0.7,
                   label="dominated", zorder=2)
        ax.scatter(values[mask, i], values[mask, j], s=34, color="tab:orange",
                   edgecolors="black", linewidths=0.4, label="on the front", zorder=3)
        if len(objectives) == 2:
            _staircase(ax, values[mask], objectives.weights)
        if reference is not None:
            ax.scatter([reference[i]], [reference[j]], marker="x", s=60, color="tab:red",
                       label="reference point", zorder=4)
        for axis, k in ((ax.set_xlabel, i), (ax.set_ylabel, j)):
            o = objectives.items[k]
            axis(f"{o.metric} ({'higher' if o.direction == 'max' else 'lower'} is better)")
        ax.grid(alpha=0.3)
    for ax in axes[len(pairs):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8, loc="best")
    figure.suptitle(f"{_title(data)}\nPareto front: {len(front)} of {len(distinct)} distinct "
                    f"architectures; {_reference_text(data)}", fontsize=10)
    return figure


def _staircase(ax, points: np.ndarray, weights) -> None:
    """The boundary of what two objectives' front attains: along the first objective, the
    best second value among the members at least that good in the first."""
    if not len(points):
        return
    order = np.argsort(points[:, 0])
    ax.step(points[order, 0], points[order, 1], where="pre" if weights[0] > 0 else "post",
            color="tab:orange", lw=1.2, alpha=0.8, zorder=2)


def plot_hypervolume(data: RunData) -> Optional[Figure]:
    """The hypervolume of the run's front after every generation or window, against the
    number of results; ``None`` when the run measured none yet."""
    points = data.record.hypervolumes()
    if not points:
        return None
    figure = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = figure.add_subplot()
    x, y = zip(*points)
    ax.step(x, y, where="post", color="tab:blue", lw=1.6, zorder=2)
    ax.scatter(x, y, s=18, color="tab:blue", zorder=3)
    if len(points) > 1 and y[0] > 0:
        ax.annotate(f"{y[-1] / y[0]:.2f}x the first", (x[-1], y[-1]), xytext=(-8, -16),
                    textcoords="offset points", ha="right", fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluations")
    ax.set_ylabel("hypervolume")
    ax.set_title(f"{_title(data)}\nhypervolume of the front; {_reference_text(data)}",
                 fontsize=10)
    ax.grid(alpha=0.3)
    return figure

