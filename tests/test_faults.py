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
    return {"score": (7 * values[0] + 3 * values[1] + values[2]) / 27.0,
            "size": 1 + values[0] * values[0] + values[1] + values[2]}
'''
SMALL = {"encoding": "choice", "choices": [[0, 1, 2]] * 3}
STRATEGY = {"genetic": {"name": "genetic", "population": 6, "generations": 5,
                        "p_crossover": 0.5, "p_mutation": 0.9, "q_mutation": 0.3},
            "aging": {"name": "aging", "population": 6, "sample": 3, "cycles": 30},
            "nsga2": {"name": "nsga2", "population": 8, "generations": 4},
            "nsga3": {"name": "nsga3", "population": 8, "generations": 4, "divisions": 3},
            "pareto_aging": {"name": "pareto_aging", "population": 6, "sample": 3,
                             "cycles": 30},
            "random": {"name": "random", "evaluations": 30},
            "local": {"name": "local", "evaluations": 30}}
SEVERAL = {"objectives": [{"metric": "score", "direction": "max"},
                          {"metric": "size", "direction": "min"}],
           "constraints": {"size": {"max": 6}}}
"""What the multi-objective strategies search: two objectives, and a constraint that makes
some genomes infeasible."""


@pytest.fixture
def plugin(user_module):
    return user_module("fault_bench", EVALUATOR) + ":score"


def config(tiny, plugin, name, strategy="aging", **changes):
    several = STRATEGIES[strategy].multi_objective and strategy != "random"
    data = {**tiny, "name": name, "search": SMALL, "strategy": STRATEGY[strategy],
            "evaluation": {"evaluator": plugin, **({} if several else {"objective": "score"})},
            **(SEVERAL if several else {}),
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
        elif e["event"] == "rung":  # multi-fidelity: a promotion
            out.append(("rung", e["index"], e["rung"], e["values"], e["epochs"]))
        elif e["event"] in ("generation", "window"):
            out.append((e["event"], e.get("generation"), e.get("evaluations"), e["best"],
                        e["failures"], e["infeasible"], e.get("front"), e.get("hypervolume"),
                        e.get("reference")))
    return out


def recorded(run_config, monkeypatch):
    """An uninterrupted run of ``run_config``, and every snapshot it wrote (by the journal
    lines it covers)."""
    snapshots: dict[int, str] = {}
    real = RunDirectory.write_snapshot

    def keep(self, state):
        real(self, state)
        text = (self.path / SNAPSHOT).read_text()
        snapshots[json.loads(text)["lines"]] = text

    monkeypatch.setattr(RunDirectory, "write_snapshot", keep)
    summary = run(run_config)
    monkeypatch.setattr(RunDirectory, "write_snapshot", real)
    return summary.run_dir, snapshots


def reference(tiny, plugin, name, strategy, monkeypatch):
    return recorded(config(tiny, plugin, name, strategy), monkeypatch)


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
    if STRATEGIES[strategy].multi_objective and strategy != "random":
        assert any(e[0] == "result" and e[2] == "infeasible" for e in expected)
        assert any(e[0] in ("generation", "window") and e[7] for e in expected)  # hypervolume
    assert_every_cut_resumes(source, snapshots, expected, tmp_path)


def assert_every_cut_resumes(source: Path, snapshots: dict[int, str], expected: list[tuple],
                             tmp_path: Path) -> None:
    """Cut ``source`` after every journal line, alternately with the latest snapshot covering
    at most the cut or none (a whole replay), resume each copy, and require ``expected``."""
    total = len((source / JOURNAL).read_bytes().splitlines())
    for lines in range(1, total):
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
    # 27 architectures exist: all are trained, then repeats (free) until the cap, 2 x 46
    assert (done.trained, done.evaluations) == (27, 92)
    frozen = json.loads((source / IDENTITY).read_text())["config"]
    assert frozen["strategy"]["cycles"] == 40
    assert resume(source).evaluations == 92  # config.yaml and run.json agree


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


# --------------------------------------------------------------------------- folders
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from training.folders import replace_dir

def build(tmp):
    (tmp / "half.txt").write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)  # killed while the folder is being written

replace_dir(Path(sys.argv[1]), build, owned=lambda p: True)
"""


def test_a_killed_folder_writer_leaves_the_old_folder_and_its_leftovers_are_removed(tmp_path):
    import subprocess
    import sys

    from training.folders import replace_dir

    target = tmp_path / "export"
    replace_dir(target, lambda tmp: (tmp / "v1.txt").write_text("one"), owned=lambda p: True)
    done = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)])
    assert done.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".export.")]
    assert len(left) == 1 and left[0].endswith(".tmp")  # what the killed writer left
    assert (target / "v1.txt").read_text() == "one"  # the old folder is whole
    replace_dir(target, lambda tmp: (tmp / "v2.txt").write_text("two"), owned=lambda p: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # leftovers removed
    assert [p.name for p in target.iterdir()] == ["v2.txt"]


def test_a_swap_interrupted_between_two_renames_is_restored(tmp_path):
    from training.folders import clean_leftovers

    old = tmp_path / ".export.old-1a2b3c4d"  # the first rename done, the second not
    old.mkdir()
    (old / "model.txt").write_text("kept")
    clean_leftovers(tmp_path / "export")
    assert (tmp_path / "export" / "model.txt").read_text() == "kept" and not old.exists()


# --------------------------------------------------------------------------- the command line
def evonas(*args, cwd, preexec=None, stdin=None, timeout=300):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "evolution.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout, preexec_fn=preexec,
                          stdin=stdin)


def one_line_error(done, code: int, *needles: str) -> None:
    """The command failed with ``code`` and one ``evonas: error:`` message (a config's may list
    several keys below it), no traceback."""
    assert done.returncode == code, (done.returncode, done.stderr[-2000:])
    errors = [line for line in done.stderr.splitlines() if line.startswith("evonas: error:")]
    assert len(errors) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    message = done.stderr[done.stderr.index("evonas: error:"):]
    for needle in needles:
        assert needle in message, message


@pytest.mark.slow
def test_a_file_size_limit_hit_mid_run_is_one_line_and_the_run_resumes_whole(
        tiny, plugin, write_config, tmp_path):
    import resource
    import signal

    path = write_config({**tiny, "search": SMALL, "strategy": STRATEGY["aging"],
                         "evaluation": {"evaluator": plugin, "objective": "score"}})

    def limited():  # the kernel refuses writes past 12 KiB (EFBIG), as a full disk would
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (12 * 1024, 12 * 1024))

    done = evonas("run", path, "--name", "capped", cwd=tmp_path, preexec=limited)
    one_line_error(done, 3, "size limit", "evonas resume ", "runs/capped`")
    run_dir = tmp_path / "runs" / "capped"
    partial = [e["index"] for e in read_journal(run_dir) if e["event"] == "result"]
    assert 0 < len(partial) < 36
    again = evonas("resume", run_dir, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    results = [e["index"] for e in read_journal(run_dir) if e["event"] == "result"]
    # the space holds 27 architectures for a budget of 36: every one trained, then the cap of
    # 2 x budget evaluations ends the run; nothing lost, nothing repeated
    assert sorted(results) == list(range(72))


def test_a_run_directory_that_cannot_be_written_is_one_line(tiny, plugin, write_config,
                                                            tmp_path):
    """``/sys`` refuses new folders even to root: a real refusal by the kernel."""
    path = write_config({**tiny, "runs_dir": "/sys/evonas-runs", "search": SMALL,
                         "strategy": STRATEGY["random"],
                         "evaluation": {"evaluator": plugin, "objective": "score"}})
    one_line_error(evonas("run", path, cwd=tmp_path), 3, "permission denied", "/sys/evonas-runs",
                   "nothing was run")


@pytest.mark.parametrize("content, code, needle", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", 2, "not UTF-8 text"),
    ("search: {encoding: binary}  # caf\xe9\n".encode("latin-1"), 2, "not UTF-8 text"),
    (b"name: ok\nseed: \x00\n", 2, "NUL bytes"),
    (b"a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
     b"g: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n", 2, "expand to"),
    (b"name: " + b"x" * 300 + b"\n", 2, "name"),
    (b"name: ..\n", 2, "outside runs_dir"),
    (b"pool: {workers: 1000}\n", 2, "pool.workers"),
    (b"search: {stages: [100000], channels: [8]}\n", 2, "at most 64 nodes"),
    (b"search: {stages: [3], channels: [1000000000]}\n", 2, "at most 4096"),
    (b"evaluation: {lr: .inf}\n", 2, "evaluation.lr"),
])
def test_bad_config_files_are_one_line_input_errors(tmp_path, content, code, needle):
    (tmp_path / "bad.yaml").write_bytes(content)
    done = evonas("run", "bad.yaml", cwd=tmp_path, timeout=60)
    one_line_error(done, code, needle)
    assert len(done.stderr) < 5000
    assert not (tmp_path / "runs").exists()


def test_a_huge_config_file_is_refused_before_it_is_parsed(tmp_path):
    with open(tmp_path / "big.yaml", "w") as f:
        f.write("search: {encoding: choice, choices: [")
        f.write("[1, 2], " * 8_000_000)
        f.write("]}\n")
    done = evonas("run", "big.yaml", cwd=tmp_path, timeout=60)
    one_line_error(done, 2, "at most 1,048,576 bytes")


def test_show_of_absurd_input_is_one_line(tmp_path):
    one_line_error(evonas("show", "1" * 1000, cwd=tmp_path), 2, "malformed genome string")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(evonas("show", "deep.json", cwd=tmp_path), 2)


@pytest.mark.slow
def test_status_into_a_closed_pipe_says_nothing(tiny, plugin, write_config, tmp_path):
    import subprocess
    import sys

    path = write_config({**tiny, "search": SMALL, "strategy": STRATEGY["random"],
                         "evaluation": {"evaluator": plugin, "objective": "score"}})
    assert evonas("run", path, "--name", "piped", cwd=tmp_path).returncode == 0
    status = subprocess.Popen([sys.executable, "-m", "evolution.cli", "status", "runs/piped"],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    status.stdout.read(10)
    status.stdout.close()  # `| head -c 10`
    err = status.stderr.read().decode()
    assert status.wait(timeout=60) in (0, 141) and "Traceback" not in err, err


# --------------------------------------------------------------------------- untrusted folders
def test_load_model_refuses_a_folder_that_would_build_a_giant_model(tmp_path):
    from genome import BinaryGenome
    from training import ExportError, load_model

    genome = BinaryGenome.from_string("1-11-111_1-11-111")
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "genome.json").write_text(json.dumps({"genome": genome.to_dict()}))

    def settings(**space):
        (folder / "settings.json").write_text(json.dumps({
            "format": "evonas-export", "space": {"in_channels": 3, "num_classes": 10, **space}}))

    settings(channels=[10**9, 10**9])
    with pytest.raises(Exception, match=r"one width \(1 to 4096\) per stage"):
        load_model(folder)
    settings(channels=[4096, 4096])  # allowed widths, but 1.5 billion parameters
    with pytest.raises(ExportError, match="parameters, more than max_parameters"):
        load_model(folder, max_parameters=10**9)
    settings(channels=[4, 4], num_classes=10**7)
    with pytest.raises(Exception, match="num_classes"):
        load_model(folder)


def test_ctrl_c_before_the_run_directory_exists_says_nothing_was_written(capsys):
    from evolution.cli import _search

    def start(progress):
        raise KeyboardInterrupt  # during start-up: no run directory yet

    assert _search(start) == 130
    err = capsys.readouterr().err
    assert "before the run started; nothing was written" in err and "resume" not in err
