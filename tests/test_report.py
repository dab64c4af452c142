"""Reports: run figures and report.md, genome drawings (PNG + DOT) and their errors."""
from __future__ import annotations

import json
import random
import re
import shutil
import textwrap
from collections import Counter
from pathlib import Path

import matplotlib.image
import networkx as nx
import numpy as np
import pydot
import pytest

from evolution import run
from evolution.config import config_from_dict
from evolution.journal import read_journal
from evolution.report import (ReportError, draw_genome, genome_dot, load_genome, load_run,
                              report_run, show)
from genome import BinaryGenome, CellGenome, ChoiceGenome, EvonasError, GenomeError
from genome.cell import AMOEBANET_A, NASNET_A

# pydot's parser uses pyparsing names that newer pyparsing deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning:pydot")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RUN_FIGURES = {"fitness.png", "accuracy_params.png", "spread.png", "best_genome.png"}

EVALUATOR = textwrap.dedent('''
    import math

    def score(genome, settings):
        """Instant stand-in for training: more connections score higher; some genomes fail."""
        ones = genome.to_string().count("1")
        if settings["index"] >= 0 and ones % 4 == 1:
            raise RuntimeError("simulated out of memory")
        return {"val_accuracy": 0.5 + 0.4 * (1 - math.exp(-ones / 3)),
                "params": 1000 * (1 + ones) ** 2, "flops": 50000 * (1 + ones)}

    def plain(genome):
        return float(genome.to_string().count("1"))
''')


# --------------------------------------------------------------------------- helpers
def check_png(path: Path) -> tuple[int, int]:
    """A valid, decodable, non-blank PNG of a sensible size; returns (width, height)."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE, path
    image = matplotlib.image.imread(path)
    height, width = image.shape[:2]
    assert 300 <= width <= 5000 and 200 <= height <= 5000, (path, width, height)
    assert image[..., :3].var() > 0, f"{path} is blank"
    return width, height


def red_pixels(path: Path) -> int:
    """Pixels of matplotlib's tab:red (214, 39, 40), the colour of failure markers."""
    image = matplotlib.image.imread(path)[..., :3]
    return int((np.abs(image - np.array([214, 39, 40]) / 255).max(axis=-1) < 0.06).sum())


def parse_dot(text: str) -> tuple[nx.MultiDiGraph, dict[str, set[str]]]:
    """The DOT text as a graph (through pydot) and each cluster's node names."""
    parsed = pydot.graph_from_dot_data(text)
    assert parsed and len(parsed) == 1
    graph = nx.nx_pydot.from_pydot(parsed[0])
    clusters = {sub.get_name().strip('"'): {n.get_name().strip('"') for n in sub.get_nodes()}
                for sub in parsed[0].get_subgraphs()}
    return graph, clusters


def unquote(value) -> str | None:
    return None if value is None else str(value).strip('"')


def edge_set(graph: nx.MultiDiGraph) -> Counter:
    return Counter((u, v, unquote(d.get("label"))) for u, v, d in graph.edges(data=True))


def check_report_md(report_dir: Path) -> str:
    text = (report_dir / "report.md").read_text()
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (report_dir / target).is_file(), target
    return text


@pytest.fixture
def evaluator(user_module):
    return user_module("report_bench", EVALUATOR)


def evaluator_config(tiny: dict, strategy: dict, function: str = "report_bench:score") -> dict:
    return {**tiny, "search": {"encoding": "binary", "stages": [3, 4], "channels": [4, 4]},
            "strategy": strategy,
            "evaluation": {"evaluator": function, "objective": "val_accuracy"}}


