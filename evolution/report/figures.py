"""The figures of a run: every evaluation against its index, accuracy against parameters,
the spread per generation or window. The first objective is what they plot.

Figures are made with matplotlib's ``Figure`` and the Agg canvas directly, never through
``pyplot``: nothing global is changed and no display is needed.
"""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from evolution.report.data import (RANDOM_WINDOW, Group, RunData, count, mantissa, number,
                                   si, value)
from evolution.results import OK, PRUNED
from evolution.strategies import STRATEGIES


def _is_ok(result: Mapping[str, Any]) -> bool:
    return result.get("status") == OK and bool(result.get("values"))


def save(figure: Figure, path: Path, dpi: float = 110) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, facecolor="white")
    return path


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _title(data: RunData) -> str:
    name = data.config.name or data.path.name
    kind = STRATEGIES[data.config.strategy.name].title
    state = ", unfinished" if data.summary is None else ""
    return f"run {name}  ({kind}, {len(data.results)} evaluations{state})"


MAX_GROUPS = 40
"""Boxes (generations or windows) a spread figure shows; longer runs are binned."""
MAX_LINES = 20
"""Generation lines a fitness figure draws; longer runs mark every k-th generation."""


def _done(data: RunData) -> str:
    """What an evaluation did: the built-in trainer trains; a user evaluator evaluates."""
    return "evaluated" if data.config.evaluation.evaluator else "trained"


def plot_fitness(data: RunData) -> Figure:
    """The first objective of every evaluation against its index, with the best-so-far line.
    Trained (or evaluated) results are filled dots, cache hits (an architecture evaluated
    before) open circles, candidates pruned at a rung grey triangles at the value they had
    there, and other non-ok results red crosses along the bottom edge."""
    figure, ax = _new_figure(9, 4.8)
    ok = sorted(data.ok, key=lambda r: r["index"])
    trained = [r for r in ok if not r.get("cached")]
    cached = [r for r in ok if r.get("cached")]
    pruned = [r for r in data.not_ok if r.get("status") == PRUNED and r.get("values")
              and not r.get("cached")]
    failed = [r for r in data.not_ok if r not in pruned]
    last = max(r["index"] for r in data.results)
    if trained:
        ax.scatter([r["index"] for r in trained], [value(r) for r in trained], s=20,
                   color="tab:blue", alpha=0.8, zorder=3,
                   label=f"{_done(data)} ({len(trained)})")
    if cached:
        ax.scatter([r["index"] for r in cached], [value(r) for r in cached], s=34,
                   facecolors="none", edgecolors="tab:gray", linewidths=1.0, zorder=3,
                   label=f"cache hit: architecture seen before ({len(cached)})")
    if ok:
        pick = max if data.maximise else min
        xs, ys, best = [], [], value(ok[0])
        for r in ok:
            best = pick(best, value(r))
            xs.append(r["index"])
            ys.append(best)
        ax.step(xs + [last], ys + [ys[-1]], where="post", color="tab:green", lw=2, zorder=2,
                label="best so far")
        top = data.best(1)[0]
        ax.scatter([top["index"]], [value(top)], marker="*", s=220, color="gold",
                   edgecolors="black", linewidths=0.7, zorder=4,
                   label=f"best {value(top):.4f} (evaluation {top['index']})")
        values = [value(r) for r in ok + pruned]
        lo, hi = min(values), max(values)
        span = hi - lo or max(abs(hi), 1.0) * 0.1
        ax.set_ylim(lo - 0.18 * span, hi + 0.12 * span)
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "no evaluation succeeded", transform=ax.transAxes, ha="center",
                va="center", color="tab:red", fontsize=12)
    if pruned:
        ax.scatter([r["index"] for r in pruned], [value(r) for r in pruned], marker="v", s=22,
                   color="tab:gray", alpha=0.7, zorder=3,
                   label=f"pruned at a rung, at its value there ({len(pruned)})")
    if failed:
        statuses = Counter(r.get("status", "?") for r in failed)
        text = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter([r["index"] for r in failed], [0.05] * len(failed), marker="x", s=36,
                   color="tab:red", linewidths=1.5, transform=bottom, zorder=4, clip_on=False,
                   label=f"not ok, drawn at the bottom ({text})")
    _mark_groups(ax, data)
    margin = max(0.5, 0.01 * last)  # the blended failure marks do not widen the axis
    ax.set_xlim(-margin, last + margin)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("evaluation index")
    ax.set_ylabel(data.objective)
    ax.set_title(_title(data))
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return figure


