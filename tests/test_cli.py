"""The command line does what the README says: every command and flag of its "Command line"
section is run as written there, and each misuse a user met has a clear answer."""
from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TINY, merge
from evolution.journal import read_journal

REPO = Path(__file__).resolve().parents[1]


def evonas(*args, cwd: Path, check: bool = False, timeout: float = 600):
    done = subprocess.run([sys.executable, "-m", "evolution.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, (args, done.stderr[-3000:])
    return done


# --------------------------------------------------------------------------- the README's usage
def usage_lines() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Command line"):]
    block = section[section.index("```") + 3:]
    return [line.strip() for line in block[:block.index("```")].splitlines()
            if line.strip().startswith("evonas ")]


def expand(line: str) -> list[list[str]]:
    """Command lines for a usage line: with every optional group (first alternatives), with
    none, and once more for each other alternative of a group or of a top-level ``A | B``."""
    tokens = re.findall(r"\[[^\]]*\]|\S+", line)[1:]
    options = [i for i, t in enumerate(tokens) if t.startswith("[")]
    choices = [i for i, t in enumerate(tokens) if t == "|"]

    def render(chosen_optional: dict[int, int], top: int = 0) -> list[str]:
        out, skip = [], set()
        for i in choices:  # top-level alternatives: keep the chosen side of each `A | B`
            skip |= {i, i - 1} if top == 1 else {i, i + 1}
        for i, token in enumerate(tokens):
            if i in skip:
                continue
            if token.startswith("["):
                if i not in chosen_optional:
                    continue
                alternatives = [a.split() for a in token[1:-1].split("|")]
                out += alternatives[chosen_optional[i]]
            else:
                out.append(token)
        return out

    full = {i: 0 for i in options}
    lines = [render(full), render({})]
    for i in options:
        for k in range(1, tokens[i].count("|") + 1):
            lines.append(render({**full, i: k}))
    if choices:
        lines.append(render(full, top=1))
    unique = []
    for candidate in lines:
        if candidate not in unique:
            unique.append(candidate)
    return unique


def test_the_usage_expansion_covers_every_flag_and_alternative():
    lines = usage_lines()
    assert any(line.startswith("evonas resume") for line in lines)
    expanded = [" ".join(c) for line in lines for c in expand(line)]
    for flag in set(re.findall(r"--[a-z-]+|-v\b", "\n".join(lines))):
        assert any(flag in c.split() for c in expanded), flag
    assert ["status", "RUN_DIR"] in [c for line in lines for c in expand(line)]


def test_every_command_and_flag_of_the_parser_is_in_the_readme_usage():
    import argparse

    from evolution.cli import build_parser

    lines = usage_lines()
    flags = set(re.findall(r"--[a-z-]+|-v\b", "\n".join(lines)))
    commands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    missing = []
    for name, sub in commands[0].choices.items():
        if not any(line.startswith(f"evonas {name} ") or line == f"evonas {name}"
                   for line in lines):
            missing.append(name)
        missing += [f"{name} {option}" for action in sub._actions
                    for option in action.option_strings
                    if option not in flags and option not in ("-h", "--help", "--verbose")]
    assert not missing, f"in the parser but not in the README's usage block: {missing}"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder with a tiny config (built-in trainer) and finished runs of each strategy."""
    root = tmp_path_factory.mktemp("cli")
    base = merge(TINY, {"runs_dir": str(root / "runs")})
    configs = {
        "genetic": base,
        "aging": {**base, "strategy": {"name": "aging", "population": 3, "sample": 2,
                                       "cycles": 2}},
        "random": {**base, "strategy": {"name": "random", "evaluations": 4}},
    }
    for name, data in configs.items():
        (root / f"{name}.yaml").write_text(yaml.safe_dump({**data, "name": name}))
        evonas("run", f"{name}.yaml", cwd=root, check=True)
    return root


def concrete(command: list[str], root: Path, n: itertools.count) -> list[str]:
    """A usage line's placeholders filled in for ``workspace``."""
    strategy = {"--cycles": "aging", "--evaluations": "random"}
    run = next((strategy[t] for t in command if t in strategy), "genetic")
    budget = {"--generations": 3, "--cycles": 4, "--evaluations": 6}
    out, previous = [], None
    for token in command:
        if token == "CONFIG":
            token = "genetic.yaml"
        elif token == "RUN_DIR":
            token = str(root / "runs" / run)
        elif token == "GENOME":
            token = "1_1-01"
        elif token == "NAME":
            token = f"named-{next(n)}"
        elif token == "DIR":
            token = str(root / f"out-{next(n)}")
        elif token in ("N", "K", "E"):
            token = str(budget.get(previous, 1))
        elif token == "...":
            token = "weights"
        out.append(token)
        previous = token
    return out


@pytest.mark.slow
def test_every_command_and_flag_of_the_readme_runs_as_written(workspace):
    n = itertools.count()
    ran = []
    for line in usage_lines():
        for command in expand(line):
            filled = concrete(command, workspace, n)
            done = evonas(*filled, cwd=workspace)
            assert done.returncode == 0, (" ".join(filled), done.stderr[-3000:])
            ran.append(" ".join(filled))
    assert len(ran) >= 12, ran
    assert (evonas("--version", cwd=workspace, check=True).stdout.startswith("evonas "))


# --------------------------------------------------------------------------- misuse, answered
@pytest.fixture
def finished(tmp_path):
    config = {**TINY, "runs_dir": str(tmp_path / "runs"), "name": "done",
              "search": {"encoding": "choice", "choices": [[0, 1, 2]] * 3},
              "strategy": {"name": "aging", "population": 3, "sample": 2, "cycles": 3},
              "evaluation": {"evaluator": "cli_eval:score", "objective": "score"}}
    (tmp_path / "cli_eval.py").write_text(
        "import os\n"
        "def score(genome):\n"
        "    with open('calls', 'a') as f:\n"
        "        f.write('x')\n"
        "    return sum(genome.values) / 6.0\n")
    (tmp_path / "done.yaml").write_text(yaml.safe_dump(config))
    done = evonas("run", "done.yaml", "-v", cwd=tmp_path, check=True)  # -v after the command
    assert "INFO" in done.stderr
    return tmp_path, tmp_path / "runs" / "done"


def test_a_budget_flag_of_another_strategy_is_refused_naming_the_right_one(finished):
    cwd, run_dir = finished
    from evolution.strategies import STRATEGIES

    done = evonas("resume", run_dir, "--generations", 10, cwd=cwd)
    assert done.returncode == 2
    generational = [n for n, s in STRATEGIES.items() if s.budget_key == "generations"]
    named = (", ".join(generational[:-1]) + " and " if generational[1:] else "") \
        + generational[-1]  # "genetic, nsga2 and nsga3"
    assert f"--generations is for {named} runs" in done.stderr and "--cycles N" in done.stderr
    assert len([e for e in read_journal(run_dir) if e["event"] == "result"]) == 6


def test_the_evaluator_runs_once_per_evaluation_with_no_check_call(finished):
    cwd, run_dir = finished
    trained = [e for e in read_journal(run_dir) if e["event"] == "result" and not e["cached"]]
    assert (cwd / "calls").read_text() == "x" * len(trained)  # no extra call to check it
    evonas("resume", run_dir, "--cycles", 5, cwd=cwd, check=True)
    results = [e for e in read_journal(run_dir) if e["event"] == "result"]
    trained = [e for e in results if not e["cached"]]
    assert len(results) == 8 and (cwd / "calls").read_text() == "x" * len(trained)


def test_status_states_the_budget_and_the_time_the_summary_states(finished):
    cwd, run_dir = finished
    status = evonas("status", run_dir, cwd=cwd, check=True).stdout
    assert "aging: strategy.cycles = 3 (6 architectures)" in status
    spent = float(re.search(r"time spent\s+([\d.]+) s", status).group(1))
    summary = json.loads((run_dir / "summary.json").read_text())
    assert spent == pytest.approx(summary["total_seconds"], abs=0.06)
    assert spent == pytest.approx(summary["seconds"], abs=0.06)  # one session: the same


def test_an_evaluator_run_says_evaluated_not_trained(finished):
    cwd, run_dir = finished
    out = evonas("resume", run_dir, cwd=cwd, check=True).stdout
    assert "evaluated by the evaluator" in out and " trained," not in out
    err = evonas("resume", run_dir, "--cycles", 4, cwd=cwd, check=True).stderr
    assert "(evaluated " in err and "(trained " not in err  # the progress lines too


def test_show_and_export_arguments_are_checked_for_what_they_are(finished):
    cwd, run_dir = finished
    done = evonas("show", "runs/typo", cwd=cwd)
    assert done.returncode == 2 and "'runs/typo' does not exist" in done.stderr
    out = cwd / "elsewhere"
    paths = evonas("show", run_dir, "--out", out, cwd=cwd, check=True).stdout.split()
    assert paths and all(Path(p).parent == out for p in paths)
    assert not (run_dir / "report").exists()
    done = evonas("export", run_dir, "--out", out, cwd=cwd)
    assert done.returncode == 2 and "--out is for export --genome" in done.stderr


def test_an_evaluator_that_raises_on_every_genome_stops_early_with_its_own_frames(tmp_path):
    (tmp_path / "broken.py").write_text("def score(genome):\n"
                                        "    return helper(genome)\n\n\n"
                                        "def helper(genome):\n"
                                        "    raise KeyError('missing column')\n")
    config = {**TINY, "runs_dir": str(tmp_path / "runs"), "name": "broken",
              "search": {"encoding": "choice", "choices": [[0, 1, 2]] * 3},
              "strategy": {"name": "random", "evaluations": 30},
              "evaluation": {"evaluator": "broken:score", "objective": "score"}}
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(config))
    done = evonas("run", "broken.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the first 3 evaluations all failed alike in your code" in done.stderr
    assert 'broken.py", line 6, in helper' in done.stderr
    results = [e for e in read_journal(tmp_path / "runs" / "broken") if e["event"] == "result"]
    assert len(results) == 3  # the budget of 30 was not spent