# --------------------------------------------------------------------------- run reports
def test_report_of_a_finished_genetic_run(tiny):
    summary = run(config_from_dict(tiny))
    paths = report_run(summary.run_dir)
    out = summary.run_dir / "report"
    assert all(p.parent == out and p.is_file() for p in paths)
    assert {p.name for p in paths} == RUN_FIGURES | {"best_genome.dot", "report.md"}
    assert paths[-1].name == "report.md"
    for path in paths:
        if path.suffix == ".png":
            check_png(path)
    text = check_report_md(out)
    for figure in RUN_FIGURES:
        assert f"]({figure})" in text
    assert "genetic" in text and "| budget | 12 architectures trained |" in text
    assert f"`{summary.best_genome}`" in text
    assert "| status | finished |" in text
    assert f"| evaluations | {summary.evaluations} finished" in text
    assert f"| wall time | {summary.seconds:.1f} s |" in text
    rows = re.findall(r"^\| (\d+) \| (\d+) \| ([\d.]+) \|", text, re.M)
    keys = {e["key"] for e in read_journal(summary.run_dir)
            if e["event"] == "result" and e["status"] == "ok"}
    assert [int(r[0]) for r in rows] == list(range(1, min(10, len(keys)) + 1))
    assert float(rows[0][2]) == pytest.approx(summary.best_values[0], abs=1e-4)
    # one group per generation, each the size of the population
    data = load_run(summary.run_dir)
    assert [g.label for g in data.groups] == ["0", "1", "2"]
    assert [len(g.results) for g in data.groups] == [4, 4, 4]
    assert report_run(summary.run_dir) == paths  # rerunning overwrites the same files


@pytest.mark.parametrize("strategy, windows", [
    ({"name": "aging", "population": 6, "sample": 3, "cycles": 30}, [6] * 6),
    ({"name": "random", "evaluations": 25}, [10, 10, 5]),
])
def test_report_of_evaluator_runs_with_failures(evaluator, tiny, strategy, windows):
    summary = run(config_from_dict(evaluator_config(tiny, strategy)))
    assert summary.failures > 0  # the evaluator fails on some genomes
    paths = report_run(summary.run_dir)
    out = summary.run_dir / "report"
    assert {p.name for p in paths} == RUN_FIGURES | {"best_genome.dot", "report.md"}
    sizes = {p.name: check_png(p) for p in paths if p.suffix == ".png"}
    assert red_pixels(out / "fitness.png") > 20  # failures are marked
    assert sizes["fitness.png"][0] > sizes["fitness.png"][1]
    text = check_report_md(out)
    assert f"| failures | {summary.failures} (failed {summary.failures}) |" in text
    assert "RuntimeError: simulated out of memory" in text
    assert f"`{summary.best_genome}`" in text
    data = load_run(summary.run_dir)
    assert [len(g.results) for g in data.groups] == windows
    assert data.groups[0].label == f"1-{windows[0]}"
    assert all(g.closed for g in data.groups)


