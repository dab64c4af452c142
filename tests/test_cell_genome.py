"""AmoebaNet / NASNet cell genomes: the published fixtures, text and dict forms, validation
errors, the canonical key against labelled-graph isomorphism (exhaustively for small cells) and
under random renumberings, and the mutation / crossover / random operators with their
statistics."""
from __future__ import annotations

import dataclasses
import itertools
import json
import random
import time
from collections import Counter, defaultdict

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genome.cell import (AMOEBANET_A, CELLS, KNOWN_OPS, NASNET_A, NASNET_OPS, CellGenome,
                         crossover, mutate, mutate_hidden_state, mutate_op)
from genome.errors import EvonasError, GenomeError

TWO_OPS = ("identity", "sep_conv_3x3")


# --------------------------------------------------------------------------- helpers (oracles)
def cell_graph(blocks) -> nx.DiGraph:
    """The cell as a labelled DAG, independent of the key code: the two cell inputs, one node per
    half labelled with its op (input -> half -> block), one node per block, and the output node
    fed by every block no block reads."""
    graph = nx.DiGraph()
    graph.add_node(("in", 0), label="in0")
    graph.add_node(("in", 1), label="in1")
    graph.add_node("out", label="out")

    def state(s):
        return ("in", s) if s < 2 else ("block", s - 2)

    read = set()
    for i, (ia, oa, ib, ob) in enumerate(blocks):
        graph.add_node(("block", i), label="block")
        for h, (s, op) in enumerate(((ia, oa), (ib, ob))):
            graph.add_node(("half", i, h), label=op)
            graph.add_edge(state(s), ("half", i, h))
            graph.add_edge(("half", i, h), ("block", i))
            read.add(s)
    for i in range(len(blocks)):
        if i + 2 not in read:
            graph.add_edge(("block", i), "out")
    return graph


def same_cell(a, b) -> bool:
    return nx.is_isomorphic(cell_graph(a), cell_graph(b),
                            node_match=lambda x, y: x["label"] == y["label"])


def same_network(g: CellGenome, h: CellGenome) -> bool:
    return all(same_cell(g.cell(name), h.cell(name)) for name in CELLS)


def topological_orders(blocks):
    """Every order of the blocks in which each block comes after the blocks it reads."""
    for order in itertools.permutations(range(len(blocks))):
        position = {v: p for p, v in enumerate(order)}
        if all(position[b[k] - 2] < position[v]
               for v, b in enumerate(blocks) for k in (0, 2) if b[k] >= 2):
            yield order


def brute_canonical(blocks) -> tuple:
    """Smallest relabelled block sequence (halves sorted) over all topological orders."""
    best = None
    for order in topological_orders(blocks):
        state = {v: 2 + p for p, v in enumerate(order)}
        relabel = lambda s: s if s < 2 else state[s - 2]  # noqa: E731
        code = tuple(tuple(x for half in sorted(((relabel(blocks[v][0]), blocks[v][1]),
                                                 (relabel(blocks[v][2]), blocks[v][3])))
                           for x in half)
                     for v in order)
        best = code if best is None or code < best else best
    return best


def renumber_cell(blocks, rng: random.Random, swap_halves: bool = True):
    """The same cell: blocks renumbered by a random topological order (references relabelled)
    and, optionally, each block's halves swapped at random."""
    n = len(blocks)
    deps = {v: {b[k] - 2 for k in (0, 2) if b[k] >= 2} for v, b in enumerate(blocks)}
    order: list[int] = []
    while len(order) < n:
        ready = [v for v in range(n) if v not in order and deps[v] <= set(order)]
        order.append(rng.choice(ready))
    state = {v: 2 + p for p, v in enumerate(order)}
    relabel = lambda s: s if s < 2 else state[s - 2]  # noqa: E731
    out = []
    for v in order:
        ia, oa, ib, ob = blocks[v]
        block = (relabel(ia), oa, relabel(ib), ob)
        if swap_halves and rng.random() < 0.5:
            block = block[2:] + block[:2]
        out.append(block)
    return tuple(out)


def renumber(genome: CellGenome, rng: random.Random) -> CellGenome:
    return CellGenome(renumber_cell(genome.normal, rng), renumber_cell(genome.reduction, rng))


def diffs(a: CellGenome, b: CellGenome) -> list[tuple[str, int, int]]:
    """(cell, block, position) of every block entry that differs; same block counts assumed."""
    return [(name, i, k) for name in CELLS
            for i, (x, y) in enumerate(zip(a.cell(name), b.cell(name)))
            for k in range(4) if x[k] != y[k]]


