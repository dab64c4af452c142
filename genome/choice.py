"""Choice genomes: one value per dimension of a search space users define.

Two forms of space (``search:`` section):

- ``choices``: a list of positions, each with its allowed values (strings, numbers or booleans),
  for example six cell edges with five ops each;
- ``params``: named dimensions, each a list of values, an integer or float range (linear or log
  scale) or a conditional value that exists only when earlier dimensions have given values (see
  :mod:`genome.params`).

A genome holds the chosen value per dimension, ``null`` where a conditional dimension is
inactive; it is its own canonical form (floats are rounded to 6 significant digits when drawn),
so ``key()`` is its text form. Text form: compact JSON, ``["conv3x3","skip",1,0.0123,null]``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Optional, Sequence, Union

from pydantic import (Field, PrivateAttr, StrictBool, StrictFloat, StrictInt, StrictStr,
                      model_validator)

from genome.canonical import once
from genome.errors import GenomeError
from genome.params import Space, as_space, dim_spec
from genome.registry import Encoding, register
from genome.section import Section

Value = Any  # str | int | float | bool, or None where a conditional dimension is inactive
_COMPACT = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps(..., separators=(",", ":"))`` without building an encoder per call."""


def check_choices(choices: Sequence[Sequence[Value]]) -> tuple[tuple[Value, ...], ...]:
    """Validate a positional choice space: at least one position, each with distinct scalar
    values."""
    return tuple(d.values for d in Space.from_choices(choices).dims)


