"""Reports people look at: plots of a run directory and drawings of architectures.

Two entry points, each a plain function a thin CLI layer can call:

- :func:`report_run` reads a run directory (finished or still running: the journal is enough)
  and writes PNG figures plus a ``report.md`` that embeds them into ``RUN_DIR/report/``.
- :func:`draw_genome` draws a Genetic-CNN or AmoebaNet genome (object, text form or JSON file)
  as a PNG and a DOT file; :func:`genome_dot` returns the DOT text alone.

Figures are made with matplotlib's ``Figure`` and the Agg canvas directly, never through
``pyplot``: nothing global is changed and no display is needed. Graphs are laid out here (layers
by topological generation, crossings reduced by barycenter sweeps, long edges routed through
their own slots), so neither the graphviz program nor its Python bindings are needed; the DOT
file is for people who have graphviz and want its rendering.
"""
from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import networkx as nx
import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory

from evolution.journal import CONFIG, JOURNAL, read_events
from genome import BinaryGenome, CellGenome, ChoiceGenome, EvonasError, GenomeError
from genome import genome_from_dict
from genome.cell import CELLS

log = logging.getLogger(__name__)

REPORT_DIR = "report"
TOP = 10              # rows of the best-genomes table
RANDOM_WINDOW = 10    # results per window of a random search (its strategy's REPORT_EVERY)
STATUS_OK = "ok"
STRATEGY_NAMES = {"genetic": "genetic algorithm", "aging": "aging evolution",
                  "random": "random search"}


class ReportError(EvonasError):
    """A run directory cannot be reported on, or a genome cannot be drawn."""


# =============================================================================== run directory
@dataclass
class RunData:
    """What a run directory holds, read once. ``results`` has one entry per evaluation index
    (journal order: the order the strategy was told); ``groups`` are the generations (genetic)
    or windows (aging, random) as lists of results; ``summary`` is ``None`` while a run is
    unfinished."""

    path: Path
    config: dict[str, Any]
    results: list[dict[str, Any]]
    groups: list["Group"]
    asked: int
    summary: Optional[dict[str, Any]] = None
    best_info: Optional[dict[str, Any]] = None
    first_time: Optional[float] = None
    last_time: Optional[float] = None

    @property
    def strategy(self) -> dict[str, Any]:
        strategy = self.config.get("strategy")
        return strategy if isinstance(strategy, dict) else {}

    @property
    def objective(self) -> str:
        evaluation = self.config.get("evaluation")
        name = evaluation.get("objective") if isinstance(evaluation, dict) else None
        return name or "val_accuracy"

    @property
    def ok(self) -> list[dict[str, Any]]:
        """Results with status ok and a finite fitness."""
        return [r for r in self.results if _is_ok(r)]

    @property
    def not_ok(self) -> list[dict[str, Any]]:
        """Failed, crashed and timed-out results (and any without a finite fitness)."""
        return [r for r in self.results if not _is_ok(r)]


@dataclass
class Group:
    """One generation or window: its label, the results told in it, and whether the strategy
    closed it (an open group is the tail of an unfinished run)."""

    label: str
    results: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = True


