"""Learning curves where users look: ``curves.png`` and the Learning curves section of
``report.md`` (rungs, promotions, prunings, rank correlation), and ``evonas status``'s rungs;
all on run directories written by hand (no training)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection

from evolution.config import config_from_dict
from evolution.curves import curve_metric, points, rung_table, spearman
from evolution.journal import RunDirectory
from evolution.record import RunRecord
from evolution.report import load_run, report_run
from evolution.report.curves import MAX_CURVES, plot_curves
from evolution.status import run_status

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def lines_of(figure, what: str) -> LineCollection:
    """The figure's collection of faint or grey curves whose legend label starts with
    ``what``."""
    found = [c for c in figure.axes[0].collections if isinstance(c, LineCollection)
             and c.get_label().startswith(what)]
    assert len(found) == 1, [c.get_label() for c in figure.axes[0].collections]
    return found[0]


def config(tmp_path: Path, name: str, fidelity: dict | None = None, epochs: int = 9,
           evaluator: str | None = None, objective: str = "val_accuracy") -> dict:
    evaluation = {"epochs": epochs, "objective": objective}
    if evaluator:
        evaluation["evaluator"] = evaluator
    return {"runs_dir": str(tmp_path / "runs"), "name": name, "seed": 1,
            "search": {"encoding": "choice", "choices": [[0, 1]] * 12},
            "strategy": {"name": "random", "evaluations": 1000},
            "evaluation": evaluation,
            **({"fidelity": fidelity} if fidelity else {})}


def genome(i: int) -> dict:
    return {"encoding": "choice", "values": [int(b) for b in f"{i:012b}"]}


def curve(i: int, upto: int, metric: str = "val_accuracy", gap: int | None = None) -> list:
    """A rising curve to epoch ``upto``, different per candidate; ``None`` at epoch ``gap``."""
    out = []
    for epoch in range(1, upto + 1):
        value = 1 - 0.5 / (epoch + i % 7)
        point = {"epoch": epoch, metric: None if epoch == gap else value}
        if metric == "val_accuracy":
            point.update({"train_loss": 1 / epoch, "val_loss": 1.5 / epoch})
        out.append(point)
    return out


class Journal:
    """Writes a run directory's journal event by event, as the run loop would."""

    def __init__(self, tmp_path: Path, name: str, **kw):
        cfg = config_from_dict(config(tmp_path, name, **kw))
        self.rd = RunDirectory.create(cfg.runs_dir, cfg.name, cfg.to_dict(), exact=True)
        self.rd.__enter__()

    def ask(self, i: int) -> None:
        self.rd.append({"event": "ask", "index": i, "ticket": i, "seed": i,
                        "genome": genome(i), "key": str(i), "time": float(i)})

    def rung(self, i: int, rung: int, value: float, epochs: int, **kw) -> None:
        self.rd.append({"event": "rung", "index": i, "genome": genome(i), "key": str(i),
                        "seed": i, "values": [value], "metrics": {"val_accuracy": value},
                        "message": f"promoted at epoch {rung}", "curve": curve(i, rung),
                        "epochs": epochs, "rung": rung, "cached": False, **kw})

    def result(self, i: int, status: str, value: float | None, epochs: int,
               curve_: list | None = None, **kw) -> None:
        self.rd.append({"event": "result", "index": i, "genome": genome(i), "key": str(i),
                        "seed": i, "status": status,
                        "values": [value] if value is not None else None,
                        "metrics": {"val_accuracy": value} if value is not None else {},
                        "message": "", "cached": False, "epochs": epochs,
                        "started": float(i), "finished": i + 0.5,
                        **({"curve": curve_} if curve_ is not None else {}), **kw})

    def close(self) -> Path:
        self.rd.__exit__(None, None, None)
        return self.rd.path


ASHA = {"rule": "asha", "min_epochs": 1, "eta": 3}


