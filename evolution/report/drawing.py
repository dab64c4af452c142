"""Drawings of architectures: any genome whose encoding says what to draw
(:meth:`genome.Encoding.graph`) as a PNG laid out by :mod:`evolution.report.layout`, and as a
DOT file for people who have graphviz and want its rendering (evonas needs neither the graphviz
program nor its Python bindings)."""
from __future__ import annotations

import os
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Optional

import networkx as nx
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextPath

from evolution.report.data import ReportError
from evolution.report.figures import save
from evolution.report.layout import layout
from genome import ENCODINGS, Encoding, GenomeError, Graph, get_encoding, load_genome


def genome_graph(source: Any) -> Graph:
    """What to draw of ``source`` (anything :func:`genome.load_genome` accepts). A malformed
    genome string is a :class:`~genome.GenomeError`; a missing file, another type, or an
    encoding that is not a graph is a :class:`ReportError`."""
    try:
        genome = load_genome(source)
    except GenomeError:
        if isinstance(source, str) and not source.strip().endswith(".json"):
            raise
        raise ReportError(str(sys.exc_info()[1])) from None
    graph = get_encoding(genome.encoding).graph(genome)
    if graph is None:
        drawable = [n for n, e in ENCODINGS.items() if type(e).graph is not Encoding.graph]
        raise ReportError(f"a {genome.encoding} genome ({genome.to_string()[:60]}) is a "
                          f"vector of values, not a graph, so it cannot be drawn; "
                          f"draw_genome draws {' and '.join(drawable)} genomes")
    return graph


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
    :func:`genome.load_genome` accepts; a choice genome raises :class:`ReportError`.
    """
    return _dot(genome_graph(genome))


def _dot(graph: Graph) -> str:
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
    graph = genome_graph(genome)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figure, dpi = _draw(graph)
    png = save(figure, out / f"{name}.png", dpi=dpi)
    dot_path = out / f"{name}.dot"
    dot_path.write_text(_dot(graph), encoding="utf-8")
    return [png, dot_path]


# ------------------------------------------------------------------------------- rendering
# Units are inches: the figure is made exactly as large as the drawing, so text sizes in points
# and box sizes in inches agree at any graph size.
NODE_FONT = 10.0
EDGE_FONT = 8.5
CLUSTER_FONT = 9.5
NODE_PAD = (0.14, 0.09)   # inches around a node's text (x, y)
LABEL_PAD = (0.06, 0.035)
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


def _draw(graph: Graph) -> tuple[Figure, float]:
    """Lay out each stage or cell on its own, arrange them (cells one above the other; stages
    left to right, wrapping into rows past ``ROW_WIDTH`` inches), then draw nodes, edges, labels,
    cluster boxes and the links between stages at 1 data unit = 1 inch."""
    colours = _op_colours(graph)
    is_cell = bool(graph.vocabulary)  # op-labelled cells: one above the other
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


def _op_colours(graph: Graph) -> dict[str, str]:
    """A colour per op: the encoding's vocabulary in its order first (an op keeps its colour
    from one drawing to the next), then any other edge label."""
    ops = list(graph.vocabulary)
    ops += sorted({e[2] for e in graph.edges if e[2]} - set(ops))
    return {op: OP_COLOURS[i % len(OP_COLOURS)] for i, op in enumerate(ops)}


def _place(graph: Graph, members: list[str], edges: list, cluster: str,
           spaced: bool) -> dict[str, Any]:
    """Lay out one stage or cell: ranks from topological generations (doubled when op labels
    need a rank of their own), then :func:`layout`. Returns the items, rank xs and widths,
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
    items, xs, widths, chains = layout(sizes, layout_edges)
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


def _render(ax: Any, graph: Graph, d: Mapping[str, Any], dx: float, dy: float,
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