def load_run(run_dir: str | os.PathLike) -> RunData:
    """Read ``run_dir`` (config, journal, and summary / best genome when present).

    Raises :class:`ReportError` when the folder or its journal is missing or when no evaluation
    has finished yet. Unknown journal events are ignored; a torn last line (a run writing right
    now) is skipped.
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ReportError(f"run directory {str(path)!r} does not exist; pass the folder a run "
                          f"wrote (e.g. runs/<name>), which holds {JOURNAL}")
    if not (path / JOURNAL).is_file():
        raise ReportError(f"{str(path)!r} has no {JOURNAL}: it is not a run directory (runs "
                          f"write theirs under runs_dir/<name>)")
    config = _read_yaml(path / CONFIG)
    strategy = config.get("strategy") if isinstance(config.get("strategy"), dict) else {}
    kind = strategy.get("name")
    window = (int(strategy["population"]) if kind in ("genetic", "aging")
              and isinstance(strategy.get("population"), int) else RANDOM_WINDOW)

    by_index: dict[int, dict[str, Any]] = {}
    order: list[int] = []
    groups: list[Group] = []
    current: list[int] = []
    asked: set[int] = set()
    times: list[float] = []
    for event in read_events(path)[0]:  # a torn last line (a run writing now) is left out
        kind_of = event.get("event")
        if isinstance(event.get("time"), (int, float)):
            times.append(float(event["time"]))
        if kind_of == "ask" and isinstance(event.get("index"), int):
            asked.add(event["index"])
        elif kind_of == "result" and isinstance(event.get("index"), int):
            index = event["index"]
            if isinstance(event.get("finished"), (int, float)):
                times.append(float(event["finished"]))
            if index not in by_index:  # a replayed duplicate keeps its first place
                order.append(index)
                current.append(index)
            by_index[index] = event
        elif kind_of == "generation" and current:
            groups.append(Group(f"{event.get('generation', len(groups))}", current))
            current = []
        elif kind_of == "window" and current:
            groups.append(Group("", current))
            current = []
    if not order:
        raise ReportError(f"the journal of {str(path)!r} has no results yet: no evaluation has "
                          f"finished; run the report again once one has")
    # results told after the last generation / window event: an unfinished run's tail
    for start in range(0, len(current), window):
        groups.append(Group("", current[start:start + window], closed=False))
    results = [by_index[i] for i in order]
    resolved = []
    for g in groups:
        resolved.append(Group(g.label, [by_index[i] for i in g.results], g.closed))
    _label_groups(resolved, kind)

    summary = _read_json(path / "summary.json")
    best_info = _read_json(path / "best" / "genome.json")
    return RunData(path, config, results, resolved, len(asked | set(order)), summary, best_info,
                   min(times) if times else None, max(times) if times else None)


def _label_groups(groups: list[Group], kind: Optional[str]) -> None:
    """Generation numbers for the GA; evaluation ranges ``first-last`` (1-based) otherwise."""
    if kind == "genetic":
        for g, group in enumerate(groups):
            group.label = group.label if group.closed and group.label else str(g)
        return
    end = 0
    for group in groups:
        group.label = f"{end + 1}-{end + len(group.results)}"
        end += len(group.results)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        log.warning("cannot read %s (%s); reporting without the config", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _read_json(path: Path) -> Optional[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError) as exc:
        log.warning("cannot read %s (%s); ignoring it", path, exc)
        return None
    return data if isinstance(data, dict) else None


def _is_ok(result: Mapping[str, Any]) -> bool:
    return result.get("status") == STATUS_OK and _number(result.get("fitness")) is not None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _rank(result: Mapping[str, Any]) -> tuple:
    """Sort key for "best first": higher fitness, lower validation loss, earlier index."""
    loss = _number(result.get("metrics", {}).get("val_loss"))
    return (-result["fitness"], loss if loss is not None else math.inf, result["index"])


def best_results(data: RunData, top: int = TOP) -> list[dict[str, Any]]:
    """The ``top`` best ok results with distinct canonical keys, best first; for a key
    evaluated several times (cache hits) its best-ranked result counts."""
    best: dict[str, dict[str, Any]] = {}
    for result in data.ok:
        key = result.get("key") or json.dumps(result.get("genome"), sort_keys=True)
        if key not in best or _rank(result) < _rank(best[key]):
            best[key] = result
    return sorted(best.values(), key=_rank)[:top]


# =============================================================================== run report
def report_run(run_dir: str | os.PathLike) -> list[Path]:
    """Write the figures of a run and ``report.md`` into ``run_dir/report/``.

    Figures (PNG): ``fitness.png`` (every evaluation's fitness against its index, best so far,
    failures and cache hits marked), ``accuracy_params.png`` (accuracy against parameter count,
    one point per distinct architecture; skipped when no result records ``params``),
    ``spread.png`` (fitness spread per generation or window), and ``best_genome.png`` /
    ``best_genome.dot`` (the best architecture, binary and cell encodings). Works on a finished
    run and on one still running (no ``summary.json``). Returns the paths written, ``report.md``
    last. Raises :class:`ReportError` for a missing run directory or a journal without results.
    """
    data = load_run(run_dir)
    out = data.path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: dict[str, str] = {}
    written.append(_save(plot_fitness(data), out / "fitness.png"))
    figure = plot_accuracy_params(data)
    if figure is None:
        notes["accuracy_params"] = ("No figure of accuracy against parameters: no successful "
                                    "evaluation recorded a `params` metric (a user evaluator "
                                    "may return one).")
    else:
        written.append(_save(figure, out / "accuracy_params.png"))
    written.append(_save(plot_spread(data), out / "spread.png"))
    best = best_results(data, 1)
    if best:
        try:
            written += draw_genome(best[0]["genome"], out, "best_genome")
        except EvonasError as exc:  # a choice genome, or a genome this version cannot read
            notes["best_genome"] = f"The best genome is not drawn: {exc}"
    written.append(_write_markdown(data, out, written, notes))
    return written


def _save(figure: Figure, path: Path, dpi: float = 110) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi, facecolor="white")
    return path


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def _title(data: RunData) -> str:
    name = data.config.get("name") or data.path.name
    kind = STRATEGY_NAMES.get(data.strategy.get("name"), data.strategy.get("name", "?"))
    state = ", unfinished" if data.summary is None else ""
    return f"run {name}  ({kind}, {len(data.results)} evaluations{state})"


def plot_fitness(data: RunData) -> Figure:
    """Fitness of every evaluation against its index, with the best-so-far line. Trained
    results are filled dots, cache hits (an architecture evaluated before) open circles, and
    non-ok results red crosses along the bottom edge."""
    figure, ax = _new_figure(9, 4.8)
    ok = sorted(data.ok, key=lambda r: r["index"])
    trained = [r for r in ok if not r.get("cached")]
    cached = [r for r in ok if r.get("cached")]
    failed = data.not_ok
    if trained:
        ax.scatter([r["index"] for r in trained], [r["fitness"] for r in trained], s=20,
                   color="tab:blue", alpha=0.8, zorder=3, label=f"trained ({len(trained)})")
    if cached:
        ax.scatter([r["index"] for r in cached], [r["fitness"] for r in cached], s=34,
                   facecolors="none", edgecolors="tab:gray", linewidths=1.0, zorder=3,
                   label=f"cache hit: architecture seen before ({len(cached)})")
    if ok:
        xs, ys, best = [], [], -math.inf
        for r in ok:
            best = max(best, r["fitness"])
            xs.append(r["index"])
            ys.append(best)
        last = max(r["index"] for r in data.results)
        ax.step(xs + [last], ys + [ys[-1]], where="post", color="tab:green", lw=2, zorder=2,
                label="best so far")
        top = min(ok, key=_rank)
        ax.scatter([top["index"]], [top["fitness"]], marker="*", s=220, color="gold",
                   edgecolors="black", linewidths=0.7, zorder=4,
                   label=f"best {top['fitness']:.4g} (evaluation {top['index']})")
        values = [r["fitness"] for r in ok]
        lo, hi = min(values), max(values)
        span = hi - lo or max(abs(hi), 1.0) * 0.1
        ax.set_ylim(lo - 0.18 * span, hi + 0.12 * span)
    else:
        ax.set_ylim(0, 1)
        ax.text(0.5, 0.5, "no evaluation succeeded", transform=ax.transAxes, ha="center",
                va="center", color="tab:red", fontsize=12)
    if failed:
        statuses = Counter(r.get("status", "?") for r in failed)
        text = ", ".join(f"{s} {n}" for s, n in sorted(statuses.items()))
        bottom = blended_transform_factory(ax.transData, ax.transAxes)
        ax.scatter([r["index"] for r in failed], [0.05] * len(failed), marker="x", s=36,
                   color="tab:red", linewidths=1.5, transform=bottom, zorder=4, clip_on=False,
                   label=f"not ok, drawn at the bottom ({text})")
    _mark_groups(ax, data)
    ax.set_xlabel("evaluation index")
    ax.set_ylabel(f"fitness ({data.objective})")
    ax.set_title(_title(data))
    ax.grid(alpha=0.3)
    figure.legend(loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    return figure


def _mark_groups(ax: Any, data: RunData) -> None:
    """Faint vertical lines where generations start (genetic) or where aging evolution's
    mutations start (after the random initial population)."""
    kind = data.strategy.get("name")
    if kind == "genetic" and len(data.groups) > 1:
        for group in data.groups[1:]:
            start = min(r["index"] for r in group.results)
            ax.axvline(start - 0.5, color="gray", lw=0.6, alpha=0.4, zorder=1)
    elif kind == "aging" and isinstance(data.strategy.get("population"), int):
        population = data.strategy["population"]
        if any(r["index"] >= population for r in data.results):
            ax.axvline(population - 0.5, color="gray", lw=0.8, ls="--", alpha=0.7, zorder=1)
            ax.text(population - 0.5, 0.98, " mutations start", transform=blended_transform_factory(
                ax.transData, ax.transAxes), fontsize=8, color="gray", va="top")


def plot_accuracy_params(data: RunData) -> Optional[Figure]:
    """Accuracy against parameter count (log scale), one point per distinct architecture (its
    first successful evaluation), coloured by evaluation index, with the Pareto front (most
    accurate for at most that many parameters) and the best genome starred. ``None`` when no
    ok result records ``params``."""
    metric = "val_accuracy"
    if not any(_number(r.get("metrics", {}).get(metric)) is not None for r in data.ok):
        metric = data.objective
    points: dict[str, tuple[float, float, int]] = {}
    for r in sorted(data.ok, key=lambda r: r["index"]):
        metrics = r.get("metrics") or {}
        params = _number(metrics.get("params"))
        value = _number(metrics.get(metric, r["fitness"] if metric == data.objective else None))
        key = r.get("key") or str(r["index"])
        if params is not None and params > 0 and value is not None and key not in points:
            points[key] = (params, value, r["index"])
    if not points:
        return None
    figure, ax = _new_figure(8, 5.2)
    params, values, index = (np.array(v) for v in zip(*points.values()))
    dots = ax.scatter(params, values, c=index, cmap="viridis", s=30, edgecolors="black",
                      linewidths=0.3, zorder=3)
    colorbar = figure.colorbar(dots, ax=ax, label="evaluation index")
    colorbar.locator = MaxNLocator(integer=True)
    colorbar.update_ticks()
    order = np.lexsort((-values, params))
    front_x, front_y, best = [], [], -math.inf
    for i in order:
        if values[i] > best:
            best = values[i]
            front_x.append(params[i])
            front_y.append(values[i])
    ax.step(front_x, front_y, where="post", color="tab:orange", lw=1.5, zorder=2,
            label="Pareto front (best for at most this many parameters)")
    top = min(data.ok, key=_rank)
    if (top.get("key") or str(top["index"])) in points:
        p, v, i = points[top.get("key") or str(top["index"])]
        ax.scatter([p], [v], marker="*", s=240, color="gold", edgecolors="black", linewidths=0.7,
                   zorder=4, label=f"best fitness (evaluation {i}, {_count(p)} params)")
    ax.set_xscale("log")
    decades = math.log10(max(params.max(), 1) / max(params.min(), 1))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _si(x)))
    ax.xaxis.set_minor_formatter(FuncFormatter(
        lambda x, _: _si(x) if decades < 1.2 and _mantissa(x) in (2, 3, 5) else ""))
    ax.set_xlabel("parameters (log scale)")
    ax.set_ylabel("validation accuracy" if metric == "val_accuracy" else metric)
    ax.set_title(f"{_title(data)}\n{len(points)} distinct architectures")
    ax.grid(alpha=0.3, which="both")
    figure.legend(loc="outside lower center", ncol=2, fontsize=8, frameon=False)
    return figure


def plot_spread(data: RunData) -> Figure:
    """Box plots of the ok fitness in each generation (genetic) or window of results (aging:
    the population size, so a window is the population at its end; random: 10), with the
    points over them and the count of non-ok results in red above each box."""
    groups = data.groups
    n = len(groups)
    figure, ax = _new_figure(min(30.0, max(6.5, 0.45 * n + 2.5)), 4.8)
    positions = list(range(1, n + 1))
    values = [[r["fitness"] for r in g.results if _is_ok(r)] for g in groups]
    with_values = [(p, v) for p, v in zip(positions, values) if v]
    if with_values:
        ax.boxplot([v for _, v in with_values], positions=[p for p, _ in with_values],
                   widths=0.6, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#cfe2f3", "edgecolor": "#3d6e99"},
                   medianprops={"color": "#b45f06", "lw": 1.8}, zorder=2)
        for p, v in with_values:
            offsets = np.linspace(-0.18, 0.18, len(v)) if len(v) > 1 else np.zeros(1)
            ax.scatter(p + offsets, v, s=10, color="#1f4e79", alpha=0.6, zorder=3)
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
    step = max(1, math.ceil(n / 40))
    ax.set_xticks(positions[::step])
    ax.set_xticklabels([g.label + ("*" if not g.closed else "") for g in groups][::step],
                       rotation=0 if n <= 12 else 60, fontsize=8)
    ax.set_xlim(0.3, n + 0.7)
    if data.strategy.get("name") == "genetic":
        ax.set_xlabel("generation")
        what = "population of each generation"
    else:
        size = len(groups[0].results) if groups else RANDOM_WINDOW
        ax.set_xlabel(f"evaluations (windows of {size} results, in the order they finished)")
        what = "each window of results"
    if any(not g.closed for g in groups):
        ax.set_xlabel(ax.get_xlabel() + ";  * still open")
    ax.set_ylabel(f"fitness ({data.objective})")
    ax.set_title(f"{_title(data)}\nfitness spread of {what}; red: not ok")
    ax.grid(alpha=0.3, axis="y")
    return figure


# =============================================================================== report.md
def _write_markdown(data: RunData, out: Path, written: Sequence[Path],
                    notes: Mapping[str, str]) -> Path:
    names = {p.name for p in written}
    lines = [f"# Run report: {data.config.get('name') or data.path.name}", ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in _facts(data)]
    lines += ["", "## Figures", ""]
    figures = [("fitness.png", "Fitness of every evaluation",
                "Dots: trained evaluations; open circles: cache hits (an architecture evaluated "
                "before); red crosses at the bottom: failed, crashed or timed-out evaluations; "
                "green line: best so far; star: best result."),
               ("accuracy_params.png", "Accuracy against parameters",
                "One point per distinct architecture, coloured by when it was found; orange: "
                "the Pareto front."),
               ("spread.png", "Fitness spread per generation / window",
                "Box plots of the successful results in each generation or window; red counts "
                "are non-ok results."),
               ("best_genome.png", "Best architecture",
                "The best genome drawn as a graph (also `best_genome.dot` for graphviz).")]
    for name, heading, caption in figures:
        stem = name.split(".")[0]
        if name in names:
            lines += [f"### {heading}", "", f"![{heading}]({name})", "", caption, ""]
        elif stem in notes:
            lines += [f"### {heading}", "", notes[stem], ""]
    lines += ["## Best genomes", "",
              "Top distinct architectures by fitness (ties: lower validation loss).", "",
              "| rank | index | fitness | params | FLOPs | genome |",
              "| ---: | ---: | ---: | ---: | ---: | --- |"]
    for rank, r in enumerate(best_results(data), 1):
        metrics = r.get("metrics") or {}
        text = _genome_text(r)
        lines.append(f"| {rank} | {r['index']} | {r['fitness']:.4f} | "
                     f"{_count(metrics.get('params'))} | {_si(metrics.get('flops'))} | "
                     f"`{text}` |")
    if not data.ok:
        lines.append("| - | - | - | - | - | no evaluation succeeded |")
    failed = data.not_ok
    if failed:
        lines += ["", "## Failures", "", f"{len(failed)} evaluations were not ok; the first "
                  f"{min(5, len(failed))}:", ""]
        for r in failed[:5]:
            message = (r.get("message") or "").strip().splitlines()
            lines.append(f"- evaluation {r['index']} ({r.get('status', '?')}): "
                         f"{message[0] if message else 'no message'}")
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _facts(data: RunData) -> list[tuple[str, str]]:
    strategy = dict(data.strategy)
    kind = strategy.pop("name", "?")
    facts = [("run directory", f"`{data.path}`"),
             ("status", "finished" if data.summary is not None
              else "unfinished (no summary.json: still running, stopped or interrupted)"),
             ("strategy", f"{kind} ({', '.join(f'{k} {v}' for k, v in strategy.items())})")]
    search = data.config.get("search")
    if isinstance(search, dict):
        facts.append(("search space", ", ".join(f"{k} {v}" for k, v in search.items()
                                                if k in ("encoding", "stages", "blocks",
                                                         "channels", "filters"))
                      or str(search.get("encoding"))))
    evaluation = data.config.get("evaluation") or {}
    if evaluation.get("evaluator"):
        facts.append(("evaluation", f"evaluator `{evaluation['evaluator']}`, objective "
                                    f"{data.objective}"))
    else:
        dataset = (data.config.get("data") or {}).get("dataset", "?")
        facts.append(("evaluation", f"{dataset}, {evaluation.get('epochs', '?')} epochs, "
                                    f"objective {data.objective}"))
    budget = _budget(data.config)
    counts = Counter("cached" if r.get("cached") else "trained" for r in data.results)
    bad = len(data.not_ok)
    facts += [("budget", f"{budget} evaluations" if budget is not None else "unknown"),
              ("evaluations", f"{len(data.results)} finished ({counts['trained']} trained, "
                              f"{counts['cached']} cache hits), {data.asked} asked"),
              ("failures", f"{bad}" + (" (" + ", ".join(
                  f"{s} {n}" for s, n in sorted(Counter(
                      r.get("status", "?") for r in data.not_ok).items()))
                  + ")" if bad else ""))]
    seconds = _number((data.summary or {}).get("seconds"))
    if seconds is not None:
        facts.append(("wall time", f"{seconds:.1f} s"))
    elif data.first_time is not None and data.last_time is not None:
        facts.append(("wall time", f"{data.last_time - data.first_time:.1f} s so far "
                                   f"(first to last journal event)"))
    best = best_results(data, 1)
    if best:
        facts.append(("best", f"fitness {best[0]['fitness']:.4f} at evaluation "
                              f"{best[0]['index']}: `{_genome_text(best[0])}`"))
    final = (data.best_info or {}).get("metrics") or {}
    if _number(final.get("test_accuracy")) is not None:
        facts.append(("best, retrained", f"test accuracy {final['test_accuracy']:.4f}, "
                                         f"validation accuracy "
                                         f"{_number(final.get('val_accuracy')) or 0:.4f}"))
    return facts


def _budget(config: Mapping[str, Any]) -> Optional[int]:
    """The strategy's budget as the config module computes it; ``None`` for a config this
    version cannot validate (an older or newer run directory)."""
    try:
        from evolution.config import config_from_dict

        return int(config_from_dict(dict(config)).strategy.budget)
    except Exception:  # noqa: BLE001 - a report must not fail on an unreadable config
        return None


def _genome_text(result: Mapping[str, Any]) -> str:
    """The genome's text form, ready for a markdown table cell (a pipe would end the cell)."""
    try:
        text = genome_from_dict(result["genome"]).to_string()
    except (EvonasError, KeyError, TypeError):
        text = str(result.get("key", "?"))
    return text.replace("|", "\\|")


