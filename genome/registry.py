"""Encodings by name: one entry per genome form, with everything the rest of evonas asks of it.

An encoding registers its genome class, its config section (the ``search:`` keys), a title, a
text example, and its variation operators in one calling shape::

    random(space, rng)                          -> genome
    mutate(genome, space, rng, *, p_m, q_m)     -> genome    # the genetic algorithm's mutation
    mutate_one(genome, space, rng)              -> genome    # exactly one mutation (aging)
    crossover(a, b, space, rng, *, p_c, q_c)    -> (genome, genome)

``space`` is the encoding's validated config section (it says what the genome alone does not:
a choice genome's allowed values, a cell's op set); ``rng`` is an explicit ``random.Random``.
Operators return new genomes and never change their arguments. ``parse`` reads the text form,
``claims`` says whether a string looks like this encoding's text form, ``graph`` describes what
to draw (``None``: not a graph), and ``decoder`` names the torch-side function that builds its
model. A new encoding is a module that subclasses :class:`Encoding` and calls
:func:`register`, plus its import in ``genome/__init__.py`` (and, for a model, the decoder's
module in ``training/``).
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any, ClassVar, Mapping, Optional

from genome.errors import GenomeError
from genome.section import Section


@dataclass
class Graph:
    """A drawable genome: nodes ``id -> (label, role, cluster)`` with role ``input``, ``node``
    or ``output``; edges ``(u, v, label or None, style)`` with style ``solid`` or ``dashed``;
    clusters ``id -> title`` in drawing order; ``vocabulary``: the op names edge labels come
    from, in a fixed order (so an op keeps its colour from one drawing to the next)."""

    title: str
    nodes: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    edges: list[tuple[str, str, Optional[str], str]] = field(default_factory=list)
    clusters: dict[str, str] = field(default_factory=dict)
    vocabulary: tuple[str, ...] = ()


class Encoding(ABC):
    """One genome form. Subclasses set the class attributes and implement the operators."""

    name: ClassVar[str]                 # the config's search.encoding
    title: ClassVar[str]                # for people: "Genetic-CNN"
    genome: ClassVar[type]              # the frozen genome class; genome.encoding == name
    search: ClassVar[type[Section]]     # the config section, with `encoding: Literal[name]`
    example: ClassVar[str]              # a text form, for messages
    decoder: ClassVar[Optional[str]] = None
    """``"module:function"`` that builds the genome's ``nn.Module`` (``function(genome, space)``,
    torch side, imported only when a model is built); ``None``: genomes of this encoding are
    scored by a user evaluator only."""

    @abstractmethod
    def random(self, space: Any, rng: Random) -> Any:
        """A genome drawn from ``space`` by ``rng``."""

    @abstractmethod
    def mutate(self, genome: Any, space: Any, rng: Random, *, p_m: float,
               q_m: float) -> Any:
        """The genetic algorithm's mutation: with probability ``p_m`` the genome mutates, each
        element changing with probability ``q_m`` where the encoding has elements."""

    @abstractmethod
    def mutate_one(self, genome: Any, space: Any, rng: Random) -> Any:
        """Exactly one mutation (aging evolution's)."""

    @abstractmethod
    def crossover(self, a: Any, b: Any, space: Any, rng: Random, *, p_c: float,
                  q_c: float) -> tuple[Any, Any]:
        """With probability ``p_c`` the pair crosses, each unit swapping with ``q_c``."""

    def parse(self, text: str) -> Any:
        """The genome written as ``text`` (its ``to_string`` form)."""
        return self.genome.from_string(text)

    @abstractmethod
    def claims(self, text: str) -> bool:
        """Whether ``text`` looks like this encoding's text form (it may still be malformed)."""

    def graph(self, genome: Any) -> Optional[Graph]:
        """What to draw for ``genome``; ``None`` when it is not a graph."""
        return None

    def split(self, genome: Any) -> tuple[Any, dict[str, Any]]:
        """The architecture to build and the training settings ``genome`` fixes (in place of
        the config's ``evaluation`` values): ``(genome, {})`` unless the genome searches
        settings (``tuned``)."""
        return genome, {}

    def named(self, genome: Any, space: Any) -> Optional[dict[str, Any]]:
        """``{name: value}`` of ``genome`` in ``space`` for reports, where the space names its
        dimensions; ``None`` otherwise."""
        return None


class Registry(dict):
    """Name -> entry for one kind of thing (encodings, decoders, tasks, data sets, strategies,
    pool backends), in registration order. A plain dict to read; :meth:`add` refuses a name
    twice and :meth:`get_entry` says which names exist. Errors are ``error`` (a subclass of
    :class:`~genome.errors.EvonasError`)."""

    def __init__(self, kind: str, error: type[Exception] = GenomeError):
        super().__init__()
        self.kind, self.error = kind, error

    def add(self, name: str, entry: Any) -> Any:
        """Register ``entry`` as ``name`` and return it."""
        if name in self:
            raise self.error(f"a {self.kind} named {name!r} is already registered")
        self[name] = entry
        return entry

    def get_entry(self, name: Any) -> Any:
        """The entry ``name``; the error lists the known names."""
        try:
            return self[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self)}") \
                from None