def test_report_of_an_unfinished_run(evaluator, tiny, tmp_path):
    strategy = {"name": "aging", "population": 6, "sample": 3, "cycles": 30}
    summary = run(config_from_dict(evaluator_config(tiny, strategy)))
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(summary.run_dir / "config.yaml", partial / "config.yaml")
    lines = (summary.run_dir / "journal.jsonl").read_text().splitlines(keepends=True)
    events = [json.loads(line) for line in lines]
    results = [i for i, e in enumerate(events) if e["event"] == "result"]
    cut = results[14] + 1  # 15 results: two closed windows and an open one of 3
    torn = lines[cut][: len(lines[cut]) // 2]
    marker = json.dumps({"event": "snapshot", "evaluations": 15}) + "\n"  # unknown: ignored
    (partial / "journal.jsonl").write_text("".join(lines[:cut]) + marker + torn)
    paths = report_run(partial)
    assert {p.name for p in paths} == RUN_FIGURES | {"best_genome.dot", "report.md"}
    for path in paths:
        if path.suffix == ".png":
            check_png(path)
    text = check_report_md(partial / "report")
    assert "| status | unfinished" in text
    assert "| evaluations | 15 finished" in text
    assert "so far" in text  # wall time from the journal's times
    data = load_run(partial)
    assert [len(g.results) for g in data.groups] == [6, 6, 3]
    assert [g.closed for g in data.groups] == [True, True, False]


def test_report_of_a_choice_run_without_parameter_counts_says_what_is_missing(evaluator, tiny):
    config = {**evaluator_config(tiny, {"name": "random", "evaluations": 12},
                                 "report_bench:plain"),
              "search": {"encoding": "choice", "choices": [[0, 1]] * 5}}
    summary = run(config_from_dict(config))
    paths = report_run(summary.run_dir)
    assert [p.name for p in paths] == ["fitness.png", "spread.png", "report.md"]
    text = check_report_md(summary.run_dir / "report")
    assert "no successful evaluation recorded a `params` metric" in text
    assert "The best genome is not drawn: a choice genome" in text
    assert f"`{summary.best_genome}`" in text


def test_report_errors(tmp_path):
    with pytest.raises(ReportError, match="does not exist"):
        report_run(tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ReportError, match="has no journal.jsonl"):
        report_run(empty)
    (empty / "journal.jsonl").write_text("")
    with pytest.raises(ReportError, match="no results yet"):
        report_run(empty)
    ask = {"event": "ask", "index": 0, "seed": 1, "genome": BinaryGenome.from_string(
        "1-01").to_dict(), "key": "1-01", "time": 0.0}
    (empty / "journal.jsonl").write_text(json.dumps(ask) + "\n")
    with pytest.raises(EvonasError, match="no results yet"):
        report_run(empty)
    assert not (empty / "report").exists()


# --------------------------------------------------------------------------- drawings
def binary_expected(text: str) -> tuple[set[str], Counter]:
    """Nodes and edges of a one-stage genome, hand-written below in short names."""
    return {f"s1_{n}" for n in BINARY[text][0]}, Counter(
        (f"s1_{u}", f"s1_{v}", None) for u, v in BINARY[text][1])


BINARY = {  # genome: (nodes, edges) after the paper's decoding rules
    "1-01-001": (["input", "v1", "v2", "v3", "v4", "output"],
                 [("input", "v1"), ("v1", "v2"), ("v2", "v3"), ("v3", "v4"), ("v4", "output")]),
    "1-01-101": (["input", "v1", "v2", "v3", "v4", "output"],
                 [("input", "v1"), ("v1", "v2"), ("v2", "v3"), ("v1", "v4"), ("v3", "v4"),
                  ("v4", "output")]),
    "1-11-111": (["input", "v1", "v2", "v3", "v4", "output"],
                 [("input", "v1"), ("v1", "v2"), ("v1", "v3"), ("v2", "v3"), ("v1", "v4"),
                  ("v2", "v4"), ("v3", "v4"), ("v4", "output")]),
    "1-00-000": (["input", "v1", "v2", "output"],  # v3, v4 isolated: pruned
                 [("input", "v1"), ("v1", "v2"), ("v2", "output")]),
    "0-00-100-0101": (["input", "v1", "v2", "v4", "v5", "output"],  # v3 pruned
                      [("input", "v1"), ("input", "v2"), ("v1", "v4"), ("v2", "v5"),
                       ("v4", "v5"), ("v5", "output")]),
    "0-00": (["input", "output"], [("input", "output")]),
}


@pytest.mark.parametrize("text", sorted(BINARY))
def test_binary_stage_drawing_and_dot(text, tmp_path):
    png, dot = draw_genome(text, tmp_path / "out", name="g")
    assert (png.name, dot.name) == ("g.png", "g.dot")
    check_png(png)
    assert dot.read_text() == genome_dot(text)
    graph, clusters = parse_dot(dot.read_text())
    nodes, edges = binary_expected(text)
    assert set(graph.nodes) == nodes
    assert edge_set(graph) == edges
    assert clusters == {"cluster_stage1": nodes}
    roles = {n: unquote(graph.nodes[n]["role"]) for n in graph.nodes}
    assert roles["s1_input"] == "input" and roles["s1_output"] == "output"
    assert all(roles[n] == "node" for n in nodes - {"s1_input", "s1_output"})
    assert {n: unquote(graph.nodes[n]["label"]) for n in nodes} == {
        n: n.removeprefix("s1_") for n in nodes}


def test_multi_stage_drawing_has_one_cluster_per_stage_and_pooling_links(tmp_path):
    genome = BinaryGenome.from_string("1-01_1-01-001_0-00-100-0101")
    png, dot = draw_genome(genome, tmp_path)
    width, height = check_png(png)
    graph, clusters = parse_dot(dot.read_text())
    stage3 = {f"s3_{n}" for n in BINARY["0-00-100-0101"][0]}
    assert clusters == {"cluster_stage1": {"s1_input", "s1_v1", "s1_v2", "s1_v3", "s1_output"},
                        "cluster_stage2": {f"s2_{n}" for n in BINARY["1-01-001"][0]},
                        "cluster_stage3": stage3}
    assert "s3_v3" not in graph  # pruned
    expected = Counter({("s1_input", "s1_v1", None): 1, ("s1_v1", "s1_v2", None): 1,
                        ("s1_v2", "s1_v3", None): 1, ("s1_v3", "s1_output", None): 1,
                        ("s1_output", "s2_input", "max pool 2x2"): 1,
                        ("s2_output", "s3_input", "max pool 2x2"): 1})
    expected += Counter((f"s2_{u}", f"s2_{v}", None) for u, v in BINARY["1-01-001"][1])
    expected += Counter((f"s3_{u}", f"s3_{v}", None) for u, v in BINARY["0-00-100-0101"][1])
    assert edge_set(graph) == expected


def test_random_binary_genomes_draw_their_decoded_stage_graphs(tmp_path):
    rng = random.Random(7)
    for _ in range(20):
        genome = BinaryGenome.random([rng.randint(2, 6) for _ in range(rng.randint(1, 3))], rng)
        graph, _ = parse_dot(genome_dot(genome))
        expected_nodes, expected_edges = set(), Counter()
        for s, k in enumerate(genome.stages):
            stage = genome.stage_graph(s)

            def name(v, s=s, k=k):
                return f"s{s + 1}_" + ("input" if v == 0 else "output" if v == k + 1
                                       else f"v{v}")
            expected_nodes |= {name(v) for v in stage}
            expected_edges += Counter((name(u), name(v), None) for u, v in stage.edges)
            if s:
                expected_edges[(f"s{s}_output", f"s{s + 1}_input", "max pool 2x2")] += 1
        assert set(graph.nodes) == expected_nodes
        assert edge_set(graph) == expected_edges
    check_png(draw_genome(genome, tmp_path)[0])


def cell_expected(genome: CellGenome) -> tuple[set[str], Counter]:
    nodes, edges = set(), Counter()
    for cell in ("normal", "reduction"):
        blocks = genome.cell(cell)
        nodes |= {f"{cell}_{s}" for s in range(2 + len(blocks))} | {f"{cell}_out"}
        for i, (a, op_a, b, op_b) in enumerate(blocks):
            edges[(f"{cell}_{a}", f"{cell}_{2 + i}", op_a)] += 1
            edges[(f"{cell}_{b}", f"{cell}_{2 + i}", op_b)] += 1
        for s in genome.outputs(cell):
            edges[(f"{cell}_{s}", f"{cell}_out", None)] += 1
    return nodes, edges


@pytest.mark.parametrize("genome, concat, same_input", [
    # same_input: a block reading one state twice keeps both edges, one per op
    (AMOEBANET_A, {"normal": {4, 5, 6}, "reduction": {3, 4, 6}},
     {("normal_1", "normal_5"): ["identity", "sep_conv_3x3"],
      ("reduction_1", "reduction_5"): ["max_pool_3x3"]}),
    (NASNET_A, {"normal": {2, 3, 4, 5, 6}, "reduction": {4, 5, 6}},
     {("normal_0", "normal_5"): ["avg_pool_3x3", "avg_pool_3x3"],
      ("normal_1", "normal_6"): ["identity", "sep_conv_3x3"]}),
])
def test_cell_drawing_and_dot(genome, concat, same_input, tmp_path):
    png, dot = draw_genome(genome.to_string(), tmp_path, name="cell")
    check_png(png)
    graph, clusters = parse_dot(dot.read_text())
    nodes, edges = cell_expected(genome)
    assert set(graph.nodes) == nodes
    assert edge_set(graph) == edges
    assert sum(edges.values()) == 2 * (5 + 5) + len(concat["normal"]) + len(concat["reduction"])
    for cell in ("normal", "reduction"):
        assert clusters[f"cluster_{cell}"] == {n for n in nodes if n.startswith(cell)}
        into_concat = {int(u.split("_")[1]) for u, v, _ in graph.edges if v == f"{cell}_out"}
        assert into_concat == concat[cell] == set(genome.outputs(cell))
        assert unquote(graph.nodes[f"{cell}_0"]["label"]) == "c_{k-2} (0)"
        assert unquote(graph.nodes[f"{cell}_1"]["label"]) == "c_{k-1} (1)"
        assert unquote(graph.nodes[f"{cell}_out"]["role"]) == "output"
    for (u, v), ops in same_input.items():
        assert sorted(unquote(d["label"]) for d in graph.get_edge_data(u, v).values()) == ops


def test_random_cells_draw_their_blocks(tmp_path):
    rng = random.Random(3)
    for blocks in (1, 2, 5, 7):
        genome = CellGenome.random(rng, blocks=blocks)
        graph, _ = parse_dot(genome_dot(genome))
        nodes, edges = cell_expected(genome)
        assert set(graph.nodes) == nodes and edge_set(graph) == edges
        check_png(draw_genome(genome, tmp_path, name=f"cell{blocks}")[0])


def test_genome_inputs_strings_dicts_and_json_files(tmp_path):
    genome = BinaryGenome.from_string("1-01_1-01-001")
    (tmp_path / "plain.json").write_text(json.dumps(genome.to_dict()))
    (tmp_path / "best.json").write_text(json.dumps({"genome": AMOEBANET_A.to_dict(),
                                                    "key": AMOEBANET_A.key()}))
    assert load_genome("1-01_1-01-001") == genome
    assert load_genome(" 1-01_1-01-001\n") == genome
    assert load_genome(AMOEBANET_A.to_string()) == AMOEBANET_A
    assert load_genome(genome.to_dict()) == genome
    assert load_genome({"genome": genome.to_dict()}) == genome
    assert load_genome(tmp_path / "plain.json") == genome
    assert load_genome(str(tmp_path / "best.json")) == AMOEBANET_A
    assert genome_dot(tmp_path / "best.json") == genome_dot(AMOEBANET_A)
    png, dot = draw_genome(str(tmp_path / "plain.json"), tmp_path / "drawn")
    check_png(png)
    assert dot.read_text() == genome_dot(genome)


@pytest.mark.parametrize("bad, error, message", [
    (ChoiceGenome(("conv3x3", 1)), ReportError, "choice genome .* cannot be drawn"),
    ('["conv3x3",1]', ReportError, "choice genome .* cannot be drawn"),
    ({"encoding": "choice", "values": ["a", "b"]}, ReportError, "cannot be drawn"),
    ("1-0", GenomeError, "malformed genome string"),
    ("1-012", GenomeError, "malformed genome string"),
    ("abc", GenomeError, "malformed genome string"),
    ("", GenomeError, "expected a genome string"),
    ("sep_conv_3x3@0+identity@1", GenomeError, "NORMAL/REDUCTION"),
    ("sep_conv_3x3@0+identity@7/identity@0+identity@1", GenomeError, "reads state 7"),
    ("nope.json", ReportError, "does not exist"),
    (3, ReportError, "expected a genome"),
])
def test_drawing_errors(bad, error, message, tmp_path):
    with pytest.raises(error, match=message):
        draw_genome(bad, tmp_path / "out")
    with pytest.raises(error, match=message):
        genome_dot(bad)
    assert not (tmp_path / "out").exists()


def test_show_dispatches_on_run_directories_and_genomes(tiny, tmp_path):
    summary = run(config_from_dict({**tiny, "strategy": {**tiny["strategy"],
                                                         "generations": 0}}))
    assert (summary.run_dir / "report" / "report.md") in show(summary.run_dir)
    assert [p.name for p in show("1-01", tmp_path / "drawing")] == ["genome.png", "genome.dot"]


# --------------------------------------------------------------------------- figures at scale
def synthetic_run(tmp_path, evaluations: int, strategy: str = "genetic", failed: bool = False,
                  params=lambda i: 1000 + 10 * i) -> Path:
    """A run directory written through RunDirectory: ``evaluations`` results of a genetic run
    (population 10: a generation event every 10) or a random one."""
    from evolution.journal import RunDirectory

    strategies = {"genetic": {"name": "genetic", "population": 10,
                              "generations": evaluations // 10 - 1},
                  "random": {"name": "random", "evaluations": evaluations}}
    config = config_from_dict({"runs_dir": str(tmp_path / "runs"), "name": f"s{evaluations}",
                               "search": {"encoding": "choice", "choices": [[0, 1]] * 16},
                               "strategy": strategies[strategy],
                               "evaluation": {"evaluator": "x:y", "objective": "score"}})
    with RunDirectory.create(config.runs_dir, config.name, config.to_dict(), exact=True) as rd:
        for i in range(evaluations):
            genome = {"encoding": "choice", "values": [int(b) for b in f"{i:016b}"]}
            rd.append({"event": "ask", "index": i, "ticket": i, "seed": i, "genome": genome,
                       "key": json.dumps(genome["values"]), "time": float(i)})
            ok = not failed
            rd.append({"event": "result", "index": i, "genome": genome, "seed": i,
                       "key": json.dumps(genome["values"]), "status": "ok" if ok else "failed",
                       "values": [1.0 if i == 7 else (i % 13) / 13] if ok else None,
                       "metrics": {"score": (i % 13) / 13, "params": params(i)} if ok else {},
                       "message": "" if ok else "boom", "cached": False,
                       "started": float(i), "finished": i + 0.5})
            if strategy == "genetic" and i % 10 == 9:
                rd.append({"event": "generation", "generation": i // 10, "best": 1.0,
                           "mean": 0.5, "failures": 0, "time": i + 0.6})
    return rd.path


def test_an_all_failed_run_shows_every_failure(tmp_path):
    from evolution.report import load_run, plot_fitness

    data = load_run(synthetic_run(tmp_path, 4, "random", failed=True))
    figure = plot_fitness(data)
    lo, hi = figure.axes[0].get_xlim()
    assert lo < 0 and hi > 3  # all four crosses inside the axis, not only the first
    ticks = [t for t in figure.axes[0].get_xticks() if lo <= t <= hi]
    assert all(float(t).is_integer() for t in ticks)  # evaluation indices: integer ticks


@pytest.mark.parametrize("evaluations", [60, 500, 5000])
def test_long_runs_stay_readable(tmp_path, evaluations):
    from evolution.report import load_run, plot_fitness, plot_spread
    from evolution.report.figures import MAX_GROUPS, MAX_LINES

    data = load_run(synthetic_run(tmp_path, evaluations))
    spread = plot_spread(data)
    assert spread.get_size_inches()[0] <= 16
    boxes = len(spread.axes[0].get_xticks())
    generations = evaluations // 10
    assert boxes <= MAX_GROUPS and boxes == -(-generations // -(-generations // MAX_GROUPS))
    fitness = plot_fitness(data)
    lines = [line for line in fitness.axes[0].get_lines() if line.get_linestyle() == "-"
             and len(set(line.get_xdata())) == 1]  # the vertical generation lines
    assert 1 <= len(lines) <= MAX_LINES
    labels = [t.get_text() for t in fitness.legends[0].get_texts()]
    assert any("generation starts" in label for label in labels)
    every = -(-(generations - 1) // MAX_LINES)
    assert (f"one line per {every} generations" in " ".join(labels)) == (every > 1), labels
    assert "best 1.0000 (evaluation 7)" in labels
    assert any(label.startswith("evaluated (") for label in labels)  # an evaluator: no training


def test_a_parameter_range_under_a_decade_gets_a_linear_labelled_axis(tmp_path):
    from evolution.report import load_run, plot_accuracy_params

    data = load_run(synthetic_run(tmp_path, 40, "random", params=lambda i: 40_000 + 500 * i))
    axis = plot_accuracy_params(data).axes[0]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(axis.figure).draw()
    assert axis.get_xscale() == "linear"
    labels = [t.get_text() for t in axis.get_xticklabels() if t.get_text()]
    assert len(labels) >= 3, labels
