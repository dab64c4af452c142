"""Genetic-CNN binary genomes: the paper's decoding rules on published stage fixtures, text and
dict forms, validation errors, the canonical key against graph isomorphism (exhaustively for
stages (3, 4)), and the variation / selection operators, including their statistics."""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
from collections import Counter

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evolution.strategies.selection import roulette
from genome.binary import BinaryGenome, bit_index, bits_per_stage, crossover, mutate
from genome.errors import EvonasError, GenomeError
from genome.registry import genome_from_dict

INF = float("inf")


def edges(code: str, s: int = 0) -> set[tuple[int, int]]:
    return set(BinaryGenome.from_string(code).stage_graph(s).edges)


def roles(graph: nx.DiGraph) -> dict[int, str]:
    return dict(graph.nodes(data="role"))


def same_network(g1: nx.DiGraph, g2: nx.DiGraph) -> bool:
    return nx.is_isomorphic(g1, g2, node_match=lambda a, b: a["role"] == b["role"])


def all_stage_bits(k: int) -> list[tuple[int, ...]]:
    return list(itertools.product((0, 1), repeat=bits_per_stage(k)))


# --------------------------------------------------------------------------- paper fixtures
@pytest.mark.parametrize("code, expected", [
    # chain v1 -> v2 -> v3 -> v4 (VGG-like)
    ("1-01-001", {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}),
    # ResNet-like: chain plus the skip v1 -> v4
    ("1-01-101", {(0, 1), (1, 2), (2, 3), (3, 4), (1, 4), (4, 5)}),
    # DenseNet-like: every pair connected
    ("1-11-111", {(0, 1), (1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4), (4, 5)}),
])
def test_paper_stage_fixtures_decode_to_expected_edges(code, expected):
    graph = BinaryGenome.from_string(code).stage_graph(0)
    assert set(graph.edges) == expected
    assert roles(graph) == {0: "input", 1: "node", 2: "node", 3: "node", 4: "node", 5: "output"}
    assert nx.is_directed_acyclic_graph(graph)