# --------------------------------------------------------------------------- published fixtures
AMOEBANET_A_TEXT = (
    "avg_pool_3x3@0+max_pool_3x3@1,sep_conv_3x3@0+sep_conv_5x5@2,sep_conv_3x3@0+avg_pool_3x3@3,"
    "sep_conv_3x3@1+identity@1,identity@0+avg_pool_3x3@1/"
    "avg_pool_3x3@0+sep_conv_3x3@1,max_pool_3x3@0+sep_conv_7x7@2,sep_conv_7x7@0+avg_pool_3x3@1,"
    "max_pool_3x3@0+max_pool_3x3@1,conv_1x7_7x1@0+sep_conv_3x3@5")
NASNET_A_TEXT = (
    "sep_conv_5x5@1+sep_conv_3x3@0,sep_conv_5x5@0+sep_conv_3x3@0,avg_pool_3x3@1+identity@0,"
    "avg_pool_3x3@0+avg_pool_3x3@0,sep_conv_3x3@1+identity@1/"
    "sep_conv_5x5@1+sep_conv_7x7@0,max_pool_3x3@1+sep_conv_7x7@0,avg_pool_3x3@1+sep_conv_5x5@0,"
    "identity@3+avg_pool_3x3@2,sep_conv_3x3@2+max_pool_3x3@1")


@pytest.mark.parametrize("genome, text, normal_out, reduction_out", [
    (AMOEBANET_A, AMOEBANET_A_TEXT, (4, 5, 6), (3, 4, 6)),
    (NASNET_A, NASNET_A_TEXT, (2, 3, 4, 5, 6), (4, 5, 6)),
])
def test_published_fixtures(genome, text, normal_out, reduction_out):
    # the DARTS genotypes, block for block, and their concat lists
    assert genome.to_string() == text == str(genome)
    assert genome.outputs("normal") == normal_out
    assert genome.outputs("reduction") == reduction_out
    assert len(genome.normal) == len(genome.reduction) == 5
    assert genome.ops <= set(NASNET_OPS)
    assert CellGenome.from_string(text) == genome
    data = genome.to_dict()
    assert data["encoding"] == "cell"
    assert data["normal"] == [list(b) for b in genome.normal]
    assert CellGenome.from_dict(data) == genome
    assert CellGenome.from_dict(json.loads(json.dumps(data))) == genome


def test_fixtures_hashable_frozen_and_normalised():
    copy = CellGenome([list(b) for b in AMOEBANET_A.normal],
                      [list(b) for b in AMOEBANET_A.reduction])   # lists become tuples
    assert copy == AMOEBANET_A and hash(copy) == hash(AMOEBANET_A)
    assert isinstance(copy.normal, tuple) and all(isinstance(b, tuple) for b in copy.normal)
    assert len({AMOEBANET_A, copy, NASNET_A}) == 2
    assert {AMOEBANET_A: 1}[copy] == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        AMOEBANET_A.normal = NASNET_A.normal
    assert AMOEBANET_A.to_string() == AMOEBANET_A_TEXT


def test_outputs_and_cell_accessor():
    genome = CellGenome.from_string("identity@0+identity@1,identity@2+identity@0/"
                                    "identity@0+identity@1,identity@0+identity@1")
    assert genome.outputs("normal") == (3,)
    assert genome.outputs("reduction") == (2, 3)
    assert genome.cell("reduction") == genome.reduction
    with pytest.raises(GenomeError, match="'normal' or 'reduction'"):
        genome.cell("stem")


# --------------------------------------------------------------------------- validation errors
def test_genome_error_is_value_error_and_evonas_error():
    assert issubclass(GenomeError, ValueError) and issubclass(GenomeError, EvonasError)


OK = (0, "identity", 1, "identity")


