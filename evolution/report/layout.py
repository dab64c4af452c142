"""A layered left-to-right graph layout (Sugiyama style), pure: sizes in, positions out.

Ranks come from the caller (topological generations); within a rank, items are ordered by
barycenter sweeps that keep the order with the fewest crossings, then placed by a weighted
isotonic fit that pulls every item toward its neighbours while keeping the minimum gaps; runs of
bend points of long edges are straightened where that stays clear. No drawing library is used,
so the layout is tested on its own (tests/test_layout.py). Units are inches.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

GAP_X = 0.5               # between the widest items of neighbouring ranks
GAP_Y = 0.16              # between items of one rank
DUMMY_GAP = 0.10          # extra room a bend point of a long edge takes


@dataclass
class Item:
    """A node, an edge label or a bend point of a long edge, in one rank of the layout."""

    id: Any
    rank: int
    width: float
    height: float
    kind: str             # node | label | dummy
    y: float = 0.0


def layout(nodes: Mapping[str, tuple[int, float, float]],
            edges: Sequence[tuple[str, str, Optional[tuple[float, float]]]]
            ) -> tuple[dict[Any, Item], list[float], list[float], list[list[Any]]]:
    """Layered left-to-right layout (Sugiyama style).

    ``nodes``: id -> (rank, width, height); ``edges``: (u, v, label size or None) with
    rank(v) > rank(u), and rank(v) - rank(u) >= 2 when labelled. An edge spanning several ranks
    gets one item per rank in between (its label sits in the rank before its target), so long
    edges and labels get their own slots. Returns the items, the x and width of each rank, and
    per edge the item ids along it (source, bends..., target).
    """
    items: dict[Any, Item] = {n: Item(n, r, w, h, "node") for n, (r, w, h) in nodes.items()}
    chains: list[list[Any]] = []
    for e, (u, v, label) in enumerate(edges):
        chain = [u]
        for r in range(items[u].rank + 1, items[v].rank):
            if label is not None and r == items[v].rank - 1:
                items[("label", e)] = Item(("label", e), r, label[0], label[1], "label")
                chain.append(("label", e))
            else:
                items[("bend", e, r)] = Item(("bend", e, r), r, 0.0, 0.0, "dummy")
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
    def gap(a: Item, b: Item) -> float:
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
            for n, y in zip(layer, ordered_fit(desired, weights, gaps)):
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


def ordered_fit(desired: Sequence[float], weights: Sequence[float],
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