def _count(value: Any) -> str:
    number = _number(value)
    return "-" if number is None else f"{int(round(number)):,}"


def _mantissa(x: float) -> int:
    """The leading digit of ``x`` (> 0): 2 for 2000."""
    return int(round(x / 10 ** math.floor(math.log10(x) + 1e-9))) if x > 0 else 0


def _si(value: Any) -> str:
    number = _number(value)
    if number is None:
        return "-"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= scale:
            return f"{number / scale:.3g}{unit}"
    return f"{number:.3g}"


# =============================================================================== genomes
def load_genome(genome: Any) -> BinaryGenome | CellGenome | ChoiceGenome:
    """A genome from what a user may pass: a genome object, a genome dict (or a dict with a
    ``"genome"`` entry, like ``best/genome.json``), the text form of a binary
    (``1-01_1-01-001``) or cell (``op@0+op@1,.../...``) genome, or the path of a JSON file
    holding one of those dicts."""
    if isinstance(genome, (BinaryGenome, CellGenome, ChoiceGenome)):
        return genome
    if isinstance(genome, Mapping):
        data = genome.get("genome", genome)
        return genome_from_dict(data)
    if isinstance(genome, os.PathLike) or (isinstance(genome, str) and (
            genome.strip().endswith(".json") or os.path.isfile(genome))):
        path = Path(genome)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ReportError(f"genome file {str(path)!r} does not exist; pass a genome string "
                              f"or a JSON file such as runs/<name>/best/genome.json") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise ReportError(f"cannot read a genome from {str(path)!r}: {exc}") from None
        if not isinstance(data, Mapping):
            raise ReportError(f"{str(path)!r} holds a JSON {type(data).__name__}; expected a "
                              f"genome dict or a dict with a 'genome' entry")
        return load_genome(data)
    if not isinstance(genome, str):
        raise ReportError(f"expected a genome, genome string or JSON file, got "
                          f"{type(genome).__name__} {genome!r}")
    text = genome.strip()
    if text.startswith("["):
        return ChoiceGenome.from_string(text)
    if "@" in text or "/" in text:
        return CellGenome.from_string(text)
    try:
        return BinaryGenome.from_string(text)
    except GenomeError as exc:
        raise GenomeError(f"{exc}. A cell genome looks like 'sep_conv_3x3@0+identity@1,.../...';"
                          f" a JSON file path must end in .json") from None


