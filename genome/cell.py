"""AmoebaNet / NASNet cell genomes (Zoph et al. 2018; Real et al. 2019).

A genome is a normal cell and a reduction cell of B blocks each. A block is
``(input_a, op_a, input_b, op_b)``: it applies ``op_a`` to hidden state ``input_a`` and ``op_b``
to ``input_b`` and adds the two. State 0 is the output of the cell before last, state 1 the
output of the last cell, state ``2 + i`` the output of block ``i``; a block reads only earlier
states. The cell's output concatenates every block state that no block reads.

Text form: blocks as ``op_a@input_a+op_b@input_b`` joined by ``,``; the normal cell, ``/``, the
reduction cell. No spaces, so it passes through a shell unquoted::

    avg_pool_3x3@0+max_pool_3x3@1,sep_conv_3x3@0+sep_conv_5x5@2,.../avg_pool_3x3@0+...

Two genomes decode to the same network when they differ only by the order of a block's two
halves and by a renumbering of the blocks in another dependency order (:meth:`CellGenome.key`).
Variation operators (Real et al. 2019: hidden-state, op and identity mutation; cell-wise
crossover) are pure functions of an explicit :class:`random.Random`; they never change their
arguments (genomes are frozen) and return new genomes.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Literal, Mapping, Sequence

from pydantic import Field, model_validator

from genome.canonical import once
from genome.errors import GenomeError
from genome.registry import Encoding, Graph, register
from genome.section import Section

NASNET_OPS: tuple[str, ...] = (
    "identity",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dil_sep_conv_3x3",
    "conv_1x7_7x1",
)
"""The op set of the AmoebaNet paper, and the default of a cell search space."""

KNOWN_OPS: frozenset[str] = frozenset(NASNET_OPS) | {"conv_1x1", "conv_3x3", "dil_sep_conv_5x5"}
"""Every op name the decoder can build; a search space may use any subset."""

CELLS = ("normal", "reduction")
MAX_BLOCKS = 64  # blocks per cell

Block = tuple[int, str, int, str]


def _check_cell(name: str, blocks: Any) -> tuple[Block, ...]:
    try:
        blocks = tuple(tuple(block) for block in blocks)
    except TypeError:
        raise GenomeError(f"{name} cell must be a sequence of blocks "
                          f"(input_a, op_a, input_b, op_b), got {blocks!r}") from None
    if not blocks:
        raise GenomeError(f"{name} cell needs at least one block")
    if len(blocks) > MAX_BLOCKS:
        raise GenomeError(f"{name} cell has {len(blocks)} blocks; at most {MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        if len(block) != 4:
            raise GenomeError(f"{name} cell block {i} must be (input_a, op_a, input_b, op_b), "
                              f"got {block!r}")
        for inp, op in (block[0:2], block[2:4]):
            if isinstance(inp, bool) or not isinstance(inp, numbers.Integral):
                raise GenomeError(f"{name} cell block {i}: inputs must be integers, got {inp!r}")
            if not 0 <= inp < 2 + i:
                raise GenomeError(f"{name} cell block {i} reads state {inp!r}; block {i} may "
                                  f"read states 0..{1 + i} (0, 1: cell inputs; 2..: earlier "
                                  f"blocks)")
            if not isinstance(op, str) or op not in KNOWN_OPS:
                raise GenomeError(f"{name} cell block {i} uses unknown op {op!r}; known ops: "
                                  f"{', '.join(sorted(KNOWN_OPS))}")
    return tuple((int(a), op_a, int(b), op_b) for a, op_a, b, op_b in blocks)


@dataclass(frozen=True)
class CellGenome:
    """A normal and a reduction cell, each a tuple of blocks ``(input_a, op_a, input_b, op_b)``.

    Frozen and hashable; validated on creation (inputs refer to earlier states, ops are known).
    The two cells may have different numbers of blocks. Two genomes compare equal when their
    encodings are equal; use :meth:`key` to compare the networks they decode to.
    """

    normal: tuple[Block, ...]
    reduction: tuple[Block, ...]

    encoding: ClassVar[str] = "cell"

    def __post_init__(self) -> None:
        object.__setattr__(self, "normal", _check_cell("normal", self.normal))
        object.__setattr__(self, "reduction", _check_cell("reduction", self.reduction))

    def cell(self, name: str) -> tuple[Block, ...]:
        """The blocks of the ``normal`` or ``reduction`` cell."""
        if name not in CELLS:
            raise GenomeError(f"a cell is 'normal' or 'reduction', got {name!r}")
        return getattr(self, name)

    def outputs(self, name: str) -> tuple[int, ...]:
        """States the cell concatenates into its output: block states no block reads."""
        blocks = self.cell(name)
        read = {b[0] for b in blocks} | {b[2] for b in blocks}
        return tuple(s for s in range(2, 2 + len(blocks)) if s not in read)

    @property
    def ops(self) -> frozenset[str]:
        """Every op name the genome uses."""
        return frozenset(b[k] for name in CELLS for b in self.cell(name) for k in (1, 3))

    # ----------------------------------------------------------------------------- structure
    @once
    def key(self) -> str:
        """Canonical key: equal for genomes that decode to the same network, different otherwise.

        Per cell, a block is an unordered pair of halves ``(input, op)`` and the blocks may be
        numbered in any order that respects their dependencies; the output concatenation is
        treated as unordered. The key is itself a genome string, the canonical representative:
        per cell, the blocks (halves sorted) in the dependency-respecting numbering whose block
        sequence is smallest, blocks with equal halves ordered by a renumbering-invariant colour
        (see ``_canonical_cell``). Normal and reduction cells are keyed separately.
        """
        return self.canonical().to_string()

    def canonical(self) -> "CellGenome":
        """The genome whose string is :meth:`key`: blocks renumbered, halves sorted."""
        return CellGenome(_canonical_cell(self.normal), _canonical_cell(self.reduction))

    @classmethod
    def random(cls, rng: random.Random, blocks: int = 5, ops: Sequence[str] = NASNET_OPS,
               reduction_blocks: int | None = None) -> "CellGenome":
        """A genome whose every input is uniform over the states the block may read and every op
        uniform over ``ops``, all drawn from ``rng``. Both cells have ``blocks`` blocks unless
        ``reduction_blocks`` is given."""
        ops = _check_ops(ops, minimum=1)
        sizes = (blocks, blocks if reduction_blocks is None else reduction_blocks)
        for name, size in zip(CELLS, sizes):
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise GenomeError(f"the {name} cell needs an integer number of blocks >= 1, "
                                  f"got {size!r}")
        return cls(*(tuple((rng.randrange(2 + i), rng.choice(ops),
                            rng.randrange(2 + i), rng.choice(ops)) for i in range(size))
                     for size in sizes))

    # ----------------------------------------------------------------------------- text / dict
    def to_string(self) -> str:
        return "/".join(",".join(f"{b[1]}@{b[0]}+{b[3]}@{b[2]}" for b in self.cell(name))
                        for name in CELLS)

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def from_string(cls, text: str) -> "CellGenome":
        """Parse the text form (see the module docstring)."""
        if not isinstance(text, str) or text.count("/") != 1:
            raise GenomeError(f"expected a cell genome string 'NORMAL/REDUCTION' with blocks "
                              f"like 'sep_conv_3x3@0+identity@1', got {text!r}")
        cells = []
        for name, part in zip(CELLS, text.strip().split("/")):
            blocks = []
            for i, block in enumerate(part.split(",")):
                halves = block.split("+")
                try:
                    (op_a, inp_a), (op_b, inp_b) = (h.rsplit("@", 1) for h in halves)
                    blocks.append((int(inp_a), op_a, int(inp_b), op_b))
                except ValueError:
                    raise GenomeError(f"malformed block {i} {block!r} in the {name} cell of "
                                      f"{text!r}: expected 'op@input+op@input'") from None
            cells.append(blocks)
        return cls(*cells)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"encoding": "cell", "normal": [[0, "op", 1, "op"], ...], ...}``."""
        return {"encoding": self.encoding,
                "normal": [list(b) for b in self.normal],
                "reduction": [list(b) for b in self.reduction]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CellGenome":
        if not isinstance(data, Mapping) or not {"normal", "reduction"} <= set(data):
            raise GenomeError(f"a cell genome dict needs 'normal' and 'reduction', got {data!r}")
        if data.get("encoding", cls.encoding) != cls.encoding:
            raise GenomeError(f"expected encoding 'cell', got {data.get('encoding')!r}")
        return cls(data["normal"], data["reduction"])


def _canonical_cell(blocks: tuple[Block, ...]) -> tuple[Block, ...]:
    """``blocks`` renumbered in the dependency-respecting order with the smallest code sequence.

    A block placed at position p is coded as its halves with inputs relabelled (block u -> state
    2 + its position) and sorted, followed by its colour (:func:`_refine_colours`, invariant
    under renumbering, so the minimum stays canonical while most ties are cut); its inputs are
    all placed, so the code depends only on the prefix. The numbering is built one position at a
    time, keeping only prefixes whose codes so far are smallest. Prefixes that leave the same
    future (same placed blocks, same relabelled references of every unplaced block) are merged,
    and of two interchangeable candidates (same halves, and every block reads both with the same
    ops) only one is tried. Returns the relabelled blocks, colours dropped.
    """
    n = len(blocks)
    halves = [((b[0], b[1]), (b[2], b[3])) for b in blocks]
    deps = [frozenset(s - 2 for s, _ in h if s >= 2) for h in halves]
    readers: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    for w, h in enumerate(halves):
        for s, op in h:
            if s >= 2:
                readers[s - 2].append((w, op))
    # Swapping two blocks with the same twin signature is an automorphism of the cell.
    twin = [(tuple(sorted(halves[u])), tuple(sorted(readers[u]))) for u in range(n)]
    colour = _refine_colours(halves, readers)

    def relabel(h: tuple[tuple[int, str], ...], state: dict[int, int]) -> tuple:
        # cell inputs keep 0 and 1; placed blocks get their new state; unplaced ones -(old state)
        return tuple((s if s < 2 else state.get(s - 2, -s), op) for s, op in h)

    frontier: list[tuple[int, ...]] = [()]
    out: list[Block] = []
    for p in range(n):
        best: Block | None = None
        chosen: dict[tuple, tuple[int, ...]] = {}
        for prefix in frontier:
            state = {u: 2 + i for i, u in enumerate(prefix)}
            tried = set()
            for v in range(n):
                if v in state or not deps[v] <= state.keys() or twin[v] in tried:
                    continue
                tried.add(twin[v])
                (ia, oa), (ib, ob) = sorted(relabel(halves[v], state))
                code = (ia, oa, ib, ob, colour[v])
                if best is not None and code > best:
                    continue
                if best is None or code < best:
                    best, chosen = code, {}
                new = prefix + (v,)
                state_v = {**state, v: 2 + p}
                signature = (frozenset(new), tuple(relabel(halves[w], state_v)
                                                   for w in range(n) if w not in state_v))
                chosen.setdefault(signature, new)
        frontier = list(chosen.values())
        out.append(best[:4])
    return tuple(out)


def _refine_colours(halves: list, readers: list) -> list[int]:
    """Colour refinement of the blocks: a block's colour is its halves (cell inputs by number,
    blocks by colour) and the ops and colours of its readers, iterated until stable. Colours are
    ranks of sorted signatures, so they do not depend on the numbering of the blocks."""
    n = len(halves)
    colour = [0] * n
    for _ in range(n + 1):
        signature = [(colour[u],
                      tuple(sorted((s, op) if s < 2 else (2 + colour[s - 2], op)
                                   for s, op in halves[u])),
                      tuple(sorted((op, colour[w]) for w, op in readers[u])))
                     for u in range(n)]
        rank = {sig: r for r, sig in enumerate(sorted(set(signature)))}
        new = [rank[sig] for sig in signature]
        if len(rank) == len(set(colour)):
            return new
        colour = new
    return colour


def _blocks(pairs: Iterable[tuple[str, int]]) -> tuple[Block, ...]:
    """DARTS-style ``[(op, input), ...]`` (two entries per block) to our blocks."""
    pairs = list(pairs)
    return tuple((pairs[i][1], pairs[i][0], pairs[i + 1][1], pairs[i + 1][0])
                 for i in range(0, len(pairs), 2))


# Published cells, as reproduced in the DARTS reference code (genotypes.py); their output
# concatenations there ([4, 5, 6], [3, 4, 6] and [2..6], [4, 5, 6]) are exactly the block states
# no block reads, which is our rule.
AMOEBANET_A = CellGenome(
    normal=_blocks([("avg_pool_3x3", 0), ("max_pool_3x3", 1), ("sep_conv_3x3", 0),
                    ("sep_conv_5x5", 2), ("sep_conv_3x3", 0), ("avg_pool_3x3", 3),
                    ("sep_conv_3x3", 1), ("identity", 1), ("identity", 0), ("avg_pool_3x3", 1)]),
    reduction=_blocks([("avg_pool_3x3", 0), ("sep_conv_3x3", 1), ("max_pool_3x3", 0),
                       ("sep_conv_7x7", 2), ("sep_conv_7x7", 0), ("avg_pool_3x3", 1),
                       ("max_pool_3x3", 0), ("max_pool_3x3", 1), ("conv_1x7_7x1", 0),
                       ("sep_conv_3x3", 5)]),
)

NASNET_A = CellGenome(
    normal=_blocks([("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("sep_conv_5x5", 0),
                    ("sep_conv_3x3", 0), ("avg_pool_3x3", 1), ("identity", 0),
                    ("avg_pool_3x3", 0), ("avg_pool_3x3", 0), ("sep_conv_3x3", 1),
                    ("identity", 1)]),
    reduction=_blocks([("sep_conv_5x5", 1), ("sep_conv_7x7", 0), ("max_pool_3x3", 1),
                       ("sep_conv_7x7", 0), ("avg_pool_3x3", 1), ("sep_conv_5x5", 0),
                       ("identity", 3), ("avg_pool_3x3", 2), ("sep_conv_3x3", 2),
                       ("max_pool_3x3", 1)]),
)


# --------------------------------------------------------------------------- variation operators
def _check_ops(ops: Sequence[str], minimum: int) -> tuple[str, ...]:
    """``ops`` as a tuple of distinct known names (first occurrences kept), at least ``minimum``."""
    if isinstance(ops, str) or not isinstance(ops, Iterable):
        raise GenomeError(f"ops must be a sequence of op names like {list(NASNET_OPS[:2])}, "
                          f"got {ops!r}")
    ops = tuple(ops)
    unknown = [op for op in ops if not isinstance(op, str) or op not in KNOWN_OPS]
    if unknown:
        raise GenomeError(f"unknown ops {unknown!r}; known ops: {', '.join(sorted(KNOWN_OPS))}")
    ops = tuple(dict.fromkeys(ops))
    if len(ops) < minimum:
        raise GenomeError(f"need at least {minimum} distinct op name(s), got {list(ops)}"
                          + (" (an op mutation must pick a different op)" if minimum > 1 else ""))
    return ops


def _check_probabilities(**probabilities: float) -> None:
    for name, p in probabilities.items():
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise GenomeError(f"{name} must be a probability in [0, 1], got {p!r}")


def _replace(genome: CellGenome, name: str, i: int, block: Block) -> CellGenome:
    blocks = genome.cell(name)
    return dataclasses.replace(genome, **{name: blocks[:i] + (block,) + blocks[i + 1:]})


def mutate_hidden_state(genome: CellGenome, rng: random.Random) -> CellGenome:
    """Hidden-state mutation (Real et al. 2019): one cell, one block of it and one half of that
    block are drawn uniformly by ``rng``, and the half's input is rewired to a different state
    the block may read, drawn uniformly. Ops are unchanged. Returns a new genome."""
    name = CELLS[rng.randrange(2)]
    i = rng.randrange(len(genome.cell(name)))
    half = rng.randrange(2)
    block = list(genome.cell(name)[i])
    current = block[2 * half]
    block[2 * half] = rng.choice([s for s in range(2 + i) if s != current])
    return _replace(genome, name, i, tuple(block))


def mutate_op(genome: CellGenome, rng: random.Random,
              ops: Sequence[str] = NASNET_OPS) -> CellGenome:
    """Op mutation (Real et al. 2019): one cell, one block of it and one half of that block are
    drawn uniformly by ``rng``, and the half's op is replaced by a different op drawn uniformly
    from ``ops`` (at least two distinct known names). Inputs are unchanged. Returns a new
    genome."""
    ops = _check_ops(ops, minimum=2)
    name = CELLS[rng.randrange(2)]
    i = rng.randrange(len(genome.cell(name)))
    half = rng.randrange(2)
    block = list(genome.cell(name)[i])
    current = block[2 * half + 1]
    block[2 * half + 1] = rng.choice([op for op in ops if op != current])
    return _replace(genome, name, i, tuple(block))


def mutate(genome: CellGenome, rng: random.Random, *, ops: Sequence[str] = NASNET_OPS,
           p_hidden: float = 0.5, p_op: float = 0.5, p_identity: float = 0.0) -> CellGenome:
    """The mutation of Real et al. 2019: with probability ``p_identity`` the genome itself is
    returned (identity mutation); otherwise a hidden-state or an op mutation, chosen in
    proportion ``p_hidden : p_op``, returns a new genome. The argument is never modified."""
    for name, p in (("p_hidden", p_hidden), ("p_op", p_op)):
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < math.inf:
            raise GenomeError(f"{name} must be a finite weight >= 0, got {p!r}")
    _check_probabilities(p_identity=p_identity)
    if p_hidden + p_op <= 0 and p_identity < 1:
        raise GenomeError(f"p_hidden and p_op are both 0 but p_identity={p_identity} < 1: give "
                          f"a hidden-state or op mutation a positive weight")
    ops = _check_ops(ops, minimum=2)
    if rng.random() < p_identity:
        return genome
    if rng.random() * (p_hidden + p_op) < p_hidden:
        return mutate_hidden_state(genome, rng)
    return mutate_op(genome, rng, ops)


def crossover(a: CellGenome, b: CellGenome, rng: random.Random, *,
              p_c: float, q_c: float) -> tuple[CellGenome, CellGenome]:
    """Cell-wise crossover, the analogue of Genetic-CNN's stage-wise one: with probability
    ``p_c`` the pair crosses, and then each cell (normal, reduction) is swapped between the two
    with probability ``q_c``. Only whole cells move (the cells of ``a`` and ``b`` may differ in
    size). Returns two new genomes (or the arguments themselves when nothing was swapped)."""
    _check_probabilities(p_c=p_c, q_c=q_c)
    if rng.random() >= p_c:
        return a, b
    swap = [rng.random() < q_c for _ in CELLS]
    if not any(swap):
        return a, b
    cells_a = [b.cell(name) if s else a.cell(name) for name, s in zip(CELLS, swap)]
    cells_b = [a.cell(name) if s else b.cell(name) for name, s in zip(CELLS, swap)]
    return CellGenome(*cells_a), CellGenome(*cells_b)


# --------------------------------------------------------------------------- the encoding
class CellMutation(Section):
    """Relative weights of the mutations of Real et al. 2019."""

    hidden_state: float = Field(0.5, ge=0)
    op: float = Field(0.5, ge=0)
    identity: float = Field(0.0, ge=0, le=1, description="probability of no change")

    @model_validator(mode="after")
    def _check(self) -> "CellMutation":
        if self.hidden_state + self.op <= 0:
            raise ValueError("search.mutation: hidden_state and op weights cannot both be 0")
        return self


class CellSearch(Section):
    """AmoebaNet / NASNet cells (Real et al. 2019; Zoph et al. 2018): the ``search:`` section."""

    encoding: Literal["cell"] = "cell"
    blocks: int = Field(5, ge=1, le=MAX_BLOCKS, description="blocks per cell B")
    ops: list[str] = Field(list(NASNET_OPS), min_length=2, description="op vocabulary")
    cells_per_stack: int = Field(2, ge=1, le=32, description="normal cells per stack N")
    filters: int = Field(16, ge=1, le=1024, description="channels of the first stack F")
    stem_multiplier: int = Field(3, ge=1, le=16)
    auxiliary: bool = False
    drop_path: float = Field(0.0, ge=0, lt=1)
    mutation: CellMutation = CellMutation()

    @model_validator(mode="after")
    def _check(self) -> "CellSearch":
        unknown = [op for op in self.ops if op not in KNOWN_OPS]
        if unknown:
            raise ValueError(f"search.ops: unknown ops {unknown}; known: {sorted(KNOWN_OPS)}")
        if len(set(self.ops)) != len(self.ops):
            raise ValueError(f"search.ops lists an op twice: {self.ops}")
        return self

    def decoder_space(self) -> dict[str, Any]:
        """The decoder's settings (without the data set's in_channels / num_classes)."""
        return {"cells_per_stack": self.cells_per_stack, "filters": self.filters,
                "stem_multiplier": self.stem_multiplier, "auxiliary": self.auxiliary,
                "drop_path": self.drop_path}


def graph(genome: CellGenome) -> Graph:
    """Each cell a cluster: the two cell inputs, one node per block with its two op edges, and
    the concatenation of the states no block reads."""
    out = Graph("Cell genome (NASNet / AmoebaNet space)",
                vocabulary=NASNET_OPS + tuple(sorted(KNOWN_OPS - set(NASNET_OPS))))
    for cell in CELLS:
        blocks = genome.cell(cell)
        outputs = genome.outputs(cell)
        out.clusters[cell] = (f"{cell} cell: {len(blocks)} blocks, output concatenates "
                              + ", ".join(str(s) for s in outputs))
        out.nodes[f"{cell}_0"] = ("c_{k-2} (0)", "input", cell)
        out.nodes[f"{cell}_1"] = ("c_{k-1} (1)", "input", cell)
        for i, (a, op_a, b, op_b) in enumerate(blocks):
            target = f"{cell}_{2 + i}"
            out.nodes[target] = (f"block {i} ({2 + i})", "node", cell)
            out.edges.append((f"{cell}_{a}", target, op_a, "solid"))
            out.edges.append((f"{cell}_{b}", target, op_b, "solid"))
        out.nodes[f"{cell}_out"] = ("concat", "output", cell)
        for state in outputs:
            out.edges.append((f"{cell}_{state}", f"{cell}_out", None, "solid"))
    return out


class Cell(Encoding):
    name = "cell"
    title = "NASNet / AmoebaNet cell"
    genome = CellGenome
    search = CellSearch
    example = "sep_conv_3x3@0+identity@1,.../avg_pool_3x3@0+max_pool_3x3@1,..."
    decoder = "training.decode:cell_net"

    def random(self, space: CellSearch, rng: random.Random) -> CellGenome:
        return CellGenome.random(rng, blocks=space.blocks, ops=tuple(space.ops))

    def mutate(self, genome: CellGenome, space: CellSearch, rng: random.Random, *, p_m: float,
               q_m: float) -> CellGenome:
        """One paper mutation with probability ``p_m``; ``q_m`` has no meaning for cells."""
        return self.mutate_one(genome, space, rng) if rng.random() < p_m else genome

    def mutate_one(self, genome: CellGenome, space: CellSearch,
                   rng: random.Random) -> CellGenome:
        return mutate(genome, rng, ops=tuple(space.ops), p_hidden=space.mutation.hidden_state,
                      p_op=space.mutation.op, p_identity=space.mutation.identity)

    def crossover(self, a: CellGenome, b: CellGenome, space: Any, rng: random.Random, *,
                  p_c: float, q_c: float) -> tuple[CellGenome, CellGenome]:
        return crossover(a, b, rng, p_c=p_c, q_c=q_c)

    def claims(self, text: str) -> bool:
        return ("@" in text or "/" in text) and " " not in text  # " + {": a tuned genome

    def graph(self, genome: CellGenome) -> Graph:
        return graph(genome)


register(Cell())
