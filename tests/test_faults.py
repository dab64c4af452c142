"""Faults injected for real into run directories: journals cut after every line, foreign and
damaged snapshots, edited configs, blank lines, missing journals. A resumed deterministic run
must write the journal an uninterrupted one writes; damage that cannot be repaired is refused
with a message that says where."""
from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest

from evolution import resume, run
from evolution.config import config_from_dict
from evolution.journal import (IDENTITY, JOURNAL, SNAPSHOT, RunDirectory, RunDirectoryError,
                               atomic_write, read_journal)
from evolution.strategies import STRATEGIES

EVALUATOR = '''
def score(genome, settings):
    """Deterministic, instant; a small space, so architectures repeat (cache hits)."""
    values = list(genome.values)
    return {"score": (7 * values[0] + 3 * values[1] + values[2]) / 27.0}
'''
SMALL = {"encoding": "choice", "choices": [[0, 1, 2]] * 3}
STRATEGY = {"genetic": {"name": "genetic", "population": 6, "generations": 5,
                        "p_crossover": 0.5, "p_mutation": 0.9, "q_mutation": 0.3},
            "aging": {"name": "aging", "population": 6, "sample": 3, "cycles": 30},
            "random": {"name": "random", "evaluations": 30}}


@pytest.fixture
def plugin(user_module):
    return user_module("fault_bench", EVALUATOR) + ":score"


def config(tiny, plugin, name, strategy="aging", **changes):
    data = {**tiny, "name": name, "search": SMALL, "strategy": STRATEGY[strategy],
            "evaluation": {"evaluator": plugin, "objective": "score"},
            # three evaluations outstanding: asks run ahead of results, as with three workers
            "pool": {"backend": "serial", "workers": 3},
            "deterministic": True, "snapshot_every": 3, **changes}
    return config_from_dict(data)


def trace(run_dir: Path) -> list[tuple]:
    """Everything a run's history is: asks, results and the strategy's events, in order."""
    out = []
    for e in read_journal(run_dir):
        if e["event"] == "ask":
            out.append(("ask", e["index"], e["ticket"], json.dumps(e["genome"]), e["seed"]))
        elif e["event"] == "result":
            out.append(("result", e["index"], e["status"], e["values"], e["cached"],
                        e.get("cache_of")))
        elif e["event"] in ("generation", "window"):
            out.append((e["event"], e.get("generation"), e.get("evaluations"), e["best"]))
    return out


def reference(tiny, plugin, name, strategy, monkeypatch):
    """An uninterrupted run, and every snapshot it wrote (by the journal lines it covers)."""
    snapshots: dict[int, str] = {}
    real = RunDirectory.write_snapshot

    def keep(self, state):
        real(self, state)
        text = (self.path / SNAPSHOT).read_text()
        snapshots[json.loads(text)["lines"]] = text

    monkeypatch.setattr(RunDirectory, "write_snapshot", keep)
    summary = run(config(tiny, plugin, name, strategy))
    monkeypatch.setattr(RunDirectory, "write_snapshot", real)
    return summary.run_dir, snapshots


def cut(source: Path, target: Path, lines: int, snapshot: str | None) -> Path:
    """A copy of ``source`` as a crash after its first ``lines`` journal lines would leave it,
    with ``snapshot`` as its ``state.json`` (or none)."""
    target.mkdir(parents=True)
    for name in ("config.yaml", IDENTITY):
        shutil.copy(source / name, target / name)
    kept = (source / JOURNAL).read_bytes().splitlines(keepends=True)[:lines]
    (target / JOURNAL).write_bytes(b"".join(kept))
    if snapshot is not None:
        (target / SNAPSHOT).write_text(snapshot)
    return target


@pytest.mark.slow
@pytest.mark.parametrize("strategy", list(STRATEGY))
def test_a_run_cut_after_every_journal_line_resumes_to_the_uninterrupted_journal(
        tiny, plugin, strategy, tmp_path, monkeypatch):
    assert set(STRATEGY) == set(STRATEGIES), "every registered strategy needs a case here"
    source, snapshots = reference(tiny, plugin, f"ref-{strategy}", strategy, monkeypatch)
    expected = trace(source)
    assert any(e[0] == "result" and e[4] for e in expected), "the space must repeat genomes"
    total = len((source / JOURNAL).read_bytes().splitlines())
    for lines in range(1, total):
        # alternate: the latest snapshot covering at most the cut, or none (whole replay)
        usable = [n for n in snapshots if n <= lines]
        snapshot = snapshots[max(usable)] if usable and lines % 2 else None
        copy = cut(source, tmp_path / f"cut-{lines}", lines, snapshot)
        resume(copy)
        assert trace(copy) == expected, f"cut after line {lines} (snapshot: {bool(snapshot)})"