@dataclass
class _Graph:
    """A drawable genome: nodes ``id -> (label, role, cluster)``, edges ``(u, v, label,
    style)``, clusters ``id -> title`` in order."""

    title: str
    nodes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, Optional[str], str]] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)


def _binary_graph(genome: BinaryGenome) -> _Graph:
    graph = _Graph(f"Genetic-CNN genome {genome.to_string()}")
    for s, k in enumerate(genome.stages):
        stage = genome.stage_graph(s)
        cluster = f"stage{s + 1}"
        kept = [v for v in stage if stage.nodes[v]["role"] == "node"]
        pruned = [f"v{v}" for v in range(1, k + 1) if v not in stage]
        graph.clusters[cluster] = (f"stage {s + 1}: K={k}"
                                   + (f", pruned {', '.join(pruned)}" if pruned else ""))

        def name(v: int, s: int = s, k: int = k) -> str:
            return f"s{s + 1}_" + ("input" if v == 0 else "output" if v == k + 1 else f"v{v}")

        graph.nodes[name(0)] = ("input", "input", cluster)
        for v in kept:
            graph.nodes[name(v)] = (f"v{v}", "node", cluster)
        graph.nodes[name(k + 1)] = ("output", "output", cluster)
        for u, v in sorted(stage.edges):
            graph.edges.append((name(u), name(v), None, "solid"))
        if s + 1 < len(genome.stages):
            graph.edges.append((name(k + 1), f"s{s + 2}_input", "max pool 2x2", "dashed"))
    return graph


