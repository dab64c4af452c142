"""The layered graph layout on its own: pure inputs (ranks and sizes) to positions, no drawing."""
from __future__ import annotations

import random

import pytest

from evolution.report.layout import DUMMY_GAP, GAP_X, GAP_Y, layout, ordered_fit


def crossings(items, chains) -> int:
    """Pairs of segments between the same two ranks that cross, from the laid-out y."""
    segments = [(items[a].rank, items[a].y, items[b].y)
                for chain in chains for a, b in zip(chain, chain[1:])]
    return sum(1 for i, (r1, a1, b1) in enumerate(segments) for r2, a2, b2 in segments[i + 1:]
               if r1 == r2 and (a1 - a2) * (b1 - b2) < 0)


def random_dag(rng: random.Random, n: int):
    ranks = {f"n{i}": rng.randint(0, 4) for i in range(n)}
    nodes = {k: (r, rng.uniform(0.4, 1.2), rng.uniform(0.2, 0.5)) for k, r in ranks.items()}
    edges = []
    for u in nodes:
        for v in nodes:
            if ranks[v] > ranks[u] and rng.random() < 0.25:
                labelled = ranks[v] - ranks[u] >= 2 and rng.random() < 0.5
                edges.append((u, v, (0.5, 0.2) if labelled else None))
    return nodes, edges


@pytest.mark.parametrize("seed", range(20))
def test_ranks_run_left_to_right_and_items_of_a_rank_never_overlap(seed):
    nodes, edges = random_dag(random.Random(seed), 12)
    items, xs, widths, chains = layout(nodes, edges)
    for r in range(1, len(xs)):  # each rank as wide as its widest item, GAP_X between
        assert xs[r] - xs[r - 1] == pytest.approx(widths[r - 1] / 2 + GAP_X + widths[r] / 2)
    for r in range(len(xs)):
        column = sorted((i for i in items.values() if i.rank == r), key=lambda i: -i.y)
        for a, b in zip(column, column[1:]):
            gap = DUMMY_GAP if "dummy" in (a.kind, b.kind) else GAP_Y
            assert a.y - b.y >= (a.height + b.height) / 2 + gap - 1e-9
        assert all(i.width <= widths[r] + 1e-12 for i in column)


@pytest.mark.parametrize("seed", range(20))
def test_long_edges_get_one_slot_per_rank_and_labels_sit_before_their_target(seed):
    nodes, edges = random_dag(random.Random(100 + seed), 10)
    items, _, _, chains = layout(nodes, edges)
    assert len(chains) == len(edges)
    for (u, v, label), chain in zip(edges, chains):
        assert chain[0] == u and chain[-1] == v
        assert [items[n].rank for n in chain] == list(range(nodes[u][0], nodes[v][0] + 1))
        kinds = [items[n].kind for n in chain[1:-1]]
        assert kinds == (["dummy"] * (len(kinds) - 1) + ["label"] if label else ["dummy"] * len(kinds))


def test_a_crossing_in_the_given_order_is_removed():
    # given order a, b over c, d with a -> d and b -> c: one crossing unless reordered
    nodes = {"a": (0, 0.5, 0.3), "b": (0, 0.5, 0.3), "c": (1, 0.5, 0.3), "d": (1, 0.5, 0.3)}
    items, _, _, chains = layout(nodes, [("a", "d", None), ("b", "c", None)])
    assert crossings(items, chains) == 0


def test_a_chain_is_drawn_straight():
    nodes = {f"n{i}": (i, 0.6, 0.3) for i in range(5)}
    items, _, _, _ = layout(nodes, [(f"n{i}", f"n{i + 1}", None) for i in range(4)])
    assert len({round(items[n].y, 9) for n in nodes}) == 1


def test_ordered_fit_is_the_closest_placement_that_keeps_the_gaps():
    # nothing to fix: the desired places already keep the gaps
    assert ordered_fit([3.0, 1.0, -1.0], [1.0, 1.0, 1.0], [1.0, 1.0]) == [3.0, 1.0, -1.0]
    # all want 0: spread symmetrically around it, exactly the gaps apart
    assert ordered_fit([0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [1.0, 1.0]) == \
        pytest.approx([1.0, 0.0, -1.0])
    # a heavy item stays nearer its wish
    heavy = ordered_fit([0.0, 0.0], [10.0, 1.0], [1.0])
    assert heavy[0] - heavy[1] == pytest.approx(1.0) and abs(heavy[0]) < abs(heavy[1])
