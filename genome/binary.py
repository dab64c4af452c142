"""Genetic-CNN binary genomes (Xie & Yuille, "Genetic CNN", ICCV 2017).

A network has S stages; stage s has K_s ordered nodes v_1..v_K. One bit per node pair (i < j)
says whether v_i feeds v_j, in the paper's order (v1,v2), (v1,v3), (v2,v3), (v1,v4), ... The
text form groups a stage's bits by target node with ``-`` and joins stages with ``_``::

    1-01_1-01-001        # stages (3, 4): v1->v2, v2->v3 | v1->v2, v2->v3, v3->v4

Decoding rules of the paper (:meth:`BinaryGenome.stage_graph`): isolated nodes are dropped, a
default input node feeds every kept node without predecessors, a default output node sums every
kept node without successors, and a stage with no edges is the input node feeding the output node.

Variation operators are pure functions of an explicit :class:`random.Random`; they never change
their arguments (genomes are frozen) and return new genomes.
"""
from __future__ import annotations

import numbers
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence

import networkx as nx
from deap import tools
from pydantic import Field, model_validator

from genome.canonical import once
from genome.errors import GenomeError
from genome.registry import Encoding, Graph, register
from genome.rng import lend
from genome.section import Section

INPUT = "input"
OUTPUT = "output"
NODE = "node"
MAX_NODES = 64      # nodes per stage: 2,016 bits, a network far beyond any search
MAX_WIDTH = 4096    # channels of a stage


def bits_per_stage(k: int) -> int:
    """Number of bits of a stage with ``k`` nodes: k(k-1)/2."""
    return k * (k - 1) // 2


def bit_index(i: int, j: int) -> int:
    """Position of the bit for edge v_i -> v_j (1 <= i < j) inside its stage's bits."""
    return (j - 1) * (j - 2) // 2 + (i - 1)


def _stage_edges(k: int, bits: Sequence[int]) -> list[tuple[int, int]]:
    return [(i, j) for j in range(2, k + 1) for i in range(1, j) if bits[bit_index(i, j)]]


def _stage_text(k: int, bits: Sequence[int]) -> str:
    groups = []
    for j in range(2, k + 1):
        start = bit_index(1, j)
        groups.append("".join(str(b) for b in bits[start:start + j - 1]))
    return "-".join(groups)


