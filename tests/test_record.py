"""The one reader of a run directory and the one definition of "best": status, the report and
export rank a run's results identically, ties included; older journals read the same way."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from evolution.config import config_from_dict
from evolution.export import ranked_results
from evolution.journal import RunDirectory
from evolution.record import RunRecord
from evolution.report import report_run
from evolution.status import run_status

# (values, val_loss) per evaluation; several exact ties on the objective
OUTCOMES = [((0.5,), 0.9), ((0.75,), 0.4), ((0.75,), 0.3), ((0.75,), 0.3), ((0.9,), None),
            (None, None), ((0.75,), None), ((0.9,), 0.8), ((0.2,), 0.1)]
EXPECTED = [7, 4, 2, 3, 1, 6, 0, 8]  # 0.9 (loss 0.8 < none), 0.75 (0.3, 0.3, 0.4, none), ...


def hand_made(tmp_path: Path, direction: str = "max", fitness_field: bool = False) -> Path:
    """A run directory written through RunDirectory, with the OUTCOMES above (evaluation 5
    failed; all genomes distinct). ``fitness_field``: a format-1 journal (one ``fitness``)."""
    config = config_from_dict({
        "runs_dir": str(tmp_path / "runs"), "name": "ties",
        "search": {"encoding": "choice", "choices": [list(range(10))]},
        "strategy": {"name": "random", "evaluations": len(OUTCOMES)},
        "objectives": [{"metric": "score", "direction": direction}],
        "evaluation": {"evaluator": "bench:score"}})
    with RunDirectory.create(config.runs_dir, config.name, config.to_dict(), exact=True) as rd:
        for i, (values, loss) in enumerate(OUTCOMES):
            genome = {"encoding": "choice", "values": [i]}
            rd.append({"event": "ask", "index": i, "ticket": i, "seed": i, "genome": genome,
                       "key": f"[{i}]", "time": float(i)})
            metrics = {} if values is None else {"score": values[0]}
            if loss is not None:
                metrics["val_loss"] = loss
            event = {"event": "result", "index": i, "genome": genome, "key": f"[{i}]",
                     "seed": i, "status": "ok" if values else "failed", "metrics": metrics,
                     "message": "" if values else "boom", "cached": False,
                     "started": float(i), "finished": i + 0.5}
            if fitness_field:
                event["fitness"] = values[0] if values else None
            else:
                event["values"] = list(values) if values else None
            rd.append(event)
        return rd.path


def test_status_report_and_export_rank_ties_alike(tmp_path):
    run_dir = hand_made(tmp_path)
    record = RunRecord(run_dir)
    assert [r["index"] for r in record.best()] == EXPECTED
    assert [b["index"] for b in run_status(run_dir, top=20)["best"]] == EXPECTED
    assert [r["index"] for r in ranked_results(run_dir)] == EXPECTED
    report_run(run_dir)
    table = (run_dir / "report" / "report.md").read_text()
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \|", table, re.M)
    assert [int(index) for _, index, _ in rows] == EXPECTED


def test_a_minimised_objective_ranks_the_smallest_first(tmp_path):
    record = RunRecord(hand_made(tmp_path, direction="min"))
    assert [r["values"][0] for r in record.best()] == sorted(
        v[0] for v, _ in OUTCOMES if v is not None)
    assert record.best(1)[0]["index"] == 8


def test_format_1_journals_are_read_as_values(tmp_path):
    record = RunRecord(hand_made(tmp_path, fitness_field=True))
    assert [r["index"] for r in record.best()] == EXPECTED
    assert record.results[5]["values"] is None and record.results[0]["values"] == [0.5]
    assert "fitness" not in record.results[0]


def test_counts_state_and_in_flight(tmp_path):
    run_dir = hand_made(tmp_path)
    with open(run_dir / "journal.jsonl", "a") as f:
        f.write(json.dumps({"event": "ask", "index": 9, "genome": {}, "key": "x"}) + "\n")
    record = RunRecord(run_dir)
    assert record.counts() == {"evaluations": 9, "trained": 9, "cache_hits": 0, "skipped": 0,
                               "infeasible": 0, "failures": 1, "pruned": 0, "epochs": 0,
                               "statuses": {"ok": 8, "failed": 1}}
    assert record.in_flight == [9] and record.state == "stopped" and not record.is_finished


def test_missing_run_directories_are_clear_errors(tmp_path):
    from evolution.journal import RunDirectoryError

    with pytest.raises(RunDirectoryError, match="does not exist"):
        RunRecord(tmp_path / "nowhere")
    with pytest.raises(RunDirectoryError, match="has no journal.jsonl"):
        RunRecord(tmp_path)
