"""Signal-model genomes: small sequence models of complex baseband (I/Q) for power-amplifier
(PA) behavioural modelling and digital predistortion (DPD).

A genome says, for a model that maps I/Q frames ``(batch, T, 2)`` to I/Q frames:

``features``
    what each sample is turned into: ``iq`` (I, Q), ``iqa`` (I, Q, |x|, |x|^3, sin, cos of the
    phase) or ``poly`` (the I/Q of x, x|x|, x|x|^2: polynomial terms x|x|^k).
``memory``
    a tapped delay line over the features: the features of x(n), x(n-1) .. x(n-memory+1) side
    by side (1: no taps).
``blocks``
    the backbone, in order, each ``(kind, width, dilation)``: ``gru`` / ``lstm`` (recurrent,
    ``width`` hidden units), ``tcn`` (a causal 1-D convolution, kernel 3, dilated by
    ``dilation``, then tanh) or ``fc`` (a per-sample linear layer and tanh). No blocks: the
    head reads the features directly (a linear model over the features).
``gmp``
    ``(degree, memory)`` of a memory-polynomial branch added to the output (complex
    coefficients on x(n-q)|x(n-q)|^(k-1), k = 1..degree, q = 0..memory-1), or ``None``.
``residual``
    a linear residual path: a learned 2x2 map of the input added to the output (TRes-GRU's).

Text form (also the canonical key; different strings are different networks)::

    iqa*2|gru12-tcn8d2|gmp3m4|res          features*memory | blocks | gmp or nogmp | res or nores
    iq*1||gmp5m4|nores                     no backbone: a memory polynomial with a linear head

Operators take an explicit ``random.Random``, return new genomes and never change their
arguments. The search section bounds what they draw: allowed features, block kinds, widths,
dilations, memories, depth, polynomial degrees and memories.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass, fields, replace
from typing import Any, ClassVar, Literal, Mapping, Optional

from pydantic import Field, model_validator

from genome.canonical import once
from genome.errors import GenomeError
from genome.registry import Encoding, register
from genome.section import Section

FEATURES = ("iq", "iqa", "poly")
KINDS = ("gru", "lstm", "tcn", "fc")
MAX_WIDTH = 1024
MAX_DEPTH = 8
MAX_MEMORY = 64
MAX_DEGREE = 9
MAX_DILATION = 64

_BLOCK = re.compile(r"^(gru|lstm|tcn|fc)(\d+)(?:d(\d+))?$")
_TEXT = re.compile(r"^(iq|iqa|poly)\*(\d+)\|([^|]*)\|(gmp\d+m\d+|nogmp)\|(res|nores)$")


@dataclass(frozen=True)
class Block:
    """One backbone block. ``dilation`` matters for ``tcn`` only and is 1 otherwise."""

    kind: str
    width: int
    dilation: int = 1

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise GenomeError(f"block kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if isinstance(self.width, bool) or not isinstance(self.width, int) \
                or not 1 <= self.width <= MAX_WIDTH:
            raise GenomeError(f"block width must be an integer 1..{MAX_WIDTH}, got "
                              f"{self.width!r}")
        if isinstance(self.dilation, bool) or not isinstance(self.dilation, int) \
                or not 1 <= self.dilation <= MAX_DILATION:
            raise GenomeError(f"block dilation must be an integer 1..{MAX_DILATION}, got "
                              f"{self.dilation!r}")
        if self.kind != "tcn" and self.dilation != 1:
            raise GenomeError(f"only tcn blocks are dilated; {self.kind} got dilation "
                              f"{self.dilation}")

    def to_string(self) -> str:
        return f"{self.kind}{self.width}" + (f"d{self.dilation}" if self.kind == "tcn" else "")

    @classmethod
    def from_string(cls, text: str) -> "Block":
        match = _BLOCK.match(text)
        if not match:
            raise GenomeError(f"a block is like gru12, lstm8, fc10 or tcn8d2, got {text!r}")
        kind, width, dilation = match.groups()
        if kind == "tcn" and dilation is None:
            raise GenomeError(f"a tcn block names its dilation, like tcn8d2; got {text!r}")
        if kind != "tcn" and dilation is not None:
            raise GenomeError(f"only tcn blocks are dilated; got {text!r}")
        return cls(kind, int(width), int(dilation or 1))


@dataclass(frozen=True)
class SignalGenome:
    """A signal model (see the module docstring). Frozen, hashable, validated on creation."""

    features: str = "iq"
    memory: int = 1
    blocks: tuple[Block, ...] = (Block("gru", 8),)
    gmp: Optional[tuple[int, int]] = None
    residual: bool = False

    encoding: ClassVar[str] = "signal"

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise GenomeError(f"features {self.features!r} is not one of {', '.join(FEATURES)}")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) \
                or not 1 <= self.memory <= MAX_MEMORY:
            raise GenomeError(f"memory must be an integer 1..{MAX_MEMORY}, got {self.memory!r}")
        blocks = tuple(self.blocks)
        if len(blocks) > MAX_DEPTH or not all(isinstance(b, Block) for b in blocks):
            raise GenomeError(f"blocks must be at most {MAX_DEPTH} Block values, got "
                              f"{self.blocks!r}")
        object.__setattr__(self, "blocks", blocks)
        if self.gmp is not None:
            gmp = tuple(self.gmp)
            if len(gmp) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in gmp) \
                    or not 1 <= gmp[0] <= MAX_DEGREE or not 1 <= gmp[1] <= MAX_MEMORY:
                raise GenomeError(f"gmp is (degree 1..{MAX_DEGREE}, memory 1..{MAX_MEMORY}) "
                                  f"or None, got {self.gmp!r}")
            object.__setattr__(self, "gmp", gmp)
        if not isinstance(self.residual, bool):
            raise GenomeError(f"residual must be true or false, got {self.residual!r}")

    # ------------------------------------------------------------------ forms
    def to_string(self) -> str:
        blocks = "-".join(b.to_string() for b in self.blocks)
        gmp = f"gmp{self.gmp[0]}m{self.gmp[1]}" if self.gmp else "nogmp"
        return (f"{self.features}*{self.memory}|{blocks}|{gmp}|"
                f"{'res' if self.residual else 'nores'}")

    @once
    def key(self) -> str:
        """Canonical: two genomes build the same network exactly when their keys are equal."""
        return self.to_string()

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def from_string(cls, text: str) -> "SignalGenome":
        match = _TEXT.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise GenomeError(f"a signal genome is like 'iqa*2|gru12-tcn8d2|gmp3m4|res' "
                              f"(features*memory | blocks joined by - or nothing | gmpKmM or "
                              f"nogmp | res or nores), got {text!r}")
        features, memory, blocks, gmp, residual = match.groups()
        parsed = tuple(Block.from_string(b) for b in blocks.split("-")) if blocks else ()
        degree = None
        if gmp != "nogmp":
            k, m = gmp[3:].split("m")
            degree = (int(k), int(m))
        return cls(features, int(memory), parsed, degree, residual == "res")

    def to_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "features": self.features, "memory": self.memory,
                "blocks": [[b.kind, b.width, b.dilation] for b in self.blocks],
                "gmp": list(self.gmp) if self.gmp else None, "residual": self.residual}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SignalGenome":
        if not isinstance(data, Mapping) or data.get("encoding", cls.encoding) != cls.encoding:
            raise GenomeError(f"expected a signal genome dict, got {data!r}")
        try:
            blocks = tuple(Block(*b) for b in data.get("blocks", ()))
            gmp = data.get("gmp")
            return cls(data["features"], data["memory"], blocks,
                       tuple(gmp) if gmp is not None else None, data.get("residual", False))
        except (KeyError, TypeError) as exc:
            raise GenomeError(f"a signal genome dict needs features, memory, blocks, gmp and "
                              f"residual; got {dict(data)!r} ({exc})") from None


class SignalSearch(Section):
    """Signal models for PA modelling and DPD: the ``search:`` section (what the operators
    may draw)."""

    encoding: Literal["signal"] = "signal"
    features: list[Literal["iq", "iqa", "poly"]] = Field(["iq", "iqa", "poly"], min_length=1)
    memory: list[int] = Field([1, 2, 3], min_length=1, description="tapped-delay lengths")
    kinds: list[Literal["gru", "lstm", "tcn", "fc"]] = Field(["gru", "lstm", "tcn", "fc"],
                                                             min_length=1)
    widths: list[int] = Field([4, 6, 8, 10, 12, 16], min_length=1)
    dilations: list[int] = Field([1, 2, 4], min_length=1)
    min_depth: int = Field(1, ge=0, le=MAX_DEPTH)
    max_depth: int = Field(2, ge=0, le=MAX_DEPTH)
    gmp_degrees: list[int] = Field([3, 5], description="memory-polynomial degrees; [] for no "
                                                       "polynomial branch")
    gmp_memory: list[int] = Field([2, 4], min_length=1)
    residual: list[bool] = Field([False, True], min_length=1)

    @model_validator(mode="after")
    def _check(self) -> "SignalSearch":
        for key, values, top in (("memory", self.memory, MAX_MEMORY),
                                 ("widths", self.widths, MAX_WIDTH),
                                 ("dilations", self.dilations, MAX_DILATION),
                                 ("gmp_degrees", self.gmp_degrees, MAX_DEGREE),
                                 ("gmp_memory", self.gmp_memory, MAX_MEMORY)):
            if any(not 1 <= v <= top for v in values):
                raise ValueError(f"search.{key}: every value lies in 1..{top}, got {values}")
        if self.min_depth > self.max_depth:
            raise ValueError(f"search.min_depth ({self.min_depth}) is above search.max_depth "
                             f"({self.max_depth})")
        return self

    def decoder_space(self) -> dict[str, Any]:
        return {"channels": 2}  # I and Q in and out; the genome says everything else


# --------------------------------------------------------------------------- operators
def random_block(space: SignalSearch, rng: random.Random) -> Block:
    kind = rng.choice(space.kinds)
    return Block(kind, rng.choice(space.widths),
                 rng.choice(space.dilations) if kind == "tcn" else 1)


def _random_gmp(space: SignalSearch, rng: random.Random) -> Optional[tuple[int, int]]:
    if not space.gmp_degrees:
        return None
    return (rng.choice(space.gmp_degrees), rng.choice(space.gmp_memory))


def random_genome(space: SignalSearch, rng: random.Random) -> SignalGenome:
    """Every gene drawn by ``rng`` from ``space``; the polynomial branch is present half the
    time (when the space allows one)."""
    depth = rng.randint(space.min_depth, space.max_depth)
    blocks = tuple(random_block(space, rng) for _ in range(depth))
    gmp = _random_gmp(space, rng) if rng.random() < 0.5 else None
    return SignalGenome(rng.choice(space.features), rng.choice(space.memory), blocks, gmp,
                        rng.choice(space.residual))


def _change_block(block: Block, space: SignalSearch, rng: random.Random) -> Block:
    """``block`` with one of its kind, width or dilation redrawn."""
    what = rng.choice(["kind", "width"] + (["dilation"] if block.kind == "tcn" else []))
    if what == "kind":
        kind = rng.choice(space.kinds)
        dilation = (block.dilation if block.kind == "tcn" else rng.choice(space.dilations)) \
            if kind == "tcn" else 1
        return Block(kind, block.width, dilation)
    if what == "width":
        return replace(block, width=rng.choice(space.widths))
    return replace(block, dilation=rng.choice(space.dilations))


def mutate_one(genome: SignalGenome, space: SignalSearch, rng: random.Random) -> SignalGenome:
    """One change: a redrawn feature set, memory, polynomial branch or residual flag, one
    block changed, a block added or a block removed (within the space's depth). Returns a new
    genome; ``genome`` is not modified."""
    moves = ["features", "memory", "gmp", "residual"]
    if genome.blocks:
        moves.append("block")
    if len(genome.blocks) < space.max_depth:
        moves.append("add")
    if len(genome.blocks) > space.min_depth:
        moves.append("remove")
    move = rng.choice(moves)
    if move == "features":
        return replace(genome, features=rng.choice(space.features))
    if move == "memory":
        return replace(genome, memory=rng.choice(space.memory))
    if move == "gmp":
        return replace(genome, gmp=None if genome.gmp else _random_gmp(space, rng)) \
            if rng.random() < 0.5 else replace(genome, gmp=_random_gmp(space, rng))
    if move == "residual":
        return replace(genome, residual=rng.choice(space.residual))
    blocks = list(genome.blocks)
    i = rng.randrange(len(blocks) + (move == "add"))
    if move == "block":
        blocks[i] = _change_block(blocks[i], space, rng)
    elif move == "add":
        blocks.insert(i, random_block(space, rng))
    else:
        del blocks[i]
    return replace(genome, blocks=tuple(blocks))


def mutate(genome: SignalGenome, space: SignalSearch, rng: random.Random, *, p_m: float,
           q_m: float) -> SignalGenome:
    """With probability ``p_m``: each gene (features, memory, each block, the polynomial
    branch, the residual flag) is redrawn with probability ``q_m``. Returns a new genome."""
    if rng.random() >= p_m:
        return genome
    out = genome
    if rng.random() < q_m:
        out = replace(out, features=rng.choice(space.features))
    if rng.random() < q_m:
        out = replace(out, memory=rng.choice(space.memory))
    blocks = tuple(_change_block(b, space, rng) if rng.random() < q_m else b for b in out.blocks)
    out = replace(out, blocks=blocks)
    if rng.random() < q_m:
        out = replace(out, gmp=None if out.gmp else _random_gmp(space, rng))
    if rng.random() < q_m:
        out = replace(out, residual=rng.choice(space.residual))
    return out


def crossover(a: SignalGenome, b: SignalGenome, rng: random.Random, *, p_c: float,
              q_c: float) -> tuple[SignalGenome, SignalGenome]:
    """With probability ``p_c``, uniform crossover: features, memory, the polynomial branch,
    the residual flag and each block position both parents have are swapped with probability
    ``q_c`` (a longer parent keeps its extra blocks). Returns two new genomes."""
    if rng.random() >= p_c:
        return a, b
    x, y = ({f.name: getattr(g, f.name) for f in fields(g)} for g in (a, b))
    for gene in ("features", "memory", "gmp", "residual"):
        if rng.random() < q_c:
            x[gene], y[gene] = y[gene], x[gene]
    bx, by = list(a.blocks), list(b.blocks)
    for i in range(min(len(bx), len(by))):
        if rng.random() < q_c:
            bx[i], by[i] = by[i], bx[i]
    x["blocks"], y["blocks"] = tuple(bx), tuple(by)
    return SignalGenome(**x), SignalGenome(**y)


class Signal(Encoding):
    name = "signal"
    title = "signal model (PA / DPD)"
    genome = SignalGenome
    search = SignalSearch
    example = "iqa*2|gru12-tcn8d2|gmp3m4|res"
    decoder = "training.signal_decode:signal_net"

    def random(self, space: SignalSearch, rng: random.Random) -> SignalGenome:
        return random_genome(space, rng)

    def mutate(self, genome: SignalGenome, space: SignalSearch, rng: random.Random, *,
               p_m: float, q_m: float) -> SignalGenome:
        return mutate(genome, space, rng, p_m=p_m, q_m=q_m)

    def mutate_one(self, genome: SignalGenome, space: SignalSearch,
                   rng: random.Random) -> SignalGenome:
        return mutate_one(genome, space, rng)

    def crossover(self, a: SignalGenome, b: SignalGenome, space: Any, rng: random.Random, *,
                  p_c: float, q_c: float) -> tuple[SignalGenome, SignalGenome]:
        return crossover(a, b, rng, p_c=p_c, q_c=q_c)

    def claims(self, text: str) -> bool:
        return bool(re.match(r"^(iq|iqa|poly)\*", text.strip()))


register(Signal())