@pytest.mark.parametrize("normal, reduction, match", [
    (((0, "identity", 2, "identity"),), (OK,), r"normal cell block 0 reads state 2.*0\.\.1"),
    ((OK, (3, "identity", 1, "identity")), (OK,), r"normal cell block 1 reads state 3.*0\.\.2"),
    ((OK, (0, "identity", 4, "identity")), (OK,), r"block 1 reads state 4"),
    ((OK,), ((-1, "identity", 1, "identity"),), r"reduction cell block 0 reads state -1"),
    ((OK,), ((0, "identity", True, "identity"),), r"inputs must be integers, got True"),
    ((OK,), ((0, "identity", "1", "identity"),), r"inputs must be integers, got '1'"),
    (((0, "conv_9x9", 1, "identity"),), (OK,), r"unknown op 'conv_9x9'.*known ops: .*identity"),
    ((OK,), ((0, "identity", 1, "Identity"),), r"reduction cell block 0 uses unknown op"),
    ((), (OK,), "normal cell needs at least one block"),
    ((OK,), [], "reduction cell needs at least one block"),
    (((0, "identity", 1),), (OK,), r"block 0 must be \(input_a, op_a, input_b, op_b\)"),
    ((OK, (0, "identity", 1, "identity", 2)), (OK,), r"block 1 must be"),
    ((OK,), 5, "reduction cell must be a sequence of blocks"),
    ((OK, 7), (OK,), "normal cell must be a sequence of blocks"),
])
def test_constructor_validation(normal, reduction, match):
    with pytest.raises(GenomeError, match=match):
        CellGenome(normal, reduction)


@pytest.mark.parametrize("text", [
    "identity@0+identity@1",                                  # missing '/'
    "identity@0+identity@1/identity@0+identity@1/identity@0+identity@1",
    "identity0+identity@1/identity@0+identity@1",             # missing '@'
    "identity@0+identity@1/identity@0+identity",
    "identity@x+identity@1/identity@0+identity@1",            # non-integer input
    "identity@0+identity@1/identity@0+identity@1.5",
    "identity@0/identity@0+identity@1",                       # one half
    "identity@0+identity@1+identity@1/identity@0+identity@1",  # three halves
    "/identity@0+identity@1",                                  # empty cell
    "identity@0+identity@1,/identity@0+identity@1",            # empty block
    "",
])
def test_malformed_strings_raise_genome_error(text):
    with pytest.raises(GenomeError, match="malformed block|expected a cell genome string"):
        CellGenome.from_string(text)


def test_string_with_bad_content_raises_constructor_errors():
    with pytest.raises(GenomeError, match="unknown op 'conv_9x9'"):
        CellGenome.from_string("conv_9x9@0+identity@1/identity@0+identity@1")
    with pytest.raises(GenomeError, match="reads state 2"):
        CellGenome.from_string("identity@2+identity@1/identity@0+identity@1")
    for bad in (None, 5, b"identity@0+identity@1/identity@0+identity@1"):
        with pytest.raises(GenomeError, match="expected a cell genome string"):
            CellGenome.from_string(bad)


@pytest.mark.parametrize("data, match", [
    ({"encoding": "cell", "normal": [list(OK)]}, "needs 'normal' and 'reduction'"),
    ({"encoding": "cell"}, "needs 'normal' and 'reduction'"),
    ({}, "needs 'normal' and 'reduction'"),
    ("identity@0+identity@1/identity@0+identity@1", "needs 'normal' and 'reduction'"),
    ({"encoding": "binary", "normal": [list(OK)], "reduction": [list(OK)]},
     "expected encoding 'cell'"),
    ({"encoding": "cell", "normal": [[0, "identity", 5, "identity"]],
      "reduction": [list(OK)]}, "reads state 5"),
])
def test_malformed_dicts_raise_genome_error(data, match):
    with pytest.raises(GenomeError, match=match):
        CellGenome.from_dict(data)


def test_dict_encoding_defaults_to_cell():
    data = NASNET_A.to_dict()
    del data["encoding"]
    assert CellGenome.from_dict(data) == NASNET_A


# --------------------------------------------------------------------------- canonical key
def test_key_is_a_canonical_genome_string():
    for genome in (AMOEBANET_A, NASNET_A):
        key = genome.key()
        canon = CellGenome.from_string(key)        # the key is a valid genome string
        assert canon.to_string() == key
        assert genome.canonical() == canon
        assert canon.key() == key and canon.canonical() == canon
        assert same_network(canon, genome)
        assert sorted(map(len, (canon.outputs(n) for n in CELLS))) == sorted(
            map(len, (genome.outputs(n) for n in CELLS)))
    assert AMOEBANET_A.key() != NASNET_A.key()
    # the two cells are keyed separately: exchanging them changes the network and the key
    swapped = CellGenome(AMOEBANET_A.reduction, AMOEBANET_A.normal)
    assert swapped.key() != AMOEBANET_A.key()
    assert swapped.key().split("/") == AMOEBANET_A.key().split("/")[::-1]