def _cell_graph(genome: CellGenome) -> _Graph:
    graph = _Graph("Cell genome (NASNet / AmoebaNet space)")
    for cell in CELLS:
        blocks = genome.cell(cell)
        outputs = genome.outputs(cell)
        graph.clusters[cell] = f"{cell} cell: {len(blocks)} blocks, output concatenates " + \
            ", ".join(str(s) for s in outputs)
        graph.nodes[f"{cell}_0"] = ("c_{k-2} (0)", "input", cell)
        graph.nodes[f"{cell}_1"] = ("c_{k-1} (1)", "input", cell)
        for i, (a, op_a, b, op_b) in enumerate(blocks):
            target = f"{cell}_{2 + i}"
            graph.nodes[target] = (f"block {i} ({2 + i})", "node", cell)
            graph.edges.append((f"{cell}_{a}", target, op_a, "solid"))
            graph.edges.append((f"{cell}_{b}", target, op_b, "solid"))
        graph.nodes[f"{cell}_out"] = ("concat", "output", cell)
        for state in outputs:
            graph.edges.append((f"{cell}_{state}", f"{cell}_out", None, "solid"))
    return graph


def _genome_graph(genome: Any) -> _Graph:
    genome = load_genome(genome)
    if isinstance(genome, BinaryGenome):
        return _binary_graph(genome)
    if isinstance(genome, CellGenome):
        return _cell_graph(genome)
    raise ReportError(f"a choice genome ({genome.to_string()}) is a vector of values, not a "
                      f"graph, so it cannot be drawn; draw_genome draws binary (Genetic-CNN) "
                      f"and cell (AmoebaNet) genomes")