def test_multi_stage_string_decodes_each_stage():
    genome = BinaryGenome.from_string("1-01_1-01-001")
    assert genome.stages == (3, 4)
    assert genome.bits == ((1, 0, 1), (1, 0, 1, 0, 0, 1))
    assert set(genome.stage_graph(0).edges) == {(0, 1), (1, 2), (2, 3), (3, 4)}
    assert set(genome.stage_graph(1).edges) == {(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}


# --------------------------------------------------------------------------- pruning
def test_isolated_nodes_are_pruned():
    graph = BinaryGenome.from_string("1-00-000").stage_graph(0)
    assert roles(graph) == {0: "input", 1: "node", 2: "node", 5: "output"}
    assert set(graph.edges) == {(0, 1), (1, 2), (2, 5)}


def test_all_zero_stage_is_input_to_output():
    for code in ("0", "0-00", "0-00-000", "0-00-000-0000"):
        graph = BinaryGenome.from_string(code).stage_graph(0)
        k = code.count("-") + 2
        assert roles(graph) == {0: "input", k + 1: "output"}
        assert set(graph.edges) == {(0, k + 1)}


def test_node_with_only_outgoing_edges_is_fed_by_input():
    # v2 -> v3 and v1 -> v4: v1 and v2 only have outgoing edges, v3 and v4 only incoming.
    graph = BinaryGenome.from_string("0-01-100").stage_graph(0)
    assert roles(graph) == {0: "input", 1: "node", 2: "node", 3: "node", 4: "node", 5: "output"}
    assert set(graph.edges) == {(0, 1), (0, 2), (1, 4), (2, 3), (3, 5), (4, 5)}


def test_middle_node_keeps_its_explicit_edges_only():
    # v1 -> v3 only (v2 and v4 isolated): input -> v1 -> v3 -> output, nodes 2 and 4 absent.
    graph = BinaryGenome.from_string("0-10-000").stage_graph(0)
    assert roles(graph) == {0: "input", 1: "node", 3: "node", 5: "output"}
    assert set(graph.edges) == {(0, 1), (1, 3), (3, 5)}


# --------------------------------------------------------------------------- text / dict forms
def test_bit_order_follows_the_paper():
    order = [(1, 2), (1, 3), (2, 3), (1, 4), (2, 4), (3, 4)]
    assert [bit_index(i, j) for i, j in order] == list(range(6))
    texts = ["1-00-000", "0-10-000", "0-01-000", "0-00-100", "0-00-010", "0-00-001"]
    for position, ((i, j), text) in enumerate(zip(order, texts)):
        bits = tuple(int(n == position) for n in range(6))
        genome = BinaryGenome((4,), (bits,))
        assert genome.to_string() == text
        assert BinaryGenome.from_string(text).bits == (bits,)
        assert (i, j) in genome.stage_graph(0).edges
    assert BinaryGenome.from_string("1-01-101").bits == ((1, 0, 1, 1, 0, 1),)
    assert [bits_per_stage(k) for k in (2, 3, 4, 5, 6)] == [1, 3, 6, 10, 15]


def test_text_and_dict_round_trips_exhaustive_for_stages_3_4():
    for b3, b4 in itertools.product(all_stage_bits(3), all_stage_bits(4)):
        genome = BinaryGenome((3, 4), (b3, b4))
        text = genome.to_string()
        assert str(genome) == text
        assert BinaryGenome.from_string(text) == genome
        data = genome.to_dict()
        assert data == {"encoding": "binary", "stages": [3, 4], "code": text}
        assert BinaryGenome.from_dict(data) == genome
        assert genome_from_dict(json.loads(json.dumps(data))) == genome
    # ``stages`` is optional in the dict form; ``encoding`` defaults to binary for from_dict.
    assert BinaryGenome.from_dict({"code": "1-01_1-01-001"}) == BinaryGenome.from_string(
        "1-01_1-01-001")


def test_equality_hashing_and_frozen():
    a = BinaryGenome.from_string("1-01_1-01-101")
    b = BinaryGenome((3, 4), ([1, 0, 1], [1, 0, 1, 1, 0, 1]))   # lists are normalised to tuples
    c = BinaryGenome.from_string("1-01_1-11-111")
    assert a == b and hash(a) == hash(b)
    assert a != c
    assert isinstance(b.bits, tuple) and all(isinstance(s, tuple) for s in b.bits)
    assert len({a, b, c}) == 2
    assert {a: "x"}[b] == "x"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.bits = ((0, 0, 0), (0,) * 6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.stages = (3, 4)
    assert a.to_string() == "1-01_1-01-101"


# --------------------------------------------------------------------------- validation errors
def test_genome_error_is_value_error_and_evonas_error():
    assert issubclass(GenomeError, ValueError)
    assert issubclass(GenomeError, EvonasError)


@pytest.mark.parametrize("text, match", [
    ("", "expected a genome string"),
    ("   ", "expected a genome string"),
    ("1-0", r"group 2 .*'0'"),
    ("1-0x", r"group 2 .*'0x'"),
    ("1-01-", r"group 3 .*''"),
    ("1-01_", r"stage 2"),
    ("1-01__1", r"stage 2"),
    ("2", r"group 1 .*'2'"),
    ("1-01-0011", r"group 3 .*'0011'"),
])
def test_malformed_strings_raise_genome_error(text, match):
    with pytest.raises(GenomeError, match=match) as info:
        BinaryGenome.from_string(text)
    assert repr(text) in str(info.value) or not text.strip()


def test_non_string_input_raises_genome_error():
    for bad in (None, 101, b"1-01"):
        with pytest.raises(GenomeError, match="expected a genome string"):
            BinaryGenome.from_string(bad)


@pytest.mark.parametrize("data, match", [
    ({"encoding": "binary", "stages": [3]}, "needs a 'code' entry"),
    ({"encoding": "binary", "stages": [3, 4], "code": "1-01"}, r"has stages \(3,\).*\(3, 4\)"),
    ({"encoding": "binary", "stages": [4], "code": "1-01"}, r"has stages \(3,\)"),
    ({"encoding": "cell", "code": "1-01"}, "expected encoding 'binary'"),
    ({"encoding": "binary", "code": "1-0x"}, "malformed genome string"),
    (["code", "1-01"], "needs a 'code' entry"),
])
def test_malformed_dicts_raise_genome_error(data, match):
    with pytest.raises(GenomeError, match=match):
        BinaryGenome.from_dict(data)


def test_non_sequence_stages_in_dict_raise_genome_error():
    """Malformed ``stages`` entries are malformed dicts too; they must not leak a TypeError."""
    for stages in (3, None):
        with pytest.raises(GenomeError):
            BinaryGenome.from_dict({"encoding": "binary", "stages": stages, "code": "1-01"})


@pytest.mark.parametrize("data, match", [
    ({"encoding": "amoeba", "code": "1-01"}, r"unknown genome encoding 'amoeba'.*binary"),
    ({"code": "1-01"}, r"unknown genome encoding None"),
    ("1-01", "expected a genome dict"),
    ({"encoding": "binary"}, "needs a 'code' entry"),
])
def test_registry_rejects_bad_dicts(data, match):
    with pytest.raises(GenomeError, match=match):
        genome_from_dict(data)


@pytest.mark.parametrize("stages, bits, match", [
    ((1,), ((),), "at least 2 nodes"),
    ((3, 1), ((1, 0, 1), ()), "at least 2 nodes"),
    ((), (), "at least one stage"),
    ((3,), ((1, 0),), r"stage 1 has K=3 nodes and needs 3 bits, got 2"),
    ((3, 4), ((1, 0, 1), (1, 0, 1)), r"stage 2 has K=4 nodes and needs 6 bits, got 3"),
    ((3,), ((1, 0, 1), (1,)), r"1 stages .* 2 bit groups"),
    ((3,), ((1, 2, 0),), "must be 0 or 1"),
    ((3,), ((1, -1, 0),), "must be 0 or 1"),
    ((3,), ((1, "x", 0),), "integer stage sizes and 0/1 bits"),
    ((3,), (1,), "integer stage sizes and 0/1 bits"),
])
def test_constructor_validation(stages, bits, match):
    with pytest.raises(GenomeError, match=match):
        BinaryGenome(stages, bits)


def test_constructor_rejects_non_integral_values():
    """Bits must be 0 or 1 and stage sizes integers; 0.5 must not silently become 0."""
    with pytest.raises(GenomeError):
        BinaryGenome((2,), ((0.5,),))
    with pytest.raises(GenomeError):
        BinaryGenome((3,), ((1, 0.9, 0),))
    with pytest.raises(GenomeError):
        BinaryGenome((2.7,), ((1,),))


# --------------------------------------------------------------------------- canonical key
def iso_classes(graphs: list[nx.DiGraph]) -> list[int]:
    """Class id per graph, by pairwise role-matched isomorphism against class representatives."""
    reps: list[nx.DiGraph] = []
    ids = []
    for graph in graphs:
        for c, rep in enumerate(reps):
            if same_network(graph, rep):
                ids.append(c)
                break
        else:
            reps.append(graph)
            ids.append(len(reps) - 1)
    return ids


def test_iso_classes_helper_is_an_equivalence():
    # Guard the oracle itself: the representative scan agrees with full pairwise isomorphism.
    graphs = [BinaryGenome((4,), (b,)).stage_graph(0) for b in all_stage_bits(4)]
    ids = iso_classes(graphs)
    for i, j in itertools.combinations(range(len(graphs)), 2):
        assert (ids[i] == ids[j]) == same_network(graphs[i], graphs[j])


def test_key_matches_isomorphism_exhaustively_for_stages_3_4():
    singles = [BinaryGenome((3,), (b,)) for b in all_stage_bits(3)]
    singles += [BinaryGenome((4,), (b,)) for b in all_stage_bits(4)]
    graphs = [g.stage_graph(0) for g in singles]
    classes = iso_classes(graphs)   # shared across K=3 and K=4
    keys = [g.key() for g in singles]
    # Per stage (and across K=3 / K=4): single-stage keys equal iff the graphs are isomorphic.
    for i, j in itertools.product(range(len(singles)), repeat=2):
        assert (keys[i] == keys[j]) == (classes[i] == classes[j]), (singles[i], singles[j])
    # Sanity of the oracle: chain K=3 is isomorphic to the K=4 chain with an isolated node.
    assert BinaryGenome.from_string("1-01").key() == BinaryGenome.from_string("1-01-000").key()
    assert len(set(classes)) < len(singles)

    class_of = {(g.stages[0], g.bits[0]): c for g, c in zip(singles, classes)}
    genomes = [BinaryGenome((3, 4), (b3, b4))
               for b3, b4 in itertools.product(all_stage_bits(3), all_stage_bits(4))]
    assert len(genomes) == 512
    genome_keys = [g.key() for g in genomes]
    genome_classes = [(class_of[(3, g.bits[0])], class_of[(4, g.bits[1])]) for g in genomes]
    for ka, ca in zip(genome_keys, genome_classes):
        for kb, cb in zip(genome_keys, genome_classes):
            if (ka == kb) != (ca == cb):
                pytest.fail(f"key {ka!r} vs {kb!r} disagrees with isomorphism {ca} vs {cb}")

    for genome, key in zip(genomes, genome_keys):
        assert key == "_".join(BinaryGenome((k,), (b,)).key()
                               for k, b in zip(genome.stages, genome.bits))
        canon = BinaryGenome.from_string(key)          # the key is a valid genome string
        assert canon.to_string() == key
        assert genome.canonical() == canon
        assert canon.key() == key                      # idempotent
        assert len(canon.stages) == len(genome.stages)
        for s in range(len(genome.stages)):
            assert same_network(canon.stage_graph(s), genome.stage_graph(s)), (genome, key)


def test_key_literal_examples():
    assert BinaryGenome.from_string("0-00-000").key() == "0"
    assert BinaryGenome.from_string("1-00-000").key() == "1"
    assert BinaryGenome.from_string("0-00-001").key() == "1"
    assert BinaryGenome.from_string("1-01-001_0-00").key() == "1-01-001_0"
    # a ResNet-like stage is not a chain, and not a DenseNet-like stage
    keys = {BinaryGenome.from_string(c).key() for c in ("1-01-001", "1-01-101", "1-11-111")}
    assert len(keys) == 3
    # the canonical code of a chain of 4 is itself
    assert BinaryGenome.from_string("1-01-001").key() == "1-01-001"


def renumber(genome: BinaryGenome, rng: random.Random) -> BinaryGenome:
    """The same networks, each stage's nodes renumbered by a random topological order."""
    new_bits = []
    for k, bits in zip(genome.stages, genome.bits):
        stage_edges = [(i, j) for j in range(2, k + 1) for i in range(1, j)
                       if bits[bit_index(i, j)]]
        preds = {v: {u for u, w in stage_edges if w == v} for v in range(1, k + 1)}
        order: list[int] = []
        while len(order) < k:
            ready = [v for v in range(1, k + 1) if v not in order and preds[v] <= set(order)]
            order.append(rng.choice(ready))
        position = {v: p + 1 for p, v in enumerate(order)}
        out = [0] * bits_per_stage(k)
        for u, w in stage_edges:
            assert position[u] < position[w]
            out[bit_index(position[u], position[w])] = 1
        new_bits.append(tuple(out))
    return BinaryGenome(genome.stages, tuple(new_bits))


def test_key_is_invariant_under_random_topological_renumbering():
    rng = random.Random(1234)
    changed = 0
    for _ in range(300):
        genome = BinaryGenome.random((5, 6), rng)
        other = renumber(genome, rng)
        changed += other != genome
        assert other.key() == genome.key(), (genome, other)
        for s in range(2):
            assert same_network(other.stage_graph(s), genome.stage_graph(s))
        canon = genome.canonical()
        assert canon.key() == genome.key()
        for s in range(2):
            assert same_network(canon.stage_graph(s), genome.stage_graph(s))
    assert changed > 200     # the renumbering really produced different encodings


@pytest.mark.parametrize("k, density", [(5, 0.5), (5, 0.2), (6, 0.5), (6, 0.15)])
def test_key_matches_isomorphism_on_random_pairs(k, density):
    rng = random.Random(k * 100 + int(density * 100))

    def sparse() -> BinaryGenome:
        return BinaryGenome((k,), (tuple(int(rng.random() < density)
                                         for _ in range(bits_per_stage(k))),))

    outcomes = Counter()
    for _ in range(300):
        a, b = sparse(), sparse()
        iso = same_network(a.stage_graph(0), b.stage_graph(0))
        assert (a.key() == b.key()) == iso, (a, b)
        outcomes[iso] += 1
    assert outcomes[False] > 0
    if density < 0.3:
        assert outcomes[True] > 0


# --------------------------------------------------------------------------- roulette selection
def test_roulette_rejects_empty_population():
    for k in (0, 1, 5):
        with pytest.raises(ValueError, match="non-empty"):
            roulette([], k, random.Random(0))


def test_roulette_equal_fitness_is_uniform():
    draws = roulette([0.7] * 4, 40_000, random.Random(3))
    assert len(draws) == 40_000
    counts = Counter(draws)
    assert set(counts) == {0, 1, 2, 3}
    for i in range(4):
        assert 0.23 <= counts[i] / 40_000 <= 0.27


def test_roulette_weights_are_fitness_minus_min():
    draws = roulette([1.0, 2.0, 3.0], 30_000, random.Random(5))
    counts = Counter(draws)
    assert counts[0] == 0
    assert set(counts) == {1, 2}
    assert 1.9 <= counts[2] / counts[1] <= 2.1
    # shifting all fitnesses changes nothing
    assert roulette([101.0, 102.0, 103.0], 500, random.Random(5)) == roulette(
        [1.0, 2.0, 3.0], 500, random.Random(5))


def test_roulette_never_picks_failed_when_others_differ():
    draws = roulette([-INF, 0.2, 0.5, -INF, 0.9], 10_000, random.Random(7))
    assert set(draws) <= {1, 2, 4}
    assert {2, 4} <= set(draws)


@pytest.mark.parametrize("fitnesses", [
    [-INF, 0.5, 0.5],        # finite ones all equal: every weight is zero
    [-INF, 1.0],             # a single finite individual
    [-INF, -INF, 0.3, -INF],
])
def test_roulette_never_picks_failed_when_some_are_finite(fitnesses):
    """A failed evaluation (-inf) is the worst; it must not be picked while a finite one exists,
    also when all finite fitnesses are equal (the uniform fallback)."""
    draws = roulette(fitnesses, 2_000, random.Random(11))
    finite = {i for i, f in enumerate(fitnesses) if math.isfinite(f)}
    assert set(draws) <= finite


def test_roulette_all_failed_is_uniform():
    draws = roulette([-INF] * 4, 40_000, random.Random(13))
    counts = Counter(draws)
    for i in range(4):
        assert 0.23 <= counts[i] / 40_000 <= 0.27


def test_roulette_is_deterministic_for_a_seed():
    fit = [0.1, 0.4, -INF, 0.35, 0.9]
    assert roulette(fit, 100, random.Random(42)) == roulette(fit, 100, random.Random(42))
    assert roulette(fit, 100, random.Random(42)) != roulette(fit, 100, random.Random(43))
    assert roulette(fit, 0, random.Random(42)) == []


# --------------------------------------------------------------------------- crossover
def test_crossover_swaps_only_whole_stages():
    rng = random.Random(21)
    swapped_any = 0
    for _ in range(500):
        a = BinaryGenome.random((3, 4, 5), rng)
        b = BinaryGenome.random((3, 4, 5), rng)
        c1, c2 = crossover(a, b, rng, p_c=1.0, q_c=0.5)
        assert c1.stages == c2.stages == a.stages
        for s in range(3):
            assert c1.bits[s] in (a.bits[s], b.bits[s])
            assert sorted([c1.bits[s], c2.bits[s]]) == sorted([a.bits[s], b.bits[s]])
        swapped_any += (c1, c2) != (a, b)
    assert swapped_any > 300


def test_crossover_probability_zero_returns_parents():
    rng = random.Random(22)
    for _ in range(100):
        a, b = BinaryGenome.random((3, 4), rng), BinaryGenome.random((3, 4), rng)
        assert crossover(a, b, rng, p_c=0.0, q_c=1.0) == (a, b)


def test_crossover_all_stages_swapped():
    a = BinaryGenome.from_string("1-01_1-01-001_0-00-000")
    b = BinaryGenome.from_string("0-10_1-11-111_1-00-100")
    c1, c2 = crossover(a, b, random.Random(0), p_c=1.0, q_c=1.0)
    assert (c1, c2) == (b, a)


def test_crossover_leaves_arguments_unchanged():
    a = BinaryGenome.from_string("1-01_1-01-001")
    b = BinaryGenome.from_string("0-10_1-11-111")
    a_text, b_text = a.to_string(), b.to_string()
    rng = random.Random(23)
    for _ in range(50):
        crossover(a, b, rng, p_c=1.0, q_c=0.5)
    assert (a.to_string(), b.to_string()) == (a_text, b_text)
    assert a == BinaryGenome.from_string(a_text) and b == BinaryGenome.from_string(b_text)


@pytest.mark.parametrize("sa, sb", [((3, 4), (4, 3)), ((3,), (3, 3)), ((4,), (5,))])
def test_crossover_rejects_different_layouts(sa, sb):
    rng = random.Random(0)
    with pytest.raises(GenomeError, match="different stages"):
        crossover(BinaryGenome.random(sa, rng), BinaryGenome.random(sb, rng), rng,
                  p_c=1.0, q_c=0.5)


def test_crossover_stage_swap_frequency():
    a = BinaryGenome((3, 4, 5), tuple((0,) * bits_per_stage(k) for k in (3, 4, 5)))
    b = BinaryGenome((3, 4, 5), tuple((1,) * bits_per_stage(k) for k in (3, 4, 5)))
    rng = random.Random(24)
    trials, swaps = 5_000, Counter()
    for _ in range(trials):
        c1, c2 = crossover(a, b, rng, p_c=1.0, q_c=0.3)
        for s in range(3):
            swaps[s] += c1.bits[s] == b.bits[s]
            assert (c2.bits[s] == a.bits[s]) == (c1.bits[s] == b.bits[s])
    for s in range(3):
        assert abs(swaps[s] / trials - 0.3) < 0.03
    assert abs(sum(swaps.values()) / (3 * trials) - 0.3) < 0.02


def test_crossover_pair_probability():
    a = BinaryGenome.from_string("0-00")
    b = BinaryGenome.from_string("1-11")
    rng = random.Random(25)
    crossed = sum(crossover(a, b, rng, p_c=0.4, q_c=1.0) != (a, b) for _ in range(10_000))
    assert abs(crossed / 10_000 - 0.4) < 0.03


# --------------------------------------------------------------------------- mutation
def test_mutation_probability_zero_returns_genome_unchanged():
    rng = random.Random(31)
    for _ in range(100):
        genome = BinaryGenome.random((3, 4, 5), rng)
        assert mutate(genome, rng, p_m=0.0, q_m=1.0) == genome


@pytest.mark.parametrize("q_m", [0.05, 0.3])
def test_mutation_bit_flip_frequency(q_m):
    rng = random.Random(int(q_m * 1000))
    stages = (4, 5, 6)
    genome = BinaryGenome.random(stages, rng)
    flat = [b for stage in genome.bits for b in stage]
    trials = 4_000
    per_bit = [0] * len(flat)
    for _ in range(trials):
        child = mutate(genome, rng, p_m=1.0, q_m=q_m)
        assert isinstance(child, BinaryGenome) and child.stages == stages
        for n, (x, y) in enumerate(zip(flat, (b for stage in child.bits for b in stage))):
            per_bit[n] += x != y
    total = sum(per_bit) / (trials * len(flat))
    assert abs(total - q_m) < 0.006
    for count in per_bit:
        assert abs(count / trials - q_m) < 0.045


def test_mutation_individual_probability():
    genome = BinaryGenome.from_string("1-01_1-01-001")
    rng = random.Random(32)
    changed = sum(mutate(genome, rng, p_m=0.5, q_m=1.0) != genome for _ in range(10_000))
    assert abs(changed / 10_000 - 0.5) < 0.03


def test_mutation_leaves_argument_unchanged_and_is_valid():
    genome = BinaryGenome.from_string("1-01_1-01-001_1-11-111-1111")
    text = genome.to_string()
    rng = random.Random(33)
    for _ in range(300):
        child = mutate(genome, rng, p_m=0.9, q_m=0.3)
        assert BinaryGenome.from_string(child.to_string()) == child
        assert child.stages == genome.stages
    assert genome.to_string() == text
    # q_m = 1 flips every bit
    assert mutate(genome, rng, p_m=1.0, q_m=1.0) == BinaryGenome(
        genome.stages, tuple(tuple(1 - b for b in stage) for stage in genome.bits))


@settings(max_examples=150, deadline=None)
@given(stages=st.lists(st.integers(2, 5), min_size=1, max_size=4).map(tuple),
       seed=st.integers(0, 2**32 - 1),
       p=st.floats(0.0, 1.0), q=st.floats(0.0, 1.0))
def test_operators_always_return_valid_genomes(stages, seed, p, q):
    rng = random.Random(seed)
    a = BinaryGenome.random(stages, rng)
    b = BinaryGenome.random(stages, rng)
    a_text, b_text = a.to_string(), b.to_string()
    children = [mutate(a, rng, p_m=p, q_m=q), *crossover(a, b, rng, p_c=p, q_c=q)]
    for child in children + [a, b]:
        assert isinstance(child, BinaryGenome)
        assert child.stages == stages
        assert all(len(bits) == bits_per_stage(k) and set(bits) <= {0, 1}
                   for k, bits in zip(child.stages, child.bits))
        assert BinaryGenome.from_string(child.to_string()) == child
        assert genome_from_dict(child.to_dict()) == child
        canon = child.canonical()
        assert canon.key() == child.key()
        assert len(canon.stages) == len(stages)
    assert (a.to_string(), b.to_string()) == (a_text, b_text)


# --------------------------------------------------------------------------- random genomes
def test_random_genome_is_deterministic_and_sized():
    stages = (3, 4, 5, 2)
    g1 = BinaryGenome.random(stages, random.Random(99))
    g2 = BinaryGenome.random(iter(stages), random.Random(99))
    assert g1 == g2
    assert g1.stages == stages
    assert [len(b) for b in g1.bits] == [3, 6, 10, 1]
    many = {BinaryGenome.random(stages, random.Random(seed)) for seed in range(20)}
    assert len(many) > 15
    rng = random.Random(100)
    ones = sum(sum(map(sum, BinaryGenome.random((6,), rng).bits)) for _ in range(1_000))
    assert abs(ones / (1_000 * 15) - 0.5) < 0.02