def test_key_literal_examples():
    a = CellGenome.from_string("sep_conv_3x3@1+identity@0/max_pool_3x3@1+avg_pool_3x3@0")
    assert a.key() == "identity@0+sep_conv_3x3@1/avg_pool_3x3@0+max_pool_3x3@1"
    # two independent blocks in either order, one of them read by a third block
    b = CellGenome.from_string("identity@1+identity@1,sep_conv_3x3@0+sep_conv_3x3@0,"
                               "identity@2+identity@3/identity@0+identity@1")
    c = CellGenome.from_string("sep_conv_3x3@0+sep_conv_3x3@0,identity@1+identity@1,"
                               "identity@3+identity@2/identity@0+identity@1")
    # blocks compare as (input, op, input, op): the block reading state 0 comes first
    assert b.key() == c.key() == ("sep_conv_3x3@0+sep_conv_3x3@0,identity@1+identity@1,"
                                  "identity@2+identity@3/identity@0+identity@1")
    # a different wiring of the third block is a different network
    d = CellGenome.from_string("identity@1+identity@1,sep_conv_3x3@0+sep_conv_3x3@0,"
                               "identity@2+identity@2/identity@0+identity@1")
    assert d.key() != b.key()


def test_key_invariant_under_swapping_halves_of_any_block():
    rng = random.Random(7)
    for _ in range(100):
        genome = CellGenome.random(rng, blocks=rng.randint(1, 7))
        for name in CELLS:
            for i, block in enumerate(genome.cell(name)):
                cells = {n: genome.cell(n) for n in CELLS}
                cells[name] = cells[name][:i] + (block[2:] + block[:2],) + cells[name][i + 1:]
                assert CellGenome(**cells).key() == genome.key()


@pytest.mark.parametrize("blocks", [3, 4, 5, 6, 7])
def test_key_invariant_under_random_topological_renumbering(blocks):
    rng = random.Random(100 + blocks)
    changed = 0
    for _ in range(150):
        ops = NASNET_OPS if rng.random() < 0.5 else TWO_OPS
        genome = CellGenome.random(rng, blocks=blocks, ops=ops)
        other = renumber(genome, rng)
        changed += other != genome
        assert other.key() == genome.key(), (genome, other)
        assert other.canonical() == genome.canonical()
        for name in CELLS:       # same number of outputs, possibly different state numbers
            assert len(other.outputs(name)) == len(genome.outputs(name))
    assert changed > 100     # the renumbering really produced different encodings
    # the oracle agrees that renumbered genomes are the same network
    genome = CellGenome.random(rng, blocks=blocks)
    assert same_network(renumber(genome, rng), genome)


def symmetric_cell(rng: random.Random, n: int) -> tuple:
    """One op, a layer of identical blocks reading the cell inputs, then blocks reading pairs of
    earlier states: many blocks that colour refinement cannot tell apart without being
    interchangeable, the hard case for the key's tie-breaking and prefix merging."""
    k = rng.randint(2, n - 1)
    blocks = [(0, "identity", 1, "identity")] * k
    for i in range(k, n):
        a, b = rng.sample(range(2, 2 + i), 2) if rng.random() < 0.8 else (rng.randrange(2 + i),) * 2
        blocks.append((a, "identity", b, "identity"))
    return tuple(blocks)


def test_key_on_symmetric_cells():
    rng = random.Random(0)
    fixed = ((0, "identity", 1, "identity"),)
    small, small_keys = [], []
    for _ in range(400):
        cell = symmetric_cell(rng, rng.randint(4, 8))
        key = CellGenome(cell, fixed).key()
        for _ in range(10):
            assert CellGenome(renumber_cell(cell, rng), fixed).key() == key, cell
        if len(cell) <= 6:
            small.append(cell)
            small_keys.append(key)
    assert_partitions_equal(small_keys, [brute_canonical(c) for c in small])
    assert len(set(small_keys)) < len(small)


def test_key_changes_when_an_op_changes_to_one_absent_from_the_cell():
    rng = random.Random(11)
    for _ in range(200):
        genome = CellGenome.random(rng, blocks=rng.randint(1, 6), ops=NASNET_OPS[:5])
        name = rng.choice(CELLS)
        i = rng.randrange(len(genome.cell(name)))
        k = rng.choice((1, 3))
        present = {b[j] for b in genome.cell(name) for j in (1, 3)}
        new_op = rng.choice(sorted(KNOWN_OPS - present))
        block = list(genome.cell(name)[i])
        block[k] = new_op
        cells = {n: genome.cell(n) for n in CELLS}
        cells[name] = cells[name][:i] + (tuple(block),) + cells[name][i + 1:]
        assert CellGenome(**cells).key() != genome.key()


