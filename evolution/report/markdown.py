"""``report.md``: a run's facts, its figures, its learning curves (with what happened at each
rung of a multi-fidelity run), the Pareto front (several objectives), the best distinct
architectures, the infeasible and failed evaluations."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from evolution.constraints import Constraints
from evolution.curves import rung_table
from evolution.report.data import RunData, count, genome_text, number, si
from evolution.results import INFEASIBLE, is_failure
from evolution.strategies import STRATEGIES
from genome import EvonasError, genome_from_dict, get_encoding

TOP = 10              # rows of the best-genomes table

FIGURES = [("fitness.png", "Every evaluation",
            "Dots: trained evaluations; open circles: cache hits (an architecture evaluated "
            "before); red crosses at the bottom: failed, crashed or timed-out evaluations; "
            "green line: best so far; star: best result."),
           ("accuracy_params.png", "Accuracy against parameters",
            "One point per distinct architecture, coloured by when it was found; orange: "
            "the Pareto front."),
           ("spread.png", "Spread per generation / window",
            "Box plots of the successful results in each generation or window; red counts "
            "are non-ok results."),
           ("front.png", "Pareto front",
            "Every distinct successful architecture for each pair of objectives; orange: the "
            "run's Pareto front over all objectives; red cross: the hypervolume's reference "
            "point."),
           ("hypervolume.png", "Hypervolume",
            "The hypervolume of the front after each generation or window, against the "
            "reference point in its title."),
           ("best_genome.png", "Best architecture",
            "The best genome drawn as a graph (also `best_genome.dot` for graphviz).")]


def write_markdown(data: RunData, out: Path, written: Sequence[Path],
                   notes: Mapping[str, str]) -> Path:
    """Write ``out/report.md`` embedding the figures in ``written``; ``notes`` says why a
    figure is missing (by file stem)."""
    names = {p.name for p in written}
    objectives = data.record.objectives
    lines = [f"# Run report: {data.config.name or data.path.name}", ""]
    lines += ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in facts(data)]
    lines += ["", "## Figures", ""]
    for name, heading, caption in FIGURES:
        stem = name.split(".")[0]
        if name in names:
            lines += [f"### {heading}", "", f"![{heading}]({name})", "", caption, ""]
        elif stem in notes:
            lines += [f"### {heading}", "", notes[stem], ""]
    lines += learning_curves(data, names, notes)
    metrics = [o.metric for o in objectives]
    if len(objectives) > 1:
        front = data.record.front()
        lines += ["## Pareto front", "",
                  f"{len(front)} distinct architectures no other dominates, with the "
                  f"evaluation that found each.", "",
                  "| evaluation | " + " | ".join(metrics) + " | genome |",
                  "| ---: | " + " | ".join("---:" for _ in metrics) + " | --- |"]
        lines += [f"| {r['index']} | " + " | ".join(f"{v:.6g}" for v in r["values"])
                  + f" | `{genome_text(r)}` |" for r in front]
        lines.append("")
    lines += ["## Best genomes", "",
              f"Top distinct architectures by {objectives} (ties: lower validation loss, then "
              f"the earlier evaluation).", "",
              "| rank | index | " + " | ".join(metrics) + " | params | FLOPs | genome |",
              "| ---: | ---: | " + " | ".join("---:" for _ in metrics) + " | ---: | ---: | --- |"]
    for rank, r in enumerate(data.best(TOP), 1):
        m = r.get("metrics") or {}
        values = " | ".join(f"{v:.4f}" for v in r["values"])
        lines.append(f"| {rank} | {r['index']} | {values} | {count(m.get('params'))} | "
                     f"{si(m.get('flops'))} | `{genome_text(r)}` |")
    if not data.ok:
        lines.append("| - | - | " + " | ".join("-" for _ in metrics)
                     + " | - | - | no evaluation succeeded |")
    failed = [r for r in data.not_ok if is_failure(r.get("status", "?"))]
    infeasible = [r for r in data.not_ok if r.get("status") == INFEASIBLE]
    if infeasible:
        lines += ["", "## Infeasible", "", f"{len(infeasible)} evaluations broke a constraint "
                  f"({config_constraints(data)}); the first {min(5, len(infeasible))}:", ""]
        lines += [f"- evaluation {r['index']}: {r.get('message', '')}" for r in infeasible[:5]]
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


CURVES_CAPTION = (
    "The curve of each candidate, epoch by epoch: in colour the best finished candidates "
    "(labelled by evaluation index), faint blue the other finished ones, grey the pruned ones, "
    "each ending with a dot at the rung where it was stopped; dotted lines mark the rungs.")


def learning_curves(data: RunData, names: set[str], notes: Mapping[str, str]) -> list[str]:
    """The Learning curves section: ``curves.png`` (or why there is none) and, for a
    multi-fidelity run, what happened at each rung."""
    lines = ["## Learning curves", ""]
    if "curves.png" in names:
        lines += ["![Learning curves](curves.png)", "", CURVES_CAPTION, ""]
    elif "curves" in notes:
        lines += [notes["curves"], ""]
    table = rung_table(data.record)
    if not table:
        return lines
    fidelity = data.config.fidelity
    counts = data.record.counts()
    lines += [f"Multi-fidelity rule `{fidelity.rule}` (eta {fidelity.eta}): rungs at "
              f"{', '.join(str(r.epochs) for r in table)} epochs; {counts['pruned']} candidates "
              f"pruned, {counts['epochs']:,} epochs trained in all.", "",
              "| rung (epochs) | reached | promoted | pruned | rank correlation with the "
              "final value |", "| ---: | ---: | ---: | ---: | --- |"]
    for rung in table:
        if rung.top:
            lines.append(f"| {rung.epochs} (top) | {rung.reached} finished | - | - | - |")
            continue
        rho = (f"{rung.spearman:+.3f} ({rung.pairs} finished)" if rung.spearman is not None
               else f"- ({rung.pairs} finished)")
        lines.append(f"| {rung.epochs} | {rung.reached} | {rung.promoted} | {rung.pruned} | "
                     f"{rho} |")
    lines += ["", f"Rank correlation: Spearman's rho between {data.objective} at the rung and "
                  f"at the end, over the candidates that finished (at least 3 are needed). Near "
                  f"1, the rung ranks candidates as full training does and stopping there is "
                  f"safe; near 0 or below, early values say little about final ones. Only "
                  f"candidates promoted at a rung finish, so it is measured on the better "
                  f"ones.", ""]
    return lines


def config_constraints(data: RunData) -> str:
    return str(Constraints.from_config(data.config))


def _named(config: Any, result: Mapping[str, Any]) -> Optional[dict[str, Any]]:
    """The result's genome as ``{name: value}`` where the space names its dimensions."""
    try:
        genome = genome_from_dict(result["genome"])
        return get_encoding(config.search.encoding).named(genome, config.search)
    except (EvonasError, KeyError, TypeError, ValueError):
        return None