def test_a_snapshot_of_another_run_is_ignored(tiny, plugin, tmp_path, monkeypatch, caplog):
    ours, _ = reference(tiny, plugin, "ours", "aging", monkeypatch)
    theirs, snapshots = reference(tiny, plugin, "theirs", "aging", monkeypatch)
    expected = trace(ours)
    lines = max(snapshots)  # a snapshot whose line count fits our cut exactly
    copy = cut(ours, tmp_path / "cut", lines, snapshots[lines])
    with caplog.at_level("WARNING"):
        resume(copy)
    assert "belongs to another run" in caplog.text
    assert trace(copy) == expected


def test_a_snapshot_of_an_edited_journal_is_ignored(tiny, plugin, tmp_path, monkeypatch, caplog):
    source, snapshots = reference(tiny, plugin, "src", "random", monkeypatch)
    lines = max(snapshots)
    copy = cut(source, tmp_path / "cut", lines, snapshots[lines])
    journal = (copy / JOURNAL).read_bytes()
    (copy / JOURNAL).write_bytes(journal.replace(b'"seed":', b'"seed": ', 1))  # same lines
    with caplog.at_level("WARNING"):
        resume(copy)
    assert "not this journal" in caplog.text


def test_an_edited_config_is_refused_listing_the_keys(tiny, plugin, monkeypatch):
    source, _ = reference(tiny, plugin, "edited", "aging", monkeypatch)
    text = (source / "config.yaml").read_text()
    (source / "config.yaml").write_text(text.replace("seed: 3", "seed: 4")
                                        .replace("population: 6", "population: 7"))
    before = (source / JOURNAL).read_bytes()
    with pytest.raises(RunDirectoryError, match=r"changed after the run started, in: seed, "
                                                r"strategy.population"):
        resume(source)
    assert (source / JOURNAL).read_bytes() == before


def test_extending_updates_the_frozen_config_and_an_extended_run_resumes(tiny, plugin,
                                                                        monkeypatch):
    source, _ = reference(tiny, plugin, "longer", "aging", monkeypatch)
    done = resume(source, extend=40)
    assert done.evaluations == 46
    frozen = json.loads((source / IDENTITY).read_text())["config"]
    assert frozen["strategy"]["cycles"] == 40
    assert resume(source).evaluations == 46  # config.yaml and run.json agree


@pytest.mark.parametrize("damage, message", [
    (lambda lines: lines[:3] + [b"\n"] + lines[3:], "line 4: a blank line"),
    (lambda lines: lines[:2] + [b'{"event": "ask"\n'] + lines[2:], "line 3: not an event"),
    (lambda lines: lines[:2] + [b"[1, 2]\n"] + lines[2:], "line 3: not an event"),
])
def test_damage_inside_the_journal_is_refused_with_its_byte_offset(tiny, plugin, monkeypatch,
                                                                   damage, message):
    source, _ = reference(tiny, plugin, "damaged", "random", monkeypatch)
    lines = (source / JOURNAL).read_bytes().splitlines(keepends=True)
    (source / JOURNAL).write_bytes(b"".join(damage(lines)))
    offset = sum(len(line) for line in damage(lines)[:int(message.split()[1].rstrip(":")) - 1])
    with pytest.raises(RunDirectoryError, match=f"damaged at byte {offset} \\({message}"):
        resume(source)


def test_a_missing_journal_beside_a_snapshot_is_refused(tiny, plugin, monkeypatch):
    source, _ = reference(tiny, plugin, "lost", "random", monkeypatch)
    (source / JOURNAL).unlink()
    with pytest.raises(RunDirectoryError, match="journal.jsonl is missing or empty, but "
                                                "state.json says the run had started"):
        resume(source)


def test_a_lost_generation_event_is_written_on_resume(tiny, plugin, tmp_path, monkeypatch):
    source, _ = reference(tiny, plugin, "gen", "genetic", monkeypatch)
    lines = (source / JOURNAL).read_bytes().splitlines(keepends=True)
    first = next(i for i, line in enumerate(lines) if b'"event":"generation"' in line)
    copy = cut(source, tmp_path / "cut", first, None)  # died between result and event
    resume(copy)
    events = [e for e in read_journal(copy) if e["event"] == "generation"]
    assert [e["generation"] for e in events] == list(range(6))
    assert trace(copy) == trace(source)


def test_files_written_atomically_get_the_umasks_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "a.json", lambda f: f.write("{}"))
        assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write(tmp_path / "b.json", lambda f: f.write("{}"))
        assert stat.S_IMODE((tmp_path / "b.json").stat().st_mode) == 0o600
    finally:
        os.umask(old)