def test_key_matches_isomorphism_on_random_pairs():
    """Keys of two genomes are equal exactly when their labelled graphs are isomorphic (the
    oracle is networkx, independent of the key code): a genome against a mutant of itself
    (rarely the same network), of a renumbered copy, and against an independent genome of a
    tiny space (often the same network)."""
    rng = random.Random(5)
    outcomes = Counter()
    for _ in range(400):
        genome = CellGenome.random(rng, blocks=rng.randint(2, 5), ops=TWO_OPS)
        tiny_a, tiny_b = (CellGenome(CellGenome.random(rng, 2, ("identity",)).normal,
                                     NASNET_A.reduction) for _ in range(2))
        pairs = [(genome, mutate(genome, rng, ops=TWO_OPS)),
                 (genome, mutate(renumber(genome, rng), rng, ops=TWO_OPS)),
                 (tiny_a, tiny_b)]
        for a, b in pairs:
            iso = same_network(a, b)
            assert (a.key() == b.key()) == iso, (a, b)
            outcomes[iso] += 1
    assert outcomes[True] > 10 and outcomes[False] > 500


def iso_classes(cells) -> list[int]:
    """Class id per cell by networkx isomorphism, bucketed by (label, in, out degree) counts."""
    reps: dict[tuple, list[tuple[nx.DiGraph, int]]] = defaultdict(list)
    ids, count = [], 0
    for blocks in cells:
        graph = cell_graph(blocks)
        bucket = reps[tuple(sorted((graph.nodes[v]["label"], graph.in_degree(v),
                                    graph.out_degree(v)) for v in graph))]
        for rep, c in bucket:
            if nx.is_isomorphic(graph, rep, node_match=lambda x, y: x["label"] == y["label"]):
                ids.append(c)
                break
        else:
            bucket.append((graph, count))
            ids.append(count)
            count += 1
    return ids


def all_cells(n_blocks: int, ops) -> list[tuple]:
    per_block = [list(itertools.product(range(2 + i), ops, range(2 + i), ops))
                 for i in range(n_blocks)]
    return list(itertools.product(*per_block))


def assert_partitions_equal(labels_a, labels_b):
    """Two labellings of the same items induce the same partition."""
    pairs = set(zip(labels_a, labels_b))
    assert len(pairs) == len(set(labels_a)) == len(set(labels_b))


@pytest.mark.parametrize("n_blocks, ops", [(1, TWO_OPS), (2, TWO_OPS), (3, ("identity",))])
def test_key_matches_isomorphism_exhaustively(n_blocks, ops):
    cells = all_cells(n_blocks, ops)
    fixed = ((0, "identity", 1, "identity"),)
    keys_n = [CellGenome(c, fixed).key() for c in cells]        # vary the normal cell
    keys_r = [CellGenome(fixed, c).key() for c in cells]        # and the reduction cell
    brute = [brute_canonical(c) for c in cells]
    iso = iso_classes(cells)
    assert_partitions_equal(brute, iso)             # guard the two oracles against each other
    assert_partitions_equal(keys_n, brute)          # keys equal iff brute-force canonical equal
    assert_partitions_equal(keys_r, brute)
    assert len(set(keys_n)) < len(cells)            # the space really has equivalent genomes
    for c, key in zip(cells, keys_n):
        canon = CellGenome.from_string(key)
        assert canon.key() == key
        assert same_cell(canon.normal, c)


def test_key_matches_brute_force_exhaustively_for_three_blocks_two_ops():
    cells = all_cells(3, TWO_OPS)
    assert len(cells) == 16 * 36 * 64
    fixed = ((0, "identity", 1, "identity"),)
    keys = [CellGenome(c, fixed).key() for c in cells]
    assert_partitions_equal(keys, [brute_canonical(c) for c in cells])


