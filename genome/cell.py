"""AmoebaNet / NASNet cell genomes (Zoph et al. 2018; Real et al. 2019).

A genome is a normal cell and a reduction cell of B blocks each. A block is
``(input_a, op_a, input_b, op_b)``: it applies ``op_a`` to hidden state ``input_a`` and ``op_b``
to ``input_b`` and adds the two. State 0 is the output of the cell before last, state 1 the
output of the last cell, state ``2 + i`` the output of block ``i``; a block reads only earlier
states. The cell's output concatenates every block state that no block reads.

Text form: blocks as ``op_a@input_a+op_b@input_b`` joined by ``,``; the normal cell, ``/``, the
reduction cell. No spaces, so it passes through a shell unquoted::

    avg_pool_3x3@0+max_pool_3x3@1,sep_conv_3x3@0+sep_conv_5x5@2,.../avg_pool_3x3@0+...
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping

from genome.errors import GenomeError

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

Block = tuple[int, str, int, str]


def _check_cell(name: str, blocks: Any) -> tuple[Block, ...]:
    try:
        blocks = tuple(tuple(block) for block in blocks)
    except TypeError:
        raise GenomeError(f"{name} cell must be a sequence of blocks "
                          f"(input_a, op_a, input_b, op_b), got {blocks!r}") from None
    if not blocks:
        raise GenomeError(f"{name} cell needs at least one block")
    for i, block in enumerate(blocks):
        if len(block) != 4:
            raise GenomeError(f"{name} cell block {i} must be (input_a, op_a, input_b, op_b), "
                              f"got {block!r}")
        for inp, op in (block[0:2], block[2:4]):
            if isinstance(inp, bool) or not isinstance(inp, int) or not 0 <= inp < 2 + i:
                raise GenomeError(f"{name} cell block {i} reads state {inp!r}; block {i} may "
                                  f"read states 0..{1 + i} (0, 1: cell inputs; 2..: earlier "
                                  f"blocks)")
            if op not in KNOWN_OPS:
                raise GenomeError(f"{name} cell block {i} uses unknown op {op!r}; known ops: "
                                  f"{', '.join(sorted(KNOWN_OPS))}")
    return blocks


@dataclass(frozen=True)
class CellGenome:
    """A normal and a reduction cell, each a tuple of blocks ``(input_a, op_a, input_b, op_b)``.

    Frozen and hashable; validated on creation (inputs refer to earlier states, ops are known).
    The two cells may have different numbers of blocks.
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