def _mark_groups(ax: Any, data: RunData) -> None:
    """Faint vertical lines where generations start (generational strategies; every k-th one
    when there are more than :data:`MAX_LINES`), or where aging evolution's mutations start
    (after the random initial population), each explained in the legend."""
    strategy = data.config.strategy
    if data.generational and len(data.groups) > 1:
        every = math.ceil((len(data.groups) - 1) / MAX_LINES)
        for g, group in enumerate(data.groups[1:], 1):
            if g % every == 0:
                start = min(r["index"] for r in group.results)
                ax.axvline(start - 0.5, color="gray", lw=0.6, alpha=0.4, zorder=1,
                           label=None if g > every else
                           ("a generation starts" if every == 1
                            else f"a generation starts (one line per {every} generations)"))
    elif STRATEGIES[strategy.name].budget_key == "cycles":  # aging evolution's kind
        population = strategy.population
        if any(r["index"] >= population for r in data.results):
            ax.axvline(population - 0.5, color="gray", lw=0.8, ls="--", alpha=0.7, zorder=1,
                       label="mutations start (after the random population)")


def plot_accuracy_params(data: RunData) -> Optional[Figure]:
    """Accuracy against parameter count (log scale), one point per distinct architecture (its
    first successful evaluation), coloured by evaluation index, with the Pareto front (most
    accurate for at most that many parameters) and the best genome starred. ``None`` when no
    ok result records ``params``."""
    metric, larger = "val_accuracy", True
    if not any(number(r.get("metrics", {}).get(metric)) is not None for r in data.ok):
        metric, larger = data.objective, data.maximise
    points: dict[str, tuple[float, float, int]] = {}
    for r in sorted(data.ok, key=lambda r: r["index"]):
        metrics = r.get("metrics") or {}
        params = number(metrics.get("params"))
        y = number(metrics.get(metric))
        key = r.get("key") or str(r["index"])
        if params is not None and params > 0 and y is not None and key not in points:
            points[key] = (params, y, r["index"])
    if not points:
        return None
    figure, ax = _new_figure(8, 5.2)
    params, values, index = (np.array(v) for v in zip(*points.values()))
    dots = ax.scatter(params, values, c=index, cmap="viridis", s=30, edgecolors="black",
                      linewidths=0.3, zorder=3)
    colorbar = figure.colorbar(dots, ax=ax, label="evaluation index")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    better = values if larger else -values
    order = np.lexsort((-better, params))
    front_x, front_y, best = [], [], -math.inf
    for i in order:
        if better[i] > best:
            best = better[i]
            front_x.append(params[i])
            front_y.append(values[i])
    ax.step(front_x, front_y, where="post", color="tab:orange", lw=1.5, zorder=2,
            label="Pareto front (best for at most this many parameters)")
    top = data.best(1)[0]
    if (top.get("key") or str(top["index"])) in points:
        p, v, i = points[top.get("key") or str(top["index"])]
        ax.scatter([p], [v], marker="*", s=240, color="gold", edgecolors="black", linewidths=0.7,
                   zorder=4, label=f"best (evaluation {i}, {count(p)} params)")
    decades = math.log10(max(params.max(), 1) / max(params.min(), 1))
    if decades >= 1:  # a log axis, its decades labelled (and 2, 5 within, when few)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(FuncFormatter(
            lambda x, _: si(x) if decades < 2 and mantissa(x) in (2, 5) else ""))
        ax.set_xlabel("parameters (log scale)")
    else:  # under a decade a log axis shows one label at most: a linear one reads better
        ax.xaxis.set_major_locator(MaxNLocator(6))
        ax.set_xlabel("parameters")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: si(x)))
    ax.set_ylabel("validation accuracy" if metric == "val_accuracy" else metric)
    ax.set_title(f"{_title(data)}\n{len(points)} distinct architectures")
    ax.grid(alpha=0.3, which="both")
    figure.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return figure