def test_key_is_fast_for_ten_blocks_and_symmetric_cells():
    rng = random.Random(3)
    genomes = [CellGenome.random(rng, blocks=10) for _ in range(50)]
    # many blocks reading only the cell inputs with one op: the hardest case for tie-breaking
    for _ in range(50):
        cell = tuple((rng.choice((0, 1, rng.randrange(2 + i))), "identity",
                      rng.choice((0, 1, rng.randrange(2 + i))), "identity") for i in range(10))
        genomes.append(CellGenome(cell, cell))
    worst = 0.0
    for genome in genomes:
        start = time.perf_counter()
        key = genome.key()
        worst = max(worst, time.perf_counter() - start)
        assert CellGenome.from_string(key).key() == key
    assert worst < 0.25, f"slowest key took {worst * 1000:.0f} ms"


# --------------------------------------------------------------------------- mutations
def test_hidden_state_mutation_rewires_exactly_one_input():
    rng = random.Random(1)
    for _ in range(500):
        genome = CellGenome.random(rng, blocks=rng.randint(1, 6),
                                   reduction_blocks=rng.randint(1, 6))
        before = genome.to_string()
        child = mutate_hidden_state(genome, rng)
        assert genome.to_string() == before            # the argument is untouched
        assert isinstance(child, CellGenome)
        changed = diffs(genome, child)
        assert len(changed) == 1
        name, i, k = changed[0]
        assert k in (0, 2)                              # an input, never an op
        new = child.cell(name)[i][k]
        assert new != genome.cell(name)[i][k] and 0 <= new < 2 + i


def test_hidden_state_mutation_of_first_block_flips_between_cell_inputs():
    genome = CellGenome(((0, "identity", 1, "sep_conv_3x3"),), ((1, "identity", 1, "identity"),))
    rng = random.Random(2)
    seen = Counter()
    for _ in range(400):
        changed = diffs(genome, mutate_hidden_state(genome, rng))
        (name, i, k), = changed
        seen[name, k] += 1
    assert set(seen) == {("normal", 0), ("normal", 2), ("reduction", 0), ("reduction", 2)}


def test_hidden_state_mutation_picks_new_input_uniformly():
    # a one-block reduction cell and a 4-block normal cell whose last block reads 0 and 0
    genome = CellGenome.from_string("identity@0+identity@0,identity@0+identity@0,"
                                    "identity@0+identity@0,identity@0+identity@0/"
                                    "identity@0+identity@1")
    rng = random.Random(4)
    new_inputs = Counter()
    for _ in range(8000):
        child = mutate_hidden_state(genome, rng)
        (name, i, k), = diffs(genome, child)
        if name == "normal" and i == 3:
            new_inputs[child.normal[3][k]] += 1
    assert set(new_inputs) == {1, 2, 3, 4}
    total = sum(new_inputs.values())
    assert 8000 / 8 * 0.8 < total < 8000 / 8 * 1.2      # cell 1/2, block 1/4
    for s in (1, 2, 3, 4):
        assert 0.2 < new_inputs[s] / total < 0.3


def test_op_mutation_replaces_exactly_one_op_by_a_different_allowed_one():
    rng = random.Random(2)
    for ops in (NASNET_OPS, TWO_OPS, ("conv_1x1", "conv_3x3", "dil_sep_conv_5x5")):
        for _ in range(300):
            genome = CellGenome.random(rng, blocks=rng.randint(1, 6))
            before = genome.to_string()
            child = mutate_op(genome, rng, ops)
            assert genome.to_string() == before
            changed = diffs(genome, child)
            assert len(changed) == 1
            name, i, k = changed[0]
            assert k in (1, 3)                          # an op, never an input
            new = child.cell(name)[i][k]
            assert new in ops and new != genome.cell(name)[i][k]


def test_op_mutation_default_ops_and_uniform_choice():
    genome = CellGenome(((0, "identity", 1, "identity"),), ((0, "identity", 1, "identity"),))
    rng = random.Random(9)
    new_ops = Counter()
    for _ in range(7000):
        (name, i, k), = diffs(genome, child := mutate_op(genome, rng))
        new_ops[child.cell(name)[i][k]] += 1
    assert set(new_ops) == set(NASNET_OPS) - {"identity"}
    for op in new_ops:
        assert 0.12 < new_ops[op] / 7000 < 0.165       # 1/7 each


@pytest.mark.parametrize("operator", ["hidden", "op"])
def test_mutation_picks_each_cell_about_half_the_time(operator):
    rng = random.Random(13)
    genome = CellGenome.random(rng, blocks=5, reduction_blocks=2)   # sizes must not bias it
    cells = Counter()
    n = 4000
    for _ in range(n):
        child = (mutate_hidden_state(genome, rng) if operator == "hidden"
                 else mutate_op(genome, rng, NASNET_OPS))
        (name, _, _), = diffs(genome, child)
        cells[name] += 1
    # binomial(4000, 0.5): sd ~ 32; allow 5 sd
    assert abs(cells["normal"] - n / 2) < 160, cells