@dataclass(frozen=True)
class ChoiceGenome:
    """One chosen value per position. Frozen and hashable; validated against a space by
    :meth:`check` (the genome alone does not know its space)."""

    values: tuple[Value, ...]

    encoding: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        if isinstance(self.values, (str, bytes)) or not isinstance(self.values, Sequence):
            raise GenomeError(f"a choice genome is a list of values, got {self.values!r}")
        values = tuple(self.values)
        if not values or any(v is not None and not isinstance(v, (str, int, float, bool))
                             for v in values) or all(v is None for v in values):
            raise GenomeError(f"a choice genome needs at least one value, each a string, "
                              f"number, boolean or null (inactive); got {self.values!r}")
        object.__setattr__(self, "values", values)

    @classmethod
    def _varied(cls, values: tuple[Value, ...]) -> "ChoiceGenome":
        """A variation of a valid genome within its space (a mutation's output): built without
        the checks, which would cost more than the mutation itself."""
        genome = object.__new__(cls)
        object.__setattr__(genome, "values", values)
        return genome

    def check(self, choices: Any) -> "ChoiceGenome":
        """Return ``self`` if it fits ``choices`` (a positional list of value lists or a
        :class:`~genome.params.Space`): same length, each value allowed, ``None`` exactly where
        a conditional dimension is inactive."""
        space = as_space(choices)
        if len(self.values) != len(space.dims):
            raise GenomeError(f"genome {self} has {len(self.values)} positions, the space has "
                              f"{len(space.dims)}")
        try:
            space.check(self.values)
        except GenomeError as exc:
            raise GenomeError(f"genome {self}: {exc}") from None
        return self

    @once
    def key(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        return _COMPACT.encode(list(self.values))

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def from_string(cls, text: str) -> "ChoiceGenome":
        try:
            values = json.loads(text)
        except (TypeError, ValueError):
            raise GenomeError(f"a choice genome string is a JSON list like "
                              f"'[\"conv3x3\",\"skip\",1]', got {text!r}") from None
        return cls(values)

    def to_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "values": list(self.values)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ChoiceGenome":
        if not isinstance(data, Mapping) or "values" not in data:
            raise GenomeError(f"a choice genome dict needs 'values', got {data!r}")
        if data.get("encoding", cls.encoding) != cls.encoding:
            raise GenomeError(f"expected encoding 'choice', got {data.get('encoding')!r}")
        return cls(data["values"])

    @classmethod
    def random(cls, choices: Any, rng: random.Random) -> "ChoiceGenome":
        """Every active dimension drawn uniformly (in log space for log ranges) by ``rng``."""
        return cls(as_space(choices).random(rng))


# --------------------------------------------------------------------------- variation operators
def mutate_one(genome: ChoiceGenome, choices: Any, rng: random.Random) -> ChoiceGenome:
    """Move one dimension, drawn uniformly among the active ones with more than one value, to a
    different value (a categorical one to another value, a range by a normal step of a tenth of
    its (log) range). Dimensions that this switches on are drawn, those it switches off become
    ``None``. Returns ``genome`` itself when no dimension can change; never modifies it."""
    space = as_space(choices)
    free = [i for i in space.varying if genome.values[i] is not None]
    if not free:
        return genome
    i = rng.choice(free)
    values = list(genome.values)
    values[i] = space.dims[i].neighbour(values[i], rng)
    return ChoiceGenome._varied(space.repair(values, rng))


def mutate(genome: ChoiceGenome, choices: Any, rng: random.Random, *,
           p_m: float, q_m: float) -> ChoiceGenome:
    """Genetic-algorithm mutation: with probability ``p_m`` the individual mutates, and then
    each active dimension moves to a different value with probability ``q_m`` (as in
    :func:`mutate_one`); conditional dimensions are then switched on (drawn) or off."""
    if rng.random() >= p_m:
        return genome
    space = as_space(choices)
    values = tuple(dim.neighbour(value, rng)
                   if dim.variable and value is not None and rng.random() < q_m else value
                   for value, dim in zip(genome.values, space.dims))
    values = space.repair(values, rng)
    return genome if values == genome.values else ChoiceGenome._varied(values)


def crossover(a: ChoiceGenome, b: ChoiceGenome, rng: random.Random, *, p_c: float,
              q_c: float = 0.5, space: Any = None) -> tuple[ChoiceGenome, ChoiceGenome]:
    """Uniform crossover: with probability ``p_c`` the pair crosses, and then each position is
    swapped between the two with probability ``q_c`` (0.5 is classic uniform crossover). With
    ``space``, conditional dimensions of the children are switched on (drawn) or off."""
    if len(a.values) != len(b.values):
        raise GenomeError(f"cannot cross choice genomes of {len(a.values)} and "
                          f"{len(b.values)} positions")
    if rng.random() >= p_c:
        return a, b
    swap = [rng.random() < q_c for _ in a.values]
    if not any(swap):
        return a, b
    c = tuple(y if s else x for x, y, s in zip(a.values, b.values, swap))
    d = tuple(x if s else y for x, y, s in zip(a.values, b.values, swap))
    if space is not None:
        space = as_space(space)
        c, d = space.repair(c, rng), space.repair(d, rng)
    return ChoiceGenome(c), ChoiceGenome(d)


# --------------------------------------------------------------------------- the encoding
class ChoiceSearch(Section):
    """A space that you define (also tabular benchmarks): the ``search:`` section, with either
    ``choices`` (positions, each a list of values) or ``params`` (named dimensions: values,
    ranges, conditionals; see :mod:`genome.params`)."""

    encoding: Literal["choice"] = "choice"
    choices: Optional[list[list[Union[StrictBool, StrictInt, StrictFloat, StrictStr]]]] = Field(
        None, min_length=1, max_length=10_000, description="allowed values per position")
    params: Optional[dict[str, Any]] = Field(
        None, min_length=1, max_length=10_000,
        description="named dimensions: [values] | {int|log_int|uniform|log_uniform: [lo, hi]} "
                    "| {values: [...]}, each with an optional when: {earlier: value}")

    _space: Space = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> "ChoiceSearch":
        if (self.choices is None) == (self.params is None):
            raise ValueError("search: give either choices (a list of value lists) or params "
                             "(named dimensions), not both and not neither")
        try:
            space = (Space.from_choices(self.choices) if self.params is None
                     else Space.from_params(self.params))
        except GenomeError as exc:
            raise ValueError(f"search.{'choices' if self.params is None else 'params'}: "
                             f"{exc}") from None
        self._space = space
        return self

    def decoder_space(self) -> dict[str, Any]:
        if self.params is None:
            return {"choices": [list(c) for c in self.choices]}
        return {"params": {d.name: dim_spec(d) for d in self._space.dims}}

    @property
    def space(self) -> Space:
        """The dimensions, built once."""
        return self._private("_space")


class Choice(Encoding):
    name = "choice"
    title = "choice vector"
    genome = ChoiceGenome
    search = ChoiceSearch
    example = '["conv3x3","skip",1]'

    def random(self, space: ChoiceSearch, rng: random.Random) -> ChoiceGenome:
        return ChoiceGenome.random(space.space, rng)

    def mutate(self, genome: ChoiceGenome, space: ChoiceSearch, rng: random.Random, *,
               p_m: float, q_m: float) -> ChoiceGenome:
        return mutate(genome, space.space, rng, p_m=p_m, q_m=q_m)

    def mutate_one(self, genome: ChoiceGenome, space: ChoiceSearch,
                   rng: random.Random) -> ChoiceGenome:
        return mutate_one(genome, space.space, rng)

    def crossover(self, a: ChoiceGenome, b: ChoiceGenome, space: Any, rng: random.Random, *,
                  p_c: float, q_c: float) -> tuple[ChoiceGenome, ChoiceGenome]:
        return crossover(a, b, rng, p_c=p_c, q_c=q_c, space=space.space)

    def claims(self, text: str) -> bool:
        return text.startswith("[") and text.endswith("]")

    def named(self, genome: ChoiceGenome, space: ChoiceSearch) -> Optional[dict[str, Any]]:
        return space.space.as_dict(genome.values) if space.params is not None else None


register(Choice())
