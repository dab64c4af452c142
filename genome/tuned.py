"""Tuned genomes: an architecture of any other encoding plus the training settings searched
beside it (``evaluation.lr: {log_uniform: [1e-3, 0.3]}``).

The config's short form, a range or value list in place of an ``evaluation`` setting, becomes
the ``search`` section ``{encoding: tuned, architecture: <the search section>, settings:
{lr: {log_uniform: [0.001, 0.3]}}}`` (see :mod:`genome.params` for the dimension forms). A
genome holds the architecture genome and one value per setting; its key is both, so the same
architecture with another learning rate is trained again, and the same pair is trained once.
Text form: the architecture's, then `` + `` and the settings as compact JSON:
``1-01_1-01-001 + {"lr":0.0123}``. The built-in trainer decodes the architecture and trains
with the settings in place of the ``evaluation`` values (:meth:`Tuned.split`).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Mapping, Optional

from pydantic import Field, PrivateAttr, model_validator

from genome.canonical import once
from genome.choice import crossover as cross_values
from genome.choice import mutate as mutate_values
from genome.choice import mutate_one as mutate_one_value
from genome.choice import ChoiceGenome
from genome.errors import GenomeError
from genome.params import Space
from genome.registry import ENCODINGS, Encoding, Graph, genome_from_dict, get_encoding, register
from genome.section import Section

SEPARATOR = " + "


@dataclass(frozen=True)
class TunedGenome:
    """An architecture genome and ``settings``: ``((name, value), ...)`` in the space's order.
    Frozen and hashable."""

    genome: Any
    settings: tuple[tuple[str, Any], ...]

    encoding: ClassVar[str] = "tuned"

    def __post_init__(self) -> None:
        settings = self.settings.items() if isinstance(self.settings, Mapping) else self.settings
        try:
            settings = tuple((str(k), v) for k, v in settings)
        except (TypeError, ValueError):
            raise GenomeError(f"a tuned genome's settings are {{name: value}}, got "
                              f"{self.settings!r}") from None
        if any(v is not None and not isinstance(v, (str, int, float, bool))
               for _, v in settings):
            raise GenomeError(f"a tuned genome's settings are strings, numbers or booleans, "
                              f"got {dict(settings)!r}")
        if getattr(self.genome, "encoding", "tuned") == "tuned":
            raise GenomeError(f"a tuned genome holds an architecture genome, got "
                              f"{self.genome!r}")
        object.__setattr__(self, "settings", settings)

    @property
    def values(self) -> dict[str, Any]:
        """The settings as a dict."""
        return dict(self.settings)

    @once
    def key(self) -> str:
        return f"{self.genome.key()}{SEPARATOR}{self._settings_text()}"

    def _settings_text(self) -> str:
        return json.dumps(dict(self.settings), separators=(",", ":"))

    def to_string(self) -> str:
        return f"{self.genome.to_string()}{SEPARATOR}{self._settings_text()}"

    def __str__(self) -> str:
        return self.to_string()

    @classmethod
    def from_string(cls, text: str) -> "TunedGenome":
        from genome.registry import parse_genome

        head, sep, tail = text.rpartition(SEPARATOR)
        try:
            settings = json.loads(tail) if sep else None
        except ValueError:
            settings = None
        if not isinstance(settings, dict):
            raise GenomeError(f"a tuned genome string is an architecture, ' + ' and the "
                              f"settings as JSON, like '1-01_1-01-001 + {{\"lr\":0.01}}'; got "
                              f"{text!r}")
        return cls(parse_genome(head), settings)

    def to_dict(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "architecture": self.genome.to_dict(),
                "settings": dict(self.settings)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TunedGenome":
        if (not isinstance(data, Mapping) or "architecture" not in data
                or "settings" not in data):
            raise GenomeError(f"a tuned genome dict needs 'architecture' and 'settings', got "
                              f"{data!r}")
        return cls(genome_from_dict(data["architecture"]), data["settings"])


class TunedSearch(Section):
    """``search`` for an architecture with training settings searched beside it; written for
    you when an ``evaluation`` setting is a range or a list of values."""

    encoding: Literal["tuned"] = "tuned"
    architecture: dict[str, Any] = Field(description="the architecture's search section")
    settings: dict[str, Any] = Field(min_length=1, max_length=64,
                                     description="searched evaluation settings: {name: range "
                                                 "or values}")

    _arch: Any = PrivateAttr()
    _space: Space = PrivateAttr()

    @model_validator(mode="after")
    def _check(self) -> "TunedSearch":
        name = self.architecture.get("encoding", "binary")
        if name == "tuned" or name not in ENCODINGS:
            known = [n for n in ENCODINGS if n != "tuned"]
            raise ValueError(f"search.architecture.encoding: got {name!r}; allowed: "
                             f"{', '.join(known)}")
        try:
            self._arch = ENCODINGS[name].search.model_validate(self.architecture)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise ValueError(f"search.architecture: {exc}") from None
        try:
            self._space = Space.from_params(self.settings)
        except GenomeError as exc:
            raise ValueError(f"search.settings: {exc}") from None
        return self

    @property
    def arch(self) -> Any:
        """The architecture's validated search section."""
        return self._arch

    @property
    def space(self) -> Space:
        """The searched settings' dimensions."""
        return self._private("_space")

    def decoder_space(self) -> dict[str, Any]:
        return self._arch.decoder_space()

    def describe(self) -> list[str]:
        return self._space.describe()


