"""Choice genomes: a vector of categorical choices, for search spaces users define.

The space is a list of positions, each with its allowed values (strings, numbers or booleans),
for example six cell edges with five ops each. A genome holds the chosen value per position; it
is its own canonical form (no two different vectors are known to be the same network), so
``key()`` is its text form. Text form: compact JSON, ``["conv3x3","skip",1]``.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Sequence, Union

from pydantic import Field, StrictBool, StrictFloat, StrictInt, StrictStr, model_validator

from genome.errors import GenomeError
from genome.registry import Encoding, register
from genome.section import Section

Value = Any  # str | int | float | bool: what YAML and JSON carry


def check_choices(choices: Sequence[Sequence[Value]]) -> tuple[tuple[Value, ...], ...]:
    """Validate a choice space: at least one position, each with distinct scalar values."""
    if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
        raise GenomeError(f"a choice space is a non-empty list of positions, each a list of "
                          f"values; got {choices!r}")
    out = []
    for i, values in enumerate(choices):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise GenomeError(f"position {i} of the choice space must be a non-empty list of "
                              f"values, got {values!r}")
        if any(not isinstance(v, (str, int, float, bool)) for v in values):
            raise GenomeError(f"position {i}: values must be strings, numbers or booleans, "
                              f"got {values!r}")
        if len(set(map(json.dumps, values))) != len(values):
            raise GenomeError(f"position {i} lists a value twice: {values!r}")
        out.append(tuple(values))
    return tuple(out)


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
        if not values or any(not isinstance(v, (str, int, float, bool)) for v in values):
            raise GenomeError(f"a choice genome needs at least one value, each a string, "
                              f"number or boolean; got {self.values!r}")
        object.__setattr__(self, "values", values)

    def check(self, choices: Sequence[Sequence[Value]]) -> "ChoiceGenome":
        """Return ``self`` if it fits ``choices`` (same length, each value allowed)."""
        if len(self.values) != len(choices):
            raise GenomeError(f"genome {self} has {len(self.values)} positions, the space has "
                              f"{len(choices)}")
        for i, (value, allowed) in enumerate(zip(self.values, choices)):
            if json.dumps(value) not in {json.dumps(v) for v in allowed}:  # 1, 1.0, True differ
                raise GenomeError(f"position {i} of {self} is {value!r}; allowed: {list(allowed)}")
        return self

    def key(self) -> str:
        return self.to_string()

    def to_string(self) -> str:
        return json.dumps(list(self.values), separators=(",", ":"))

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
    def random(cls, choices: Sequence[Sequence[Value]], rng: random.Random) -> "ChoiceGenome":
        """Every position drawn uniformly from its values by ``rng``."""
        return cls(tuple(rng.choice(list(values)) for values in choices))


# --------------------------------------------------------------------------- variation operators
def mutate_one(genome: ChoiceGenome, choices: Sequence[Sequence[Value]],
               rng: random.Random) -> ChoiceGenome:
    """Resample one position, drawn uniformly among those with more than one value, to a
    different value. Returns ``genome`` itself when no position can change."""
    free = [i for i, values in enumerate(choices) if len(values) > 1]
    if not free:
        return genome
    i = rng.choice(free)
    values = list(genome.values)
    values[i] = rng.choice([v for v in choices[i] if v != values[i]])
    return ChoiceGenome(tuple(values))


def mutate(genome: ChoiceGenome, choices: Sequence[Sequence[Value]], rng: random.Random, *,
           p_m: float, q_m: float) -> ChoiceGenome:
    """Genetic-algorithm mutation: with probability ``p_m`` the individual mutates, and then
    each position is resampled to a different value with probability ``q_m``."""
    if rng.random() >= p_m:
        return genome
    values = tuple(rng.choice([v for v in allowed if v != value])
                   if len(allowed) > 1 and rng.random() < q_m else value
                   for value, allowed in zip(genome.values, choices))
    return genome if values == genome.values else ChoiceGenome(values)


def crossover(a: ChoiceGenome, b: ChoiceGenome, rng: random.Random, *, p_c: float,
              q_c: float = 0.5) -> tuple[ChoiceGenome, ChoiceGenome]:
    """Uniform crossover: with probability ``p_c`` the pair crosses, and then each position is
    swapped between the two with probability ``q_c`` (0.5 is classic uniform crossover)."""
    if len(a.values) != len(b.values):
        raise GenomeError(f"cannot cross choice genomes of {len(a.values)} and "
                          f"{len(b.values)} positions")
    if rng.random() >= p_c:
        return a, b
    swap = [rng.random() < q_c for _ in a.values]
    if not any(swap):
        return a, b
    return (ChoiceGenome(tuple(y if s else x for x, y, s in zip(a.values, b.values, swap))),
            ChoiceGenome(tuple(x if s else y for x, y, s in zip(a.values, b.values, swap))))


# --------------------------------------------------------------------------- the encoding
class ChoiceSearch(Section):
    """A vector of categorical choices that you define (also tabular benchmarks): the
    ``search:`` section."""

    encoding: Literal["choice"] = "choice"
    choices: list[list[Union[StrictBool, StrictInt, StrictFloat, StrictStr]]] = Field(
        min_length=1, max_length=10_000, description="allowed values per position")

    @model_validator(mode="after")
    def _check(self) -> "ChoiceSearch":
        try:
            check_choices(self.choices)
        except GenomeError as exc:
            raise ValueError(f"search.choices: {exc}") from None
        return self

    def decoder_space(self) -> dict[str, Any]:
        return {"choices": [list(c) for c in self.choices]}

    @property
    def values(self) -> tuple[tuple[Value, ...], ...]:
        """The allowed values per position, as tuples."""
        return tuple(tuple(c) for c in self.choices)


class Choice(Encoding):
    name = "choice"
    title = "choice vector"
    genome = ChoiceGenome
    search = ChoiceSearch
    example = '["conv3x3","skip",1]'

    def random(self, space: ChoiceSearch, rng: random.Random) -> ChoiceGenome:
        return ChoiceGenome.random(space.values, rng)

    def mutate(self, genome: ChoiceGenome, space: ChoiceSearch, rng: random.Random, *,
               p_m: float, q_m: float) -> ChoiceGenome:
        return mutate(genome, space.values, rng, p_m=p_m, q_m=q_m)

    def mutate_one(self, genome: ChoiceGenome, space: ChoiceSearch,
                   rng: random.Random) -> ChoiceGenome:
        return mutate_one(genome, space.values, rng)

    def crossover(self, a: ChoiceGenome, b: ChoiceGenome, space: Any, rng: random.Random, *,
                  p_c: float, q_c: float) -> tuple[ChoiceGenome, ChoiceGenome]:
        return crossover(a, b, rng, p_c=p_c, q_c=q_c)

    def claims(self, text: str) -> bool:
        return text.startswith("[")


register(Choice())