def test_mutate_identity_hidden_and_op_probabilities():
    rng = random.Random(21)
    genome = CellGenome.random(rng, blocks=4)
    for _ in range(50):
        assert mutate(genome, rng, p_identity=1.0) is genome
        assert mutate(genome, rng, p_hidden=0, p_op=0, p_identity=1.0) is genome
        only_inputs = mutate(genome, rng, p_hidden=1, p_op=0)
        assert [k for _, _, k in diffs(genome, only_inputs)] in ([0], [2])
        only_ops = mutate(genome, rng, p_hidden=0, p_op=1, ops=TWO_OPS)
        assert [k for _, _, k in diffs(genome, only_ops)] in ([1], [3])
    kinds = Counter()
    n = 6000
    for _ in range(n):
        changed = diffs(genome, mutate(genome, rng, p_hidden=1, p_op=3, p_identity=0.2))
        kinds["identity" if not changed else "hidden" if changed[0][2] in (0, 2) else "op"] += 1
    assert 0.17 < kinds["identity"] / n < 0.23
    assert 0.17 < kinds["hidden"] / n < 0.23            # 0.8 * 1/4
    assert 0.57 < kinds["op"] / n < 0.63                # 0.8 * 3/4


def test_mutate_is_deterministic_per_seed():
    genome = AMOEBANET_A
    a = [mutate(genome, random.Random(s)) for s in range(30)]
    b = [mutate(genome, random.Random(s)) for s in range(30)]
    assert a == b
    assert len(set(a)) > 20


@pytest.mark.parametrize("kwargs, match", [
    ({"p_hidden": -0.1}, "p_hidden must be a finite weight"),
    ({"p_op": float("nan")}, "p_op must be a finite weight"),
    ({"p_op": float("inf")}, "p_op must be a finite weight"),
    ({"p_hidden": "0.5"}, "p_hidden must be a finite weight"),
    ({"p_identity": 1.5}, r"p_identity must be a probability in \[0, 1\]"),
    ({"p_identity": -0.5}, "p_identity must be a probability"),
    ({"p_hidden": 0, "p_op": 0}, "both 0"),
    ({"p_hidden": 0, "p_op": 0, "p_identity": 0.5}, "both 0"),
    ({"ops": ("identity",)}, "at least 2 distinct op"),
    ({"ops": ("identity", "identity")}, "at least 2 distinct op"),
    ({"ops": ()}, "at least 2 distinct op"),
    ({"ops": ("identity", "conv_9x9")}, r"unknown ops \['conv_9x9'\]"),
    ({"ops": "identity"}, "ops must be a sequence of op names"),
    ({"ops": 3}, "ops must be a sequence of op names"),
])
def test_mutate_rejects_bad_arguments(kwargs, match):
    with pytest.raises(GenomeError, match=match):
        mutate(NASNET_A, random.Random(0), **kwargs)


def test_mutate_op_rejects_bad_ops():
    for ops, match in ((("sep_conv_3x3",), "at least 2"), (("sep_conv_3x3", "bogus"), "bogus"),
                       (("sep_conv_3x3", None), "None")):
        with pytest.raises(GenomeError, match=match):
            mutate_op(NASNET_A, random.Random(0), ops)


# --------------------------------------------------------------------------- crossover
def test_crossover_moves_only_whole_cells():
    rng = random.Random(8)
    for _ in range(300):
        a = CellGenome.random(rng, blocks=rng.randint(1, 5), reduction_blocks=rng.randint(1, 5))
        b = CellGenome.random(rng, blocks=rng.randint(1, 5), reduction_blocks=rng.randint(1, 5))
        a0, b0 = a.to_string(), b.to_string()
        c, d = crossover(a, b, rng, p_c=0.7, q_c=0.5)
        assert (a.to_string(), b.to_string()) == (a0, b0)
        for name in CELLS:
            assert {c.cell(name), d.cell(name)} == {a.cell(name), b.cell(name)}
            assert (c.cell(name) == a.cell(name)) == (d.cell(name) == b.cell(name)) or \
                a.cell(name) == b.cell(name)


