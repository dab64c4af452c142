"""Reports people look at: the figures and ``report.md`` of a run, drawings of architectures.

- :func:`report_run` reads a run directory (finished or still running: the journal is enough)
  through :class:`~evolution.record.RunRecord` and writes PNG figures (``figures``) and a
  ``report.md`` (``markdown``) that embeds them into ``RUN_DIR/report/``.
- :func:`draw_genome` draws a genome (object, text form or JSON file) as a PNG and a DOT file;
  :func:`genome_dot` returns the DOT text alone (``drawing``, laid out by ``layout``).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from evolution.report.curves import plot_curves
from evolution.report.data import ReportError, RunData, load_run
from evolution.report.drawing import draw_genome, genome_dot, genome_graph
from evolution.report.figures import plot_accuracy_params, plot_fitness, plot_spread, save
from evolution.report.fronts import plot_front, plot_hypervolume
from evolution.report.markdown import write_markdown
from genome import EvonasError, load_genome

REPORT_DIR = "report"

__all__ = ["REPORT_DIR", "ReportError", "RunData", "draw_genome", "genome_dot", "genome_graph",
           "load_genome", "load_run", "report_run", "show"]


def report_run(run_dir: str | os.PathLike,
               out_dir: Optional[str | os.PathLike] = None) -> list[Path]:
    """Write the figures of a run and ``report.md`` into ``run_dir/report/`` (or
    ``out_dir``).

    Figures (PNG): ``fitness.png`` (every evaluation's first objective against its index, best
    so far, failures and cache hits marked), ``accuracy_params.png`` (accuracy against
    parameter count, one point per distinct architecture; skipped when no result records
    ``params``), ``spread.png`` (spread per generation or window), ``curves.png`` (learning curves of the
    best and the pruned candidates, with the rungs of a multi-fidelity run; skipped when no
    result records a curve of two epochs), and ``best_genome.png`` /
    ``best_genome.dot`` (the best architecture, for encodings that are graphs); with several
    objectives also ``front.png`` (the Pareto front, pair by pair) and ``hypervolume.png``
    (against evaluations, with the reference point). Works on a
    finished run and on one still running (no ``summary.json``). Returns the paths written,
    ``report.md`` last. Raises :class:`ReportError` for a missing run directory or a journal
    without results.
    """
    data = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else data.path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    notes: dict[str, str] = {}
    optional = {  # figures that need something the run may lack: why there is none
        "accuracy_params": (plot_accuracy_params, "No figure of accuracy against parameters: "
                            "no successful evaluation recorded a `params` metric (a user "
                            "evaluator may return one)."),
        "curves": (plot_curves, "No learning curves: no evaluation recorded a curve of two "
                   "epochs or more (older runs record none; a user evaluator records one by "
                   "calling `report(epoch, metrics)`).")}
    written.append(save(plot_fitness(data), out / "fitness.png"))
    for name, (plot, missing) in optional.items():
        figure = plot(data)
        if figure is None:
            notes[name] = missing
        else:
            written.append(save(figure, out / f"{name}.png"))
    written.append(save(plot_spread(data), out / "spread.png"))
    if len(data.record.objectives) > 1:
        for name, figure in (("front", plot_front(data)),
                             ("hypervolume", plot_hypervolume(data))):
            if figure is not None:
                written.append(save(figure, out / f"{name}.png"))
    best = data.best(1)
    if best:
        try:
            written += draw_genome(best[0]["genome"], out, "best_genome")
        except EvonasError as exc:  # a choice genome, or a genome this version cannot read
            notes["best_genome"] = f"The best genome is not drawn: {exc}"
    written.append(write_markdown(data, out, written, notes))
    return written


def show(target: str | os.PathLike, out_dir: Optional[str | os.PathLike] = None,
         name: str = "genome") -> list[Path]:
    """What ``evonas show TARGET`` does: a run directory gets :func:`report_run` (into its
    ``report/``, or ``out_dir``); anything else is a genome for :func:`draw_genome` into
    ``out_dir`` (default: the current directory). A target that looks like a path (it has a
    ``/`` but no ``@``, as cell genomes do) and does not exist is an error saying so."""
    text = os.fspath(target)
    try:
        is_dir = Path(text).is_dir()
    except OSError:  # a name too long to be a path: a (malformed) genome string
        is_dir = False
    if is_dir:
        return report_run(target, out_dir)
    if os.sep in text and "@" not in text and not Path(text).exists():
        raise ReportError(f"{text!r} does not exist; give a run directory (e.g. runs/<name>), "
                          f"a genome string, or a JSON file holding a genome")
    return draw_genome(target, Path(out_dir) if out_dir is not None else Path.cwd(), name)