def asha_run(tmp_path: Path) -> Path:
    """Seven candidates under ASHA with rungs at 1, 3 and 9 epochs: 0-4 promoted at 1, 5 and 6
    pruned there; 0-3 promoted at 3, 4 pruned there; 0-3 finish; 7 is a cache hit of 0.

    Ranks over the finished 0-3: at rung 1 (0.5, 0.4, 0.3, 0.2) -> 4 3 2 1, finals (0.90,
    0.95, 0.80, 0.70) -> 3 4 2 1: rho = 1 - 6 * 2 / (4 * 15) = 0.8. At rung 3 (0.8, 0.9, 0.7,
    0.7) -> 3 4 1.5 1.5 (a tie: average ranks): rho = 4.5 / sqrt(4.5 * 5) = 3 / sqrt(10)."""
    j = Journal(tmp_path, "asha", fidelity=ASHA)
    for i in range(8):
        j.ask(i)
    at1, at3, final = [0.5, 0.4, 0.3, 0.2, 0.45], [0.8, 0.9, 0.7, 0.7, 0.6], \
        [0.90, 0.95, 0.80, 0.70]
    for i in range(5):
        j.rung(i, 1, at1[i], epochs=1)
    j.result(5, "pruned", 0.1, 1, curve(5, 1), rung=1)
    j.result(6, "pruned", 0.15, 1, curve(6, 1), rung=1)
    for i in range(4):
        j.rung(i, 3, at3[i], epochs=2)
    j.result(4, "pruned", at3[4], 2, curve(4, 3, gap=2), rung=3)
    for i in range(4):
        j.result(i, "ok", final[i], 6, curve(i, 9))
    j.result(7, "ok", final[0], 0, curve(0, 9), cached=True)
    return j.close()


# --------------------------------------------------------------------------- reading curves
def test_spearman_of_a_hand_computed_case_with_ties():
    assert spearman([0.5, 0.4, 0.3, 0.2], [0.90, 0.95, 0.80, 0.70]) == pytest.approx(0.8)
    assert spearman([0.8, 0.9, 0.7, 0.7], [0.90, 0.95, 0.80, 0.70]) == \
        pytest.approx(3 / math.sqrt(10))
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1)
    assert spearman([1, 2], [1, 2]) is None          # two pairs always give +-1
    assert spearman([1, 1, 1], [1, 2, 3]) is None     # no ranking on one side


def test_the_curve_metric_and_points_with_gaps(tmp_path):
    record = RunRecord(asha_run(tmp_path))
    assert curve_metric(record) == "val_accuracy"     # the first objective, in the points
    epochs, values = points({"curve": curve(4, 3, gap=2)}, "val_accuracy")
    assert epochs == [1, 2, 3] and math.isnan(values[1]) and values[2] == 1 - 0.5 / 7
    # unordered points come back in epoch order; points without the metric are left out
    assert points({"curve": [{"epoch": 2, "m": 2.0}, {"epoch": 1, "m": 1.0},
                             {"epoch": 3, "x": 0.0}]}, "m") == ([1, 2], [1.0, 2.0])
    # a user evaluator reporting its own metric; an objective the curves lack: val_ first
    j = Journal(tmp_path, "user", evaluator="x:y", objective="params")
    j.ask(0)
    j.result(0, "ok", 5.0, 0, [{"epoch": 1, "loss": 2.0, "val_score": 0.5},
                               {"epoch": 2, "loss": 1.0, "val_score": 0.7}])
    assert curve_metric(RunRecord(j.close())) == "val_score"


def test_rung_table_counts_and_rank_correlations(tmp_path):
    table = rung_table(RunRecord(asha_run(tmp_path)))
    assert [(r.epochs, r.reached, r.promoted, r.pruned, r.pairs) for r in table] == \
        [(1, 7, 5, 2, 4), (3, 5, 4, 1, 4), (9, 4, None, None, 0)]
    assert table[0].spearman == pytest.approx(0.8)
    assert table[1].spearman == pytest.approx(3 / math.sqrt(10))
    assert table[2].top and table[2].spearman is None