def _quote(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


ROLE_COLOURS = {"input": "#d9ead3", "node": "#cfe2f3", "output": "#fce5cd"}


def genome_dot(genome: Any) -> str:
    """The DOT text (a ``digraph``, left to right) of a binary or cell genome.

    Every node is declared at the top level with its ``label`` and ``role`` (``input``,
    ``node``, ``output``); each stage or cell is a ``cluster_*`` subgraph listing its nodes; all
    edges are at the top level, op edges labelled with the op name. Node ids: ``s<S>_input``,
    ``s<S>_v<i>``, ``s<S>_output`` (binary); ``<cell>_0``, ``<cell>_1`` (the cell inputs),
    ``<cell>_<2+i>`` (block i), ``<cell>_out`` (the concatenation). Accepts what
    :func:`load_genome` accepts; a choice genome raises :class:`ReportError`.
    """
    graph = _genome_graph(genome)
    lines = [f"digraph {_quote('genome')} {{",
             f"  label={_quote(graph.title)};",
             "  labelloc=t;",
             "  rankdir=LR;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for node, (label, role, _) in graph.nodes.items():
        lines.append(f"  {_quote(node)} [label={_quote(label)}, role={_quote(role)}, "
                     f"fillcolor={_quote(ROLE_COLOURS[role])}];")
    for cluster, title in graph.clusters.items():
        members = [n for n, (_, _, c) in graph.nodes.items() if c == cluster]
        lines.append(f"  subgraph {_quote('cluster_' + cluster)} {{")
        lines.append(f"    label={_quote(title)};")
        lines.append('    style="rounded"; color="gray";')
        lines += [f"    {_quote(n)};" for n in members]
        lines.append("  }")
    for u, v, label, style in graph.edges:
        attributes = []
        if label is not None:
            attributes.append(f"label={_quote(label)}")
        if style != "solid":
            attributes.append(f"style={style}")
        suffix = f" [{', '.join(attributes)}]" if attributes else ""
        lines.append(f"  {_quote(u)} -> {_quote(v)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_genome(genome: Any, out_dir: str | os.PathLike, name: str = "genome") -> list[Path]:
    """Draw a binary or cell genome into ``out_dir/<name>.png`` and ``out_dir/<name>.dot``.

    ``genome``: a genome object, a genome string, a genome dict, or a JSON file (a genome dict
    or a ``best/genome.json`` with a ``"genome"`` entry). Genetic-CNN stages are drawn as DAGs
    (default input, kept nodes, default output; pruned nodes absent), one box per stage, left to
    right with the pooling between stages; cells as DAGs of the two cell inputs, the blocks and
    the concatenated output, ops on the edges, the normal cell above the reduction cell.
    Returns ``[png, dot]``. Raises :class:`ReportError` for a choice genome and
    :class:`~genome.GenomeError` for a malformed genome string.
    """
    graph = _genome_graph(genome)
    dot = genome_dot(genome)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure, dpi = _draw(graph)
    png = _save(figure, out / f"{name}.png", dpi=dpi)
    dot_path = out / f"{name}.dot"
    dot_path.write_text(dot, encoding="utf-8")
    return [png, dot_path]


# =============================================================================== graph drawing
# Units are inches: the figure is made exactly as large as the drawing, so text sizes in points
# and box sizes in inches agree at any graph size.
NODE_FONT = 10.0
EDGE_FONT = 8.5
CLUSTER_FONT = 9.5
NODE_PAD = (0.14, 0.09)   # inches around a node's text (x, y)
LABEL_PAD = (0.06, 0.035)
GAP_X = 0.5               # between the widest items of neighbouring ranks
GAP_Y = 0.16              # between items of one rank
DUMMY_GAP = 0.10          # extra room a bend point of a long edge takes
CLUSTER_PAD = 0.22
TITLE_ROOM = 0.34
ROW_WIDTH = 14.0          # binary stages wrap into a new row past this width (inches)
ROW_GAP = 0.55            # between rows of stages / between cells
OP_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2",
              "#17becf", "#7f7f7f", "#bcbd22", "#393b79"]


def _text_size(text: str, size: float, math_text: bool = False) -> tuple[float, float]:
    """Width and height in inches of ``text`` at ``size`` points."""
    extents = TextPath((0, 0), _mathify(text) if math_text else text, size=size).get_extents()
    return extents.width / 72.0, max(extents.height, size * 0.75) / 72.0


def _mathify(label: str) -> str:
    """``c_{k-2} (0)`` -> ``$c_{k-2}$ (0)`` for matplotlib's mathtext."""
    if label.startswith("c_{"):
        head, _, tail = label.partition(" ")
        return f"${head}$ {tail}"
    return label


@dataclass
class _Item:
    """A node, an edge label or a bend point of a long edge, in one rank of the layout."""

    id: Any
    rank: int
    width: float
    height: float
    kind: str             # node | label | dummy
    y: float = 0.0


def _layout(nodes: Mapping[str, tuple[int, float, float]],
            edges: Sequence[tuple[str, str, Optional[tuple[float, float]]]]
            ) -> tuple[dict[Any, _Item], list[float], list[float], list[list[Any]]]:
    """Layered left-to-right layout (Sugiyama style).

    ``nodes``: id -> (rank, width, height); ``edges``: (u, v, label size or None) with
    rank(v) > rank(u), and rank(v) - rank(u) >= 2 when labelled. An edge spanning several ranks
    gets one item per rank in between (its label sits in the rank before its target), so long
    edges and labels get their own slots. Returns the items, the x and width of each rank, and
    per edge the item ids along it (source, bends..., target).
    """
    items: dict[Any, _Item] = {n: _Item(n, r, w, h, "node") for n, (r, w, h) in nodes.items()}
    chains: list[list[Any]] = []
    for e, (u, v, label) in enumerate(edges):
        chain = [u]
        for r in range(items[u].rank + 1, items[v].rank):
            if label is not None and r == items[v].rank - 1:
                items[("label", e)] = _Item(("label", e), r, label[0], label[1], "label")
                chain.append(("label", e))
            else:
                items[("bend", e, r)] = _Item(("bend", e, r), r, 0.0, 0.0, "dummy")
                chain.append(("bend", e, r))
        chain.append(v)
        chains.append(chain)
    ranks = max(item.rank for item in items.values()) + 1
    layers: list[list[Any]] = [[] for _ in range(ranks)]
    for item in items.values():
        layers[item.rank].append(item.id)
    up: dict[Any, list[Any]] = defaultdict(list)
    down: dict[Any, list[Any]] = defaultdict(list)
    for chain in chains:
        for a, b in zip(chain, chain[1:]):
            down[a].append(b)
            up[b].append(a)

    # order within ranks: barycenter sweeps, keeping the order with the fewest crossings
    def crossings(order: list[list[Any]]) -> int:
        total = 0
        for r in range(ranks - 1):
            pos_a = {n: i for i, n in enumerate(order[r])}
            pos_b = {n: i for i, n in enumerate(order[r + 1])}
            segs = [(pos_a[a], pos_b[b]) for a in order[r] for b in down[a] if b in pos_b]
            total += sum(1 for i, (a1, b1) in enumerate(segs) for a2, b2 in segs[i + 1:]
                         if (a1 - a2) * (b1 - b2) < 0)
        return total

    def sweep(order: list[list[Any]], downward: bool) -> list[list[Any]]:
        order = [list(layer) for layer in order]
        rng = range(1, ranks) if downward else range(ranks - 2, -1, -1)
        for r in rng:
            ref = {n: i for i, n in enumerate(order[r - 1 if downward else r + 1])}
            neighbours = up if downward else down
            keyed = []
            for i, n in enumerate(order[r]):
                pos = [ref[m] for m in neighbours[n] if m in ref]
                keyed.append((sum(pos) / len(pos) if pos else i, i, n))
            order[r] = [n for _, _, n in sorted(keyed, key=lambda t: (t[0], t[1]))]
        return order

    order = [list(layer) for layer in layers]
    best, best_crossings = order, crossings(order)
    for i in range(16):
        order = sweep(order, downward=i % 2 == 0)
        c = crossings(order)
        if c < best_crossings:
            best, best_crossings = order, c
        if best_crossings == 0:
            break
    order = best

    # y: pull every item toward its neighbours, keeping order and minimum gaps (isotonic fit)
    def gap(a: _Item, b: _Item) -> float:
        room = (a.height + b.height) / 2
        if a.kind == "dummy" or b.kind == "dummy":
            return room + DUMMY_GAP
        return room + GAP_Y

    for layer in order:
        y = 0.0
        for i, n in enumerate(layer):
            if i:
                y -= gap(items[layer[i - 1]], items[n])
            items[n].y = y
    for it in range(40):
        rng = range(ranks) if it % 2 == 0 else range(ranks - 1, -1, -1)
        for r in rng:
            layer = order[r]
            if not layer:
                continue
            desired, weights = [], []
            for n in layer:
                ys = [items[m].y for m in up[n] + down[n]]
                weight = 1.0 if items[n].kind == "node" else 2.0  # straighten long edges
                desired.append(sum(ys) / len(ys) if ys else items[n].y)
                weights.append(weight if ys else 0.1)
            gaps = [gap(items[a], items[b]) for a, b in zip(layer, layer[1:])]
            for n, y in zip(layer, _ordered_fit(desired, weights, gaps)):
                items[n].y = y
    # straighten: a run of bends (and its label) moves to one y, the target's or the source's,
    # wherever that keeps every item of the run clear of its neighbours in their ranks
    position = {n: (r, i) for r, layer in enumerate(order) for i, n in enumerate(layer)}

    def fits(n: Any, y: float) -> bool:
        r, i = position[n]
        layer = order[r]
        above = i == 0 or items[layer[i - 1]].y - gap(items[layer[i - 1]], items[n]) >= y
        below = (i == len(layer) - 1
                 or items[layer[i + 1]].y + gap(items[n], items[layer[i + 1]]) <= y)
        return above and below

    for chain in chains:
        run = chain[1:-1]
        if not run:
            continue
        for y in (items[chain[-1]].y, items[chain[0]].y):
            if all(fits(n, y) for n in run):
                for n in run:
                    items[n].y = y
                break
    # x: ranks as wide as their widest item
    widths = [max((items[n].width for n in layer), default=0.0) for layer in order]
    xs, x = [], 0.0
    for r, w in enumerate(widths):
        if r:
            x += widths[r - 1] / 2 + GAP_X + w / 2
        xs.append(x)
    return items, xs, widths, chains


def _ordered_fit(desired: Sequence[float], weights: Sequence[float],
                 gaps: Sequence[float]) -> list[float]:
    """The y closest (weighted least squares) to ``desired`` with y[i] - y[i+1] >= gaps[i]
    (items go downwards in their order): pool-adjacent-violators on y[i] + offset[i]."""
    offsets = [0.0]
    for g in gaps:
        offsets.append(offsets[-1] + g)
    # z[i] = y[i] + offsets[i] must be non-increasing
    blocks: list[list[float]] = []  # [weighted sum, weight, count]
    for d, w, o in zip(desired, weights, offsets):
        blocks.append([(d + o) * w, w, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] < blocks[-1][0] / blocks[-1][1]:
            s, wt, c = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += wt
            blocks[-1][2] += c
    z = [b[0] / b[1] for b in blocks for _ in range(b[2])]
    return [zi - o for zi, o in zip(z, offsets)]


def _draw(graph: _Graph) -> tuple[Figure, float]:
    """Lay out each stage or cell on its own, arrange them (cells one above the other; stages
    left to right, wrapping into rows past ``ROW_WIDTH`` inches), then draw nodes, edges, labels,
    cluster boxes and the links between stages at 1 data unit = 1 inch."""
    colours = _op_colours(graph)
    is_cell = all(cluster in CELLS for cluster in graph.clusters)
    drawings = []
    for cluster in graph.clusters:
        members = [n for n, (_, _, c) in graph.nodes.items() if c == cluster]
        inner = set(members)
        edges = [e for e in graph.edges if e[0] in inner and e[1] in inner]
        drawings.append(_place(graph, members, edges, cluster, spaced=is_cell))
    links = [e for e in graph.edges if graph.nodes[e[0]][2] != graph.nodes[e[1]][2]]
    link_w = max((_text_size(e[2], EDGE_FONT)[0] for e in links if e[2]), default=0.0) + 0.9
    # rows of drawings: (drawing, dx, dy)
    rows: list[list[Any]] = [[]]
    x = 0.0
    for d in drawings:
        w = d["x1"] - d["x0"]
        if is_cell or (rows[-1] and x + link_w + w > ROW_WIDTH):
            rows.append([])
            x = 0.0
        elif rows[-1]:
            x += link_w
        rows[-1].append([d, x - d["x0"], 0.0])
        x += w
    rows = [row for row in rows if row]
    width = max(row[-1][1] + row[-1][0]["x1"] for row in rows)
    y_cursor = 0.0
    for row in rows:
        top = max(d["y1"] - (d["y1"] + d["y0"]) / 2 for d, _, _ in row)
        bottom = min(d["y0"] - (d["y1"] + d["y0"]) / 2 for d, _, _ in row)
        shift = (width - row[-1][1] - row[-1][0]["x1"]) / 2 if is_cell else 0.0
        for placed in row:
            d = placed[0]
            placed[1] += shift
            placed[2] = y_cursor - top - (d["y1"] + d["y0"]) / 2
        y_cursor += bottom - top - ROW_GAP
    margin, title_h = 0.3, 0.45
    total_h = -y_cursor - ROW_GAP + 2 * margin + title_h
    total_w = width + 2 * margin
    fig_w, fig_h = max(total_w, 4.5), max(total_h, 2.4)
    figure = Figure(figsize=(fig_w, fig_h))
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    x_lo = -margin - (fig_w - total_w) / 2
    y_hi = title_h + margin + (fig_h - total_h) / 2
    ax.set_xlim(x_lo, x_lo + fig_w)
    ax.set_ylim(y_hi - fig_h, y_hi)
    ax.text(width / 2, (margin + title_h) / 2, graph.title, ha="center", va="center",
            fontsize=12, fontweight="bold")
    where: dict[str, tuple[float, float, float]] = {}  # node -> x, y, width on the page
    for row in rows:
        for d, dx, dy in row:
            _render(ax, graph, d, dx, dy, colours)
            for n, item in d["items"].items():
                if n in graph.nodes:
                    where[n] = (d["xs"][item.rank] + dx, item.y + dy, item.width)
    row_of = {n: r for r, row in enumerate(rows) for d, _, _ in row for n in d["items"]}
    for u, v, label, style in links:
        _link(ax, where[u], where[v], label, style,
              wrap=row_of[u] != row_of[v],
              y_gap=min(where[u][1], min(d["y0"] + dy for d, _, dy in rows[row_of[u]]))
              - ROW_GAP / 2)
    dpi = min(130.0, 4800.0 / max(fig_w, fig_h))
    return figure, dpi


def _link(ax: Any, source: tuple[float, float, float], target: tuple[float, float, float],
          label: Optional[str], style: str, wrap: bool, y_gap: float) -> None:
    """An edge between two stages: straight (an S-curve) within a row; from the end of one row
    down and back to the start of the next when the stages wrapped."""
    (xu, yu, wu), (xv, yv, wv) = source, target
    x0, x1 = xu + wu / 2, xv - wv / 2
    if wrap:
        out, back = x0 + CLUSTER_PAD + 0.2, x1 - CLUSTER_PAD - 0.2
        verts = [(x0, yu), (out, yu), (out, y_gap), (back, y_gap), (back, yv), (x1, yv)]
        codes = [MplPath.MOVETO] + [MplPath.LINETO] * 5
        at = ((out + back) / 2, y_gap)
    else:
        mid = (x1 - x0) / 2
        verts = [(x0, yu), (x0 + mid, yu), (x1 - mid, yv), (x1, yv)]
        codes = [MplPath.MOVETO] + [MplPath.CURVE4] * 3
        at = ((x0 + x1) / 2, (yu + yv) / 2)
    ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>",
                                 mutation_scale=11, color="#555555", lw=1.2,
                                 linestyle="--" if style == "dashed" else "-", shrinkA=0,
                                 shrinkB=0, zorder=1))
    if label:
        ax.text(*at, label, ha="center", va="center", fontsize=EDGE_FONT, color="#333333",
                zorder=3, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "#777777",
                                "lw": 0.7})