def test_crossover_probabilities():
    a, b = AMOEBANET_A, NASNET_A
    rng = random.Random(3)
    for _ in range(20):
        assert crossover(a, b, rng, p_c=0.0, q_c=1.0) == (a, b)
        c, d = crossover(a, b, rng, p_c=0.0, q_c=1.0)
        assert c is a and d is b
        assert crossover(a, b, rng, p_c=1.0, q_c=1.0) == (b, a)
        assert crossover(a, b, rng, p_c=1.0, q_c=0.0) == (a, b)
    swaps = Counter()
    n = 4000
    for _ in range(n):
        c, _ = crossover(a, b, rng, p_c=0.5, q_c=0.5)
        for name in CELLS:
            swaps[name] += c.cell(name) == b.cell(name)
    for name in CELLS:                                  # 0.5 * 0.5 = 0.25 each
        assert 0.22 < swaps[name] / n < 0.28


def test_crossover_rejects_bad_probabilities():
    for kwargs in ({"p_c": 1.5, "q_c": 0.5}, {"p_c": 0.5, "q_c": -1}, {"p_c": None, "q_c": 0.5}):
        with pytest.raises(GenomeError, match="must be a probability"):
            crossover(AMOEBANET_A, NASNET_A, random.Random(0), **kwargs)


# --------------------------------------------------------------------------- random genomes
def test_random_genomes():
    a = CellGenome.random(random.Random(42))
    assert a == CellGenome.random(random.Random(42))
    assert a != CellGenome.random(random.Random(43))
    assert len(a.normal) == len(a.reduction) == 5
    b = CellGenome.random(random.Random(1), blocks=3, reduction_blocks=7, ops=TWO_OPS)
    assert (len(b.normal), len(b.reduction)) == (3, 7)
    rng = random.Random(0)
    used_ops, used_inputs = Counter(), Counter()
    for _ in range(500):
        genome = CellGenome.random(rng, blocks=4, ops=("max_pool_3x3", "conv_1x1", "conv_3x3"))
        assert CellGenome.from_string(genome.to_string()) == genome
        used_ops.update(b[k] for n in CELLS for b in genome.cell(n) for k in (1, 3))
        used_inputs.update(b[k] for b in genome.normal[3:] for k in (0, 2))
    assert set(used_ops) == {"max_pool_3x3", "conv_1x1", "conv_3x3"}
    assert set(used_inputs) == {0, 1, 2, 3, 4}         # block 3 reads any of 0..4
    for s in range(5):
        assert 0.15 < used_inputs[s] / 1000 < 0.25
    assert CellGenome.random(random.Random(0), blocks=2, ops=("identity",)).ops == {"identity"}


@pytest.mark.parametrize("kwargs, match", [
    ({"blocks": 0}, "normal cell needs an integer number of blocks >= 1"),
    ({"blocks": 2, "reduction_blocks": 0}, "reduction cell needs an integer"),
    ({"blocks": 2.5}, "integer number of blocks"),
    ({"ops": ()}, "at least 1 distinct op"),
    ({"ops": ("nope",)}, "unknown ops"),
])
def test_random_rejects_bad_arguments(kwargs, match):
    with pytest.raises(GenomeError, match=match):
        CellGenome.random(random.Random(0), **kwargs)


# --------------------------------------------------------------------------- properties
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), blocks=st.integers(1, 7), reduction=st.integers(1, 7),
       p_identity=st.sampled_from([0.0, 0.3]), q_c=st.floats(0, 1))
def test_operators_always_return_valid_genomes(seed, blocks, reduction, p_identity, q_c):
    rng = random.Random(seed)
    a = CellGenome.random(rng, blocks=blocks, reduction_blocks=reduction)
    b = CellGenome.random(rng, blocks=reduction, reduction_blocks=blocks, ops=TWO_OPS)
    children = [mutate(a, rng, p_identity=p_identity), mutate(b, rng, ops=TWO_OPS),
                mutate_hidden_state(a, rng), mutate_op(b, rng), *crossover(a, b, rng, p_c=1,
                                                                          q_c=q_c)]
    for child in (a, b, *children):
        assert isinstance(child, CellGenome)
        assert CellGenome.from_string(child.to_string()) == child
        assert CellGenome.from_dict(json.loads(json.dumps(child.to_dict()))) == child
        assert CellGenome(child.normal, child.reduction) == child      # re-validates
        key = child.key()
        assert CellGenome.from_string(key).key() == key
        assert renumber(child, rng).key() == key