def test_status_has_the_rungs(tmp_path):
    status = run_status(asha_run(tmp_path))
    assert [(r["epochs"], r["reached"], r["promoted"], r["pruned"]) for r in status["rungs"]] \
        == [(1, 7, 5, 2), (3, 5, 4, 1), (9, 4, None, None)]
    assert status["rungs"][0]["spearman"] == pytest.approx(0.8)
    assert status["pruned"] == 3 and status["epochs"] == 5 * 1 + 4 * 2 + 4 * 6 + 2 * 1 + 2


# --------------------------------------------------------------------------- the report
def test_report_of_a_multi_fidelity_run_draws_curves_and_tables_the_rungs(tmp_path):
    run_dir = asha_run(tmp_path)
    paths = report_run(run_dir)
    out = run_dir / "report"
    assert out / "curves.png" in paths
    png = out / "curves.png"
    assert png.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(png)
    assert 300 <= image.shape[1] <= 5000 and image[..., :3].var() > 0
    text = (out / "report.md").read_text()
    assert "| epochs trained | 41; 3 candidates pruned at a rung |" in text
    section = text.split("## Learning curves", 1)[1].split("\n## ", 1)[0]
    assert "![Learning curves](curves.png)" in section
    assert "rungs at 1, 3, 9 epochs; 3 candidates pruned, 41 epochs trained in all" in section
    rows = re.findall(r"^\| (\d+)(?: \(top\))? \| (\d+)(?: finished)? \| (\S+) \| (\S+) \| "
                      r"(.+) \|$", section, re.M)
    assert rows == [("1", "7", "5", "2", "+0.800 (4 finished)"),
                    ("3", "5", "4", "1", f"+{3 / math.sqrt(10):.3f} (4 finished)"),
                    ("9", "4", "-", "-", "-")]


def test_the_curves_figure_shows_best_pruned_and_rungs(tmp_path):
    figure = plot_curves(load_run(asha_run(tmp_path)))
    FigureCanvasAgg(figure).draw()
    ax = figure.axes[0]
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    # the best finished first, labelled by evaluation index; the cache hit is not drawn again
    assert labels[:1] == ["pruned at a rung (3)"]
    assert labels[1:5] == ["evaluation 1 (val_accuracy 0.9500)",
                           "evaluation 0 (val_accuracy 0.9000)",
                           "evaluation 2 (val_accuracy 0.8000)",
                           "evaluation 3 (val_accuracy 0.7000)"]
    assert "rungs (asha) at 1, 3 epochs" in labels
    verticals = sorted(line.get_xdata()[0] for line in ax.get_lines()
                       if line.get_linestyle() == ":")
    assert verticals == [1, 3]
    grey = lines_of(figure, "pruned")
    assert len([c for c in ax.collections if isinstance(c, LineCollection)]) == 1
    # candidate 4's curve has no value at epoch 2: two pieces; 5 and 6 a single point each
    assert sorted(len(s) for s in grey.get_segments()) == [1, 1, 1, 1]
    ends = [c for c in ax.collections if not isinstance(c, LineCollection)]
    assert sorted(map(tuple, ends[0].get_offsets().tolist())) == \
        sorted([(1.0, 1 - 0.5 / 6), (1.0, 1 - 0.5 / 7), (3.0, 1 - 0.5 / 7)])


def test_thousands_of_pruned_curves_are_sampled_and_the_legend_says_so(tmp_path):
    j = Journal(tmp_path, "many", fidelity=ASHA)
    n = 600
    for i in range(n):
        j.ask(i)
        if i % 100 == 0:
            j.rung(i, 1, 0.5, 1)
        else:
            j.result(i, "pruned", 0.2, 1, curve(i, 3), rung=3)
    for i in range(0, n, 100):
        j.result(i, "ok", 0.9 + i / 1e5, 8, curve(i, 9))
    figure = plot_curves(load_run(j.close()))
    grey = lines_of(figure, "pruned")
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert len(grey.get_segments()) == MAX_CURVES
    assert len(lines_of(figure, "other finished").get_segments()) == 1  # evaluation 0
    assert f"pruned at a rung ({MAX_CURVES} of {n - 6} drawn, sampled evenly)" in labels
    assert sum(label.startswith("evaluation ") for label in labels) == 5
    assert labels.index("evaluation 500 (val_accuracy 0.9050)") < \
        labels.index("evaluation 100 (val_accuracy 0.9010)")
    # sampling is deterministic: the same curves on a second drawing
    again = lines_of(plot_curves(load_run(j.rd.path)), "pruned")
    assert all(np.array_equal(a, b) for a, b in zip(grey.get_segments(),
                                                    again.get_segments()))