def _op_colours(graph: _Graph) -> dict[str, str]:
    from genome.cell import NASNET_OPS

    ops = list(NASNET_OPS) + sorted({e[2] for e in graph.edges if e[2]} - set(NASNET_OPS))
    return {op: OP_COLOURS[i % len(OP_COLOURS)] for i, op in enumerate(ops)}


def _place(graph: _Graph, members: list[str], edges: list, cluster: str,
           spaced: bool) -> dict[str, Any]:
    """Lay out one stage or cell: ranks from topological generations (doubled when op labels
    need a rank of their own), then :func:`_layout`. Returns the items, rank xs and widths,
    chains, the cluster box and the bounding box (box plus title)."""
    dag = nx.DiGraph()
    dag.add_nodes_from(members)
    dag.add_edges_from((u, v) for u, v, _, _ in edges)
    ranks = {n: (2 * g if spaced else g)
             for g, layer in enumerate(nx.topological_generations(dag)) for n in layer}
    sizes = {}
    for n in members:
        w, h = _text_size(graph.nodes[n][0], NODE_FONT, math_text=True)
        sizes[n] = (ranks[n], max(w + 2 * NODE_PAD[0], 0.55), h + 2 * NODE_PAD[1] + 0.06)
    layout_edges = []
    for u, v, label, _ in edges:
        if label is None:
            layout_edges.append((u, v, None))
        else:
            w, h = _text_size(label, EDGE_FONT)
            layout_edges.append((u, v, (w + 2 * LABEL_PAD[0], h + 2 * LABEL_PAD[1])))
    items, xs, widths, chains = _layout(sizes, layout_edges)
    x0 = min(xs[i.rank] - i.width / 2 for i in items.values()) - CLUSTER_PAD
    x1 = max(xs[i.rank] + i.width / 2 for i in items.values()) + CLUSTER_PAD
    y0 = min(i.y - i.height / 2 for i in items.values()) - CLUSTER_PAD
    y1 = max(i.y + i.height / 2 for i in items.values()) + CLUSTER_PAD
    title_w = _text_size(graph.clusters[cluster], CLUSTER_FONT)[0] + 0.2
    if x1 - x0 < title_w:  # widen the box to its title, drawing centred
        x0, x1 = (x0 + x1 - title_w) / 2, (x0 + x1 + title_w) / 2
    return {"items": items, "xs": xs, "widths": widths, "chains": chains, "edges": edges,
            "boxes": {cluster: (x0, x1, y0, y1)}, "x0": x0, "x1": x1, "y0": y0,
            "y1": y1 + TITLE_ROOM}