def _values(genome: TunedGenome, space: Space) -> ChoiceGenome:
    named = dict(genome.settings)
    return ChoiceGenome(tuple(named.get(n) for n in space.names))


def _settings(values: ChoiceGenome, space: Space) -> tuple[tuple[str, Any], ...]:
    return tuple((n, v) for n, v in zip(space.names, values.values) if v is not None)


class Tuned(Encoding):
    name = "tuned"
    title = "architecture + training settings"
    genome = TunedGenome
    search = TunedSearch
    example = '1-01_1-01-001 + {"lr":0.01}'
    decoder = "evolution.tuning:build_model"

    def _inner(self, space: TunedSearch) -> Encoding:
        return get_encoding(space.arch.encoding)

    def random(self, space: TunedSearch, rng: random.Random) -> TunedGenome:
        arch = self._inner(space).random(space.arch, rng)
        return TunedGenome(arch, _settings(ChoiceGenome.random(space.space, rng), space.space))

    def mutate(self, genome: TunedGenome, space: TunedSearch, rng: random.Random, *,
               p_m: float, q_m: float) -> TunedGenome:
        """The architecture mutates as its encoding does, and the settings as a choice genome
        (each with its own draw of ``p_m``)."""
        arch = self._inner(space).mutate(genome.genome, space.arch, rng, p_m=p_m, q_m=q_m)
        values = mutate_values(_values(genome, space.space), space.space, rng, p_m=p_m, q_m=q_m)
        return self._same_or_new(genome, arch, values, space)

    def mutate_one(self, genome: TunedGenome, space: TunedSearch,
                   rng: random.Random) -> TunedGenome:
        """One mutation: of the architecture, or of one setting that can change, the
        architecture counting as one more setting."""
        values = _values(genome, space.space)
        free = sum(d.variable and v is not None for d, v in zip(space.space.dims, values.values))
        if rng.random() < 1 / (1 + free):
            arch = self._inner(space).mutate_one(genome.genome, space.arch, rng)
            return self._same_or_new(genome, arch, values, space)
        return self._same_or_new(genome, genome.genome,
                                 mutate_one_value(values, space.space, rng), space)

    def crossover(self, a: TunedGenome, b: TunedGenome, space: TunedSearch,
                  rng: random.Random, *, p_c: float, q_c: float
                  ) -> tuple[TunedGenome, TunedGenome]:
        """The architectures cross as their encoding does, the settings uniformly."""
        c, d = self._inner(space).crossover(a.genome, b.genome, space.arch, rng, p_c=p_c,
                                            q_c=q_c)
        x, y = cross_values(_values(a, space.space), _values(b, space.space), rng, p_c=p_c,
                            q_c=q_c, space=space.space)
        return self._same_or_new(a, c, x, space), self._same_or_new(b, d, y, space)

    @staticmethod
    def _same_or_new(genome: TunedGenome, arch: Any, values: ChoiceGenome,
                     space: TunedSearch) -> TunedGenome:
        settings = _settings(values, space.space)
        if arch is genome.genome and settings == genome.settings:
            return genome
        return TunedGenome(arch, settings)

    def claims(self, text: str) -> bool:
        return SEPARATOR + "{" in text

    def graph(self, genome: TunedGenome) -> Optional[Graph]:
        return get_encoding(genome.genome.encoding).graph(genome.genome)

    def named(self, genome: TunedGenome, space: TunedSearch) -> Optional[dict[str, Any]]:
        inner = get_encoding(space.arch.encoding).named(genome.genome, space.arch) or {}
        return {**inner, **genome.values}

    def split(self, genome: TunedGenome) -> tuple[Any, dict[str, Any]]:
        return genome.genome, genome.values


register(Tuned())