def binned(groups: list[Group], most: int = MAX_GROUPS) -> tuple[list[Group], int]:
    """``groups`` merged into at most ``most`` bins of ``k`` consecutive groups each; returns
    the bins (labelled first-last of the groups' labels) and ``k``."""
    k = max(1, math.ceil(len(groups) / most))
    if k == 1:
        return groups, 1
    bins = []
    for start in range(0, len(groups), k):
        part = groups[start:start + k]
        first, last = part[0].label.split("-")[0], part[-1].label.split("-")[-1]
        bins.append(Group(f"{first}-{last}", [r for g in part for r in g.results],
                          all(g.closed for g in part)))
    return bins, k


def plot_spread(data: RunData) -> Figure:
    """Box plots of the ok values of the first objective in each generation or window
    of results (aging: the population size, so a window is the population at its end; random:
    10), with the points over them and the count of non-ok results in red above each box. A run
    of more than :data:`MAX_GROUPS` groups is shown in bins of consecutive ones."""
    groups, per_bin = binned(data.groups)
    n = len(groups)
    figure, ax = _new_figure(min(16.0, max(6.5, 0.3 * n + 2.5)), 4.8)
    positions = list(range(1, n + 1))
    values = [[value(r) for r in g.results if _is_ok(r)] for g in groups]
    with_values = [(p, v) for p, v in zip(positions, values) if v]
    if with_values:
        ax.boxplot([v for _, v in with_values], positions=[p for p, _ in with_values],
                   widths=0.6, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#cfe2f3", "edgecolor": "#3d6e99"},
                   medianprops={"color": "#b45f06", "lw": 1.8}, zorder=2)
        for p, v in with_values:
            shown = v if len(v) <= 200 else v[:: math.ceil(len(v) / 200)]
            offsets = np.linspace(-0.18, 0.18, len(shown)) if len(shown) > 1 else np.zeros(1)
            ax.scatter(p + offsets, shown, s=10, color="#1f4e79", alpha=0.6, zorder=3)
        flat = [x for _, v in with_values for x in v]
        lo, hi = min(flat), max(flat)
        span = hi - lo or max(abs(hi), 1.0) * 0.1
        ax.set_ylim(lo - 0.1 * span, hi + 0.2 * span)
    top = blended_transform_factory(ax.transData, ax.transAxes)
    for p, g in zip(positions, groups):
        bad = sum(not _is_ok(r) for r in g.results)
        if bad:
            ax.text(p, 0.97, f"{bad} ✗", transform=top, ha="center", va="top", fontsize=8,
                    color="tab:red")
    ax.set_xticks(positions)
    ax.set_xticklabels([g.label + ("*" if not g.closed else "") for g in groups],
                       rotation=0 if n <= 12 else 60, fontsize=8)
    ax.set_xlim(0.3, n + 0.7)
    binned_note = f", {per_bin} per box" if per_bin > 1 else ""
    if data.generational:
        ax.set_xlabel(f"generation{'s' if per_bin > 1 else ''}{binned_note}")
        what = "the population of each generation" if per_bin == 1 else \
            f"every {per_bin} generations"
    else:
        size = len(data.groups[0].results) if data.groups else RANDOM_WINDOW
        ax.set_xlabel(f"evaluations (windows of {size} results{binned_note}, in the order "
                      f"they finished)")
        what = "each window of results" if per_bin == 1 else f"every {per_bin} windows"
    if any(not g.closed for g in groups):
        ax.set_xlabel(ax.get_xlabel() + ";  * still open")
    ax.set_ylabel(data.objective)
    ax.set_title(f"{_title(data)}\n{data.objective} spread of {what}; red: not ok")
    ax.grid(alpha=0.3, axis="y")
    return figure