def _render(ax: Any, graph: _Graph, d: Mapping[str, Any], dx: float, dy: float,
            colours: Mapping[str, str]) -> None:
    items, xs, widths = d["items"], d["xs"], d["widths"]

    def at(n: Any) -> tuple[float, float]:
        return xs[items[n].rank] + dx, items[n].y + dy

    for cluster, (x0, x1, y0, y1) in d["boxes"].items():
        ax.add_patch(FancyBboxPatch((x0 + dx, y0 + dy), x1 - x0, y1 - y0,
                                    boxstyle="round,pad=0,rounding_size=0.12", fc="#f7f7f7",
                                    ec="#999999", lw=0.8, zorder=0))
        ax.text(x0 + dx + 0.1, y1 + dy + 0.06, graph.clusters[cluster], ha="left",
                va="bottom", fontsize=CLUSTER_FONT, color="#333333")
    # ports: spread the edges leaving / entering a node over its side, ordered by direction
    outgoing: dict[Any, list[int]] = defaultdict(list)
    incoming: dict[Any, list[int]] = defaultdict(list)
    for e, chain in enumerate(d["chains"]):
        outgoing[chain[0]].append(e)
        incoming[chain[-1]].append(e)
    port: dict[tuple[int, int], float] = {}
    for table, side, nxt in ((outgoing, 0, 1), (incoming, -1, -2)):
        for n, es in table.items():
            es = sorted(es, key=lambda e: (-items[d["chains"][e][nxt]].y, e))
            h = items[n].height * 0.6
            for k, e in enumerate(es):
                port[(e, side)] = (h / 2 - h * (k + 0.5) / len(es)) if len(es) > 1 else 0.0
    for e, chain in enumerate(d["chains"]):
        u, v, label, style = d["edges"][e]
        colour = colours.get(label, "#555555") if label and style == "solid" else "#555555"
        # straight through every rank (where nodes and labels are), curved only in the gaps
        x, y = at(chain[0])
        rank_half = widths[items[chain[0]].rank] / 2
        y += port[(e, 0)]
        points = [(x + items[chain[0]].width / 2, y), (x + rank_half, y)]
        for n in chain[1:-1]:
            x, y = at(n)
            rank_half = widths[items[n].rank] / 2
            points += [(x - rank_half, y), (x + rank_half, y)]
        x, y = at(chain[-1])
        rank_half = widths[items[chain[-1]].rank] / 2
        y += port[(e, -1)]
        points += [(x - rank_half, y), (x - items[chain[-1]].width / 2, y)]
        points = [p for i, p in enumerate(points) if i == 0 or p != points[i - 1]]
        verts, codes = [points[0]], [MplPath.MOVETO]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if abs(y1 - y0) < 1e-9:
                verts.append((x1, y1))
                codes.append(MplPath.LINETO)
            else:
                mid = (x1 - x0) / 2
                verts += [(x0 + mid, y0), (x1 - mid, y1), (x1, y1)]
                codes += [MplPath.CURVE4] * 3
        ax.add_patch(FancyArrowPatch(path=MplPath(verts, codes), arrowstyle="-|>",
                                     mutation_scale=11, color=colour, lw=1.2,
                                     linestyle="--" if style == "dashed" else "-",
                                     shrinkA=0, shrinkB=0, zorder=1))
        if label is not None:
            x, y = at(("label", e)) if ("label", e) in items else (
                (points[0][0] + points[-1][0]) / 2, (points[0][1] + points[-1][1]) / 2)
            ax.text(x, y, label, ha="center", va="center", fontsize=EDGE_FONT, color=colour,
                    zorder=3, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": colour,
                                    "lw": 0.7})
    for n, (label, role, _) in graph.nodes.items():
        if n not in items:
            continue
        x, y = at(n)
        w, h = items[n].width, items[n].height
        ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h,
                                    boxstyle="round,pad=0,rounding_size=0.08",
                                    fc=ROLE_COLOURS[role], ec="#444444", lw=1.0, zorder=4))
        ax.text(x, y, _mathify(label), ha="center", va="center", fontsize=NODE_FONT, zorder=5)


# =============================================================================== dispatch
def show(target: str | os.PathLike, out_dir: Optional[str | os.PathLike] = None,
         name: str = "genome") -> list[Path]:
    """What ``evonas show TARGET`` does: a run directory gets :func:`report_run` (into its
    ``report/``); anything else is a genome for :func:`draw_genome` into ``out_dir`` (default:
    the current directory)."""
    if Path(target).is_dir():
        return report_run(target)
    return draw_genome(target, Path(out_dir) if out_dir is not None else Path.cwd(), name)