def facts(data: RunData) -> list[tuple[str, str]]:
    """The table at the top of ``report.md``."""
    config = data.config
    strategy = config.strategy.model_dump(mode="json")
    kind = strategy.pop("name")
    out = [("run directory", f"`{data.path}`"),
           ("status", "finished" if data.summary is not None
            else "unfinished (no summary.json: still running, stopped or interrupted)"),
           ("strategy", f"{kind}, {STRATEGIES[kind].title} "
                        f"({', '.join(f'{k} {v}' for k, v in strategy.items())})")]
    search = config.search.model_dump(mode="json")
    out.append(("search space", ", ".join(f"{k} {v}" for k, v in search.items()
                                          if k in ("encoding", "stages", "blocks", "channels",
                                                   "filters"))))
    if search["encoding"] == "tuned":
        arch = config.search.architecture
        out[-1] = ("search space", ", ".join(f"{k} {v}" for k, v in arch.items()
                                             if k in ("encoding", "stages", "blocks",
                                                      "channels", "filters"))
                   + "; searched settings: " + "; ".join(config.search.space.describe()))
    elif search.get("params"):
        out[-1] = ("search space", f"{config.search.encoding}: "
                                   + "; ".join(config.search.space.describe()))
    objectives = data.record.objectives
    if config.evaluation.evaluator:
        out.append(("evaluation", f"evaluator `{config.evaluation.evaluator}`, objectives "
                                  f"{objectives}"))
    else:
        out.append(("evaluation", f"{config.data.dataset}, {config.evaluation.epochs} epochs, "
                                  f"objectives {objectives}"))
    counts = data.record.counts()
    bad = counts["failures"]
    failures = Counter(s for s in (r.get("status", "?") for r in data.not_ok) if is_failure(s))
    out += [("budget", f"{config.strategy.budget} architectures trained"),
            ("evaluations", f"{counts['evaluations']} finished ({counts['trained']} trained, "
                            f"{counts['cache_hits']} cache hits), "
                            f"{len(data.record.asks)} asked"),
            ("failures", f"{bad}" + (" (" + ", ".join(
                f"{s} {n}" for s, n in sorted(failures.items())) + ")" if bad else ""))]
    if counts["epochs"]:
        budget = config.fidelity.budget_epochs
        out.append(("epochs trained", f"{counts['epochs']:,}"
                    + (f" of fidelity.budget_epochs {budget:,}" if budget else "")
                    + (f"; {counts['pruned']} candidates pruned at a rung"
                       if counts["pruned"] else "")))
    if config.constraints:
        out.append(("constraints", f"{config_constraints(data)}: {counts['infeasible']} "
                                   f"infeasible ({counts['skipped']} refused before training)"))
    hypervolumes = data.record.hypervolumes()
    if hypervolumes:
        reference = ", ".join(f"{o.metric} {v:.6g}"
                              for o, v in zip(objectives, data.record.reference))
        out.append(("hypervolume", f"{hypervolumes[-1][1]:.6g} after {hypervolumes[-1][0]} "
                                   f"evaluations ({hypervolumes[0][1]:.6g} after the first "
                                   f"{hypervolumes[0][0]}); reference point {reference}"))
    seconds = number((data.summary or {}).get("seconds"))
    times = data.record.times()
    if seconds is not None:
        out.append(("wall time", f"{seconds:.1f} s"))
    elif times:
        out.append(("wall time", f"{max(times) - min(times):.1f} s so far (first to last "
                                 f"journal event)"))
    best = data.best(1)
    if best:
        values = ", ".join(f"{o.metric} {v:.4f}" for o, v in zip(objectives, best[0]["values"]))
        out.append(("best", f"{values} at evaluation {best[0]['index']}: "
                            f"`{genome_text(best[0])}`"))
        named = _named(config, best[0])
        if named:
            out.append(("best parameters", ", ".join(f"{k} {v!r}" for k, v in named.items())))
    final = data.record.final
    if number(final.get("test_accuracy")) is not None:
        out.append(("best, retrained", f"test accuracy {final['test_accuracy']:.4f}, "
                                       f"validation accuracy "
                                       f"{number(final.get('val_accuracy')) or 0:.4f}"))
    return out