def test_a_full_fidelity_run_with_curves_has_a_figure_and_no_rung_table(tmp_path):
    j = Journal(tmp_path, "full", epochs=4, evaluator="x:y", objective="score")
    for i in range(4):
        j.ask(i)
        j.result(i, "ok", 0.5 + i / 10, 0, curve(i, 4, metric="score"))
    run_dir = j.close()
    assert (run_dir / "report" / "curves.png") in report_run(run_dir)
    assert rung_table(RunRecord(run_dir)) == [] and run_status(run_dir)["rungs"] == []
    text = (run_dir / "report" / "report.md").read_text()
    assert "![Learning curves](curves.png)" in text and "| rung (epochs) |" not in text
    figure = plot_curves(load_run(run_dir))
    assert not [line for line in figure.axes[0].get_lines() if line.get_linestyle() == ":"]
    assert figure.axes[0].get_ylabel() == "score"


@pytest.mark.parametrize("curves", ["none", "one epoch"])
def test_a_run_without_curves_has_no_curves_figure(tmp_path, curves):
    j = Journal(tmp_path, "old", epochs=1)
    for i in range(3):
        j.ask(i)
        j.result(i, "ok", 0.5 + i / 10, 1, None if curves == "none" else curve(i, 1))
    j.result(3, "failed", None, 0)
    run_dir = j.close()
    paths = report_run(run_dir)
    assert not (run_dir / "report" / "curves.png").exists()
    assert "curves.png" not in {p.name for p in paths}
    text = (run_dir / "report" / "report.md").read_text()
    assert "## Learning curves\n\nNo learning curves: no evaluation recorded a curve" in text
    assert plot_curves(load_run(run_dir)) is None
    assert json.loads(json.dumps(run_status(run_dir)["rungs"])) == []


# --------------------------------------------------------------------------- a real run
def test_report_of_a_real_asha_run_agrees_with_its_journal(tiny, user_module):
    """An instant evaluator reporting ``quality * e / (e + 1)`` at epoch ``e``: the values at
    every rung rank candidates exactly as the final ones, so each rung's rho is 1."""
    from evolution import run
    from tests.test_fidelity import EVALUATOR, config as fidelity_config

    plugin = user_module("curve_bench", EVALUATOR) + ":score"
    run_dir = run(fidelity_config(tiny, plugin)).run_dir
    assert (run_dir / "report" / "curves.png") in report_run(run_dir)
    record = RunRecord(run_dir)
    table = rung_table(record)
    assert [r.epochs for r in table] == [1, 3, 9]
    results = [r for r in record.results if not r.get("cached")]
    for rung in table[:-1]:
        assert rung.promoted == sum(e["rung"] == rung.epochs for e in record.rungs)
        assert rung.pruned == sum(r["status"] == "pruned" and r["rung"] == rung.epochs
                                  for r in results)
        assert rung.reached == rung.promoted + rung.pruned
        assert rung.pairs >= 3 and rung.spearman == pytest.approx(1.0)
    assert table[0].reached == len(results) and table[1].reached == table[0].promoted
    assert sum(r.pruned for r in table[:-1]) == record.counts()["pruned"] > 0
    assert table[-1].reached == len([r for r in results if r["status"] == "ok"])
    figure = plot_curves(load_run(run_dir))
    assert figure.axes[0].get_ylabel() == "score"
    assert lines_of(figure, "pruned").get_label() == \
        f"pruned at a rung ({record.counts()['pruned']})"