ENCODINGS = Registry("genome encoding")
"""``search.encoding`` -> its :class:`Encoding`, in registration order."""


def register(encoding: Encoding) -> Encoding:
    """Add ``encoding`` to :data:`ENCODINGS` (a name may be registered once)."""
    return ENCODINGS.add(encoding.name, encoding)


def get_encoding(name: str) -> Encoding:
    """The registered encoding ``name``; a :class:`GenomeError` lists the known ones."""
    return ENCODINGS.get_entry(name)


def genome_from_dict(data: Mapping[str, Any]) -> Any:
    """Rebuild a genome from its ``to_dict`` form, dispatching on ``data["encoding"]``."""
    if not isinstance(data, Mapping):
        raise GenomeError(f"expected a genome dict with an 'encoding' entry, got "
                          f"{type(data).__name__}")
    return get_encoding(data.get("encoding")).genome.from_dict(data)


def parse_genome(text: str, encoding: Optional[str] = None) -> Any:
    """The genome written as ``text``: in ``encoding`` when given, else in the first encoding
    whose text form it looks like (:meth:`Encoding.claims`), else as the first registered one,
    whose error then names the other encodings' text forms too."""
    if not isinstance(text, str):
        raise GenomeError(f"expected a genome string, got {type(text).__name__}")
    text = text.strip()
    if encoding is not None:
        return get_encoding(encoding).parse(text)
    for candidate in ENCODINGS.values():
        if candidate.claims(text):
            return candidate.parse(text)
    first = next(iter(ENCODINGS.values()))
    try:
        return first.parse(text)
    except GenomeError as exc:
        others = "; ".join(f"a {e.name} genome looks like {e.example}"
                           for e in list(ENCODINGS.values())[1:])
        raise GenomeError(f"{exc}. {others}; a JSON file path must end in .json") from None


def load_genome(source: Any, encoding: Optional[str] = None) -> Any:
    """A genome from what a user may give: a genome object, a genome dict (or a document with
    a ``"genome"`` entry, like an export's ``genome.json``), a genome string (see
    :func:`parse_genome`), or the path of a JSON file holding one of those dicts. With
    ``encoding``, a genome of another encoding is an error."""
    if isinstance(source, tuple(e.genome for e in ENCODINGS.values())):
        genome = source
    elif isinstance(source, Mapping):
        data = source.get("genome", source)
        genome = genome_from_dict(data if isinstance(data, Mapping) else source)
    elif isinstance(source, os.PathLike) or (isinstance(source, str) and (
            source.strip().endswith(".json") or os.path.isfile(source.strip()))):
        path = Path(os.fspath(source).strip())
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise GenomeError(f"genome file {str(path)!r} does not exist; give a genome string "
                              f"or a JSON file such as runs/<name>/best/genome.json") from None
        except (OSError, ValueError) as exc:
            raise GenomeError(f"cannot read a genome from {str(path)!r}: {exc}") from None
        if not isinstance(data, Mapping):
            raise GenomeError(f"{str(path)!r} holds a JSON {type(data).__name__}; expected a "
                              f"genome dict or a dict with a 'genome' entry")
        return load_genome(data, encoding)
    elif isinstance(source, str) and encoding is not None:
        try:
            genome = get_encoding(encoding).parse(source.strip())
        except GenomeError as exc:
            shown = source.strip()[:80]
            raise GenomeError(f"{shown!r} is not a {encoding} genome ({exc}); expected a string "
                              f"like {get_encoding(encoding).example}, or a JSON file with a "
                              f"genome dict") from None
    elif isinstance(source, str):
        genome = parse_genome(source)
    else:
        raise GenomeError(f"expected a genome, genome string or JSON file, got "
                          f"{type(source).__name__}")
    if encoding is not None and genome.encoding != encoding:
        raise GenomeError(f"the genome is a {genome.encoding} genome, not a {encoding} genome; "
                          f"give a {encoding} genome (like {get_encoding(encoding).example})")
    return genome