@dataclass(frozen=True)
class BinaryGenome:
    """A Genetic-CNN genome: ``stages`` = (K_1..K_S), ``bits`` = one tuple of 0/1 per stage.

    Frozen and hashable; validated on creation (every K_s >= 2, K(K-1)/2 bits of 0 or 1 each).
    Two genomes compare equal when their encodings are equal; use :meth:`key` to compare the
    networks they decode to.
    """

    stages: tuple[int, ...]
    bits: tuple[tuple[int, ...], ...]

    encoding: ClassVar[str] = "binary"

    def __post_init__(self) -> None:
        try:
            stages = tuple(self.stages)
            bits = tuple(tuple(stage) for stage in self.bits)
            integral = all(isinstance(v, numbers.Integral)
                           for v in (*stages, *(b for stage in bits for b in stage)))
        except TypeError:
            integral = False
        if not integral:
            raise GenomeError(
                f"binary genome needs integer stage sizes and 0/1 bits, got stages={self.stages!r}"
                f" bits={self.bits!r}")
        stages = tuple(int(k) for k in stages)
        bits = tuple(tuple(int(b) for b in stage) for stage in bits)
        if not stages:
            raise GenomeError("binary genome needs at least one stage, got stages=()")
        if any(k < 2 for k in stages):
            raise GenomeError(f"every stage needs at least 2 nodes, got stages={stages}")
        if any(k > MAX_NODES for k in stages):
            raise GenomeError(f"a stage has at most {MAX_NODES} nodes, got stages={stages}")
        if len(bits) != len(stages):
            raise GenomeError(
                f"binary genome has {len(stages)} stages {stages} but {len(bits)} bit groups")
        for s, (k, stage_bits) in enumerate(zip(stages, bits)):
            if len(stage_bits) != bits_per_stage(k):
                raise GenomeError(
                    f"stage {s + 1} has K={k} nodes and needs {bits_per_stage(k)} bits, "
                    f"got {len(stage_bits)}")
            if any(b not in (0, 1) for b in stage_bits):
                raise GenomeError(f"stage {s + 1} bits must be 0 or 1, got {stage_bits}")
        object.__setattr__(self, "stages", stages)
        object.__setattr__(self, "bits", bits)

    # ----------------------------------------------------------------------------- text / dict
    @classmethod
    def from_string(cls, text: str) -> "BinaryGenome":
        """Parse the text form (``1-01_1-01-001``); stage sizes follow from the groups."""
        if not isinstance(text, str) or not text.strip():
            raise GenomeError(f"expected a genome string like '1-01_1-01-001', got {text!r}")
        stages, bits = [], []
        for s, stage_text in enumerate(text.strip().split("_")):
            groups = stage_text.split("-")
            for g, group in enumerate(groups):
                if len(group) != g + 1 or set(group) - {"0", "1"}:
                    raise GenomeError(
                        f"malformed genome string {text!r}: in stage {s + 1}, group {g + 1} "
                        f"(inputs of node {g + 2}) must be {g + 1} characters of 0/1, "
                        f"got {group!r}")
            stages.append(len(groups) + 1)
            bits.append(tuple(int(c) for group in groups for c in group))
        return cls(tuple(stages), tuple(bits))

    def to_string(self) -> str:
        """The text form, e.g. ``1-01_1-01-001``."""
        return "_".join(_stage_text(k, b) for k, b in zip(self.stages, self.bits))

    def __str__(self) -> str:
        return self.to_string()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"encoding": "binary", "stages": [...], "code": "1-01_..."}``."""
        return {"encoding": self.encoding, "stages": list(self.stages), "code": self.to_string()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BinaryGenome":
        """Inverse of :meth:`to_dict`; ``stages`` is optional and checked against the code."""
        if not isinstance(data, Mapping) or "code" not in data:
            raise GenomeError(f"a binary genome dict needs a 'code' entry, got {data!r}")
        if data.get("encoding", cls.encoding) != cls.encoding:
            raise GenomeError(f"expected encoding 'binary', got {data.get('encoding')!r}")
        genome = cls.from_string(data["code"])
        stages = data.get("stages", genome.stages)
        if not isinstance(stages, (list, tuple)) or tuple(stages) != genome.stages:
            raise GenomeError(
                f"genome code {data['code']!r} has stages {genome.stages}, "
                f"but the dict says {tuple(stages) if isinstance(stages, list) else stages!r}")
        return genome

    # ----------------------------------------------------------------------------- structure
    def stage_graph(self, s: int) -> nx.DiGraph:
        """The decoded DAG of stage ``s`` (0-based) under the paper's rules.

        Nodes are ints: 0 is the default input node, K+1 the default output node, 1..K the kept
        nodes; each has a ``role`` attribute (``input``, ``node``, ``output``). Isolated nodes
        are absent.
        """
        k = self.stages[s]
        edges = _stage_edges(k, self.bits[s])
        graph = nx.DiGraph()
        graph.add_node(0, role=INPUT)
        kept = sorted({v for edge in edges for v in edge})
        graph.add_nodes_from(kept, role=NODE)
        graph.add_node(k + 1, role=OUTPUT)
        graph.add_edges_from(edges)
        if not kept:
            graph.add_edge(0, k + 1)
        for v in kept:
            if graph.in_degree(v) == 0:
                graph.add_edge(0, v)
        for v in kept:
            if graph.out_degree(v) == 0:
                graph.add_edge(v, k + 1)
        return graph

    @once
    def key(self) -> str:
        """Canonical key: equal for genomes that decode to the same network.

        The key is itself a genome string, the canonical representative: per stage, the
        lexicographically smallest code over all numberings of the kept nodes in a topological
        order. Isomorphic pruned stage graphs give the same code, others give different codes.
        """
        return "_".join(_canonical_stage(self.stages[s], self.bits[s])
                        for s in range(len(self.stages)))

    def canonical(self) -> "BinaryGenome":
        """The genome whose string is :meth:`key` (isolated nodes removed, nodes renumbered)."""
        return BinaryGenome.from_string(self.key())

    @classmethod
    def random(cls, stages: Iterable[int], rng: random.Random) -> "BinaryGenome":
        """A genome with every bit drawn from Bernoulli(0.5) by ``rng``."""
        stages = tuple(stages)
        return cls(stages, tuple(tuple(rng.randint(0, 1) for _ in range(bits_per_stage(k)))
                                 for k in stages))


def _canonical_stage(k: int, bits: Sequence[int]) -> str:
    """Smallest code over topological numberings of the stage's kept nodes.

    Builds the numbering one position at a time; at position p the bits for the node placed
    there are its edges from positions 0..p-1, a group of fixed length, so the smallest code is
    found by keeping only the prefixes whose groups so far are smallest. Prefixes that leave the
    same future (same placed nodes, same pred positions of every unplaced node) are merged, and
    of two interchangeable candidates (same predecessors and successors) only one is tried.
    """
    edges = _stage_edges(k, bits)
    nodes = sorted({v for edge in edges for v in edge})
    if not nodes:
        return "0"
    preds = {v: frozenset(u for u, w in edges if w == v) for v in nodes}
    succs = {v: frozenset(w for u, w in edges if u == v) for v in nodes}
    frontier: list[tuple[int, ...]] = [()]
    groups: list[str] = []
    for p in range(len(nodes)):
        best: str | None = None
        chosen: dict[tuple, tuple[int, ...]] = {}
        for prefix in frontier:
            placed = set(prefix)
            seen_twins = set()
            for v in nodes:
                if v in placed or not preds[v] <= placed:
                    continue
                twin = (preds[v], succs[v])
                if twin in seen_twins:
                    continue
                seen_twins.add(twin)
                group = "".join("1" if u in preds[v] else "0" for u in prefix)
                if best is not None and group > best:
                    continue
                if best is None or group < best:
                    best, chosen = group, {}
                new = prefix + (v,)
                position = {u: i for i, u in enumerate(new)}
                signature = (frozenset(new), tuple(
                    frozenset(position[u] for u in preds[w] if u in position)
                    for w in nodes if w not in position))
                chosen.setdefault(signature, new)
        frontier = list(chosen.values())
        groups.append(best or "")
    return "-".join(groups[1:])


# --------------------------------------------------------------------------- variation operators
def mutate(genome: BinaryGenome, rng: random.Random, *, p_m: float, q_m: float) -> BinaryGenome:
    """Bit-flip mutation of the paper: with probability ``p_m`` the individual mutates, and then
    each bit flips independently with probability ``q_m`` (DEAP's ``tools.mutFlipBit`` on a
    copy of the bits, drawing from ``rng``). Returns a new genome (or ``genome`` itself when
    nothing changed); the argument is never modified."""
    if rng.random() >= p_m:
        return genome
    flat = [b for stage in genome.bits for b in stage]
    with lend(rng):
        tools.mutFlipBit(flat, indpb=q_m)
    bits, start = [], 0
    for stage in genome.bits:
        bits.append(tuple(flat[start:start + len(stage)]))
        start += len(stage)
    bits = tuple(bits)
    return genome if bits == genome.bits else BinaryGenome(genome.stages, bits)


def mutate_one(genome: BinaryGenome, rng: random.Random) -> BinaryGenome:
    """Flip exactly one bit, drawn uniformly: the single mutation of aging evolution."""
    flat = [(s, i) for s, stage in enumerate(genome.bits) for i in range(len(stage))]
    s, i = rng.choice(flat)
    bits = [list(stage) for stage in genome.bits]
    bits[s][i] ^= 1
    return BinaryGenome(genome.stages, tuple(map(tuple, bits)))


def crossover(a: BinaryGenome, b: BinaryGenome, rng: random.Random, *,
              p_c: float, q_c: float) -> tuple[BinaryGenome, BinaryGenome]:
    """Stage-wise crossover of the paper: with probability ``p_c`` the pair crosses, and then
    each stage is swapped between the two with probability ``q_c``. Only whole stages move.
    Returns two new genomes (or the arguments themselves when nothing was swapped)."""
    if a.stages != b.stages:
        raise GenomeError(f"cannot cross genomes of different stages {a.stages} and {b.stages}")
    if rng.random() >= p_c:
        return a, b
    swap = [rng.random() < q_c for _ in a.stages]
    if not any(swap):
        return a, b
    bits_a = tuple(y if s else x for x, y, s in zip(a.bits, b.bits, swap))
    bits_b = tuple(x if s else y for x, y, s in zip(a.bits, b.bits, swap))
    return BinaryGenome(a.stages, bits_a), BinaryGenome(b.stages, bits_b)


# --------------------------------------------------------------------------- the encoding
class BinarySearch(Section):
    """Genetic-CNN binary strings (Xie & Yuille 2017): the ``search:`` section."""

    encoding: Literal["binary"] = "binary"
    stages: list[int] = Field([3, 4], min_length=1, max_length=16,
                              description="Genetic-CNN nodes per stage K_1..K_S (each >= 2)")
    channels: list[int] = Field([16, 32], min_length=1, max_length=16,
                                description="convolution width of each stage")

    @model_validator(mode="after")
    def _check(self) -> "BinarySearch":
        if any(k < 2 for k in self.stages):
            raise ValueError(f"search.stages: every stage needs at least 2 nodes, got "
                             f"{self.stages}")
        if any(k > MAX_NODES for k in self.stages):
            raise ValueError(f"search.stages: a stage has at most {MAX_NODES} nodes, got "
                             f"{self.stages}")
        if any(c < 1 for c in self.channels):
            raise ValueError(f"search.channels: widths must be positive, got {self.channels}")
        if any(c > MAX_WIDTH for c in self.channels):
            raise ValueError(f"search.channels: a width is at most {MAX_WIDTH}, got "
                             f"{self.channels}")
        if len(self.channels) != len(self.stages):
            raise ValueError(f"search.channels has {len(self.channels)} entries {self.channels} but "
                             f"search.stages has {len(self.stages)} {self.stages}: give one width "
                             f"per stage")
        return self

    def decoder_space(self) -> dict[str, Any]:
        """The decoder's settings (without the data set's in_channels / num_classes)."""
        return {"channels": list(self.channels)}


def graph(genome: BinaryGenome) -> Graph:
    """Each stage a cluster: its default input, kept nodes and default output; stages joined by
    their 2x2 max pooling (dashed)."""
    out = Graph(f"Genetic-CNN genome {genome.to_string()}")
    for s, k in enumerate(genome.stages):
        stage = genome.stage_graph(s)
        cluster = f"stage{s + 1}"
        kept = [v for v in stage if stage.nodes[v]["role"] == NODE]
        pruned = [f"v{v}" for v in range(1, k + 1) if v not in stage]
        out.clusters[cluster] = (f"stage {s + 1}: K={k}"
                                 + (f", pruned {', '.join(pruned)}" if pruned else ""))

        def name(v: int, s: int = s, k: int = k) -> str:
            return f"s{s + 1}_" + ("input" if v == 0 else "output" if v == k + 1 else f"v{v}")

        out.nodes[name(0)] = ("input", INPUT, cluster)
        for v in kept:
            out.nodes[name(v)] = (f"v{v}", NODE, cluster)
        out.nodes[name(k + 1)] = ("output", OUTPUT, cluster)
        for u, v in sorted(stage.edges):
            out.edges.append((name(u), name(v), None, "solid"))
        if s + 1 < len(genome.stages):
            out.edges.append((name(k + 1), f"s{s + 2}_input", "max pool 2x2", "dashed"))
    return out


class Binary(Encoding):
    name = "binary"
    title = "Genetic-CNN"
    genome = BinaryGenome
    search = BinarySearch
    example = "1-01_1-01-001"
    decoder = "training.decode:genetic_net"

    def random(self, space: BinarySearch, rng: random.Random) -> BinaryGenome:
        return BinaryGenome.random(space.stages, rng)

    def mutate(self, genome: BinaryGenome, space: Any, rng: random.Random, *, p_m: float,
               q_m: float) -> BinaryGenome:
        return mutate(genome, rng, p_m=p_m, q_m=q_m)

    def mutate_one(self, genome: BinaryGenome, space: Any, rng: random.Random) -> BinaryGenome:
        return mutate_one(genome, rng)

    def crossover(self, a: BinaryGenome, b: BinaryGenome, space: Any, rng: random.Random, *,
                  p_c: float, q_c: float) -> tuple[BinaryGenome, BinaryGenome]:
        return crossover(a, b, rng, p_c=p_c, q_c=q_c)

    def claims(self, text: str) -> bool:
        return bool(text) and set(text) <= set("01-_")

    def graph(self, genome: BinaryGenome) -> Graph:
        return graph(genome)


register(Binary())
