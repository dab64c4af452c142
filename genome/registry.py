"""Encodings by name, so that plain dicts (journal lines, worker tasks) turn back into genomes."""
from __future__ import annotations

from typing import Any, Mapping

from genome.binary import BinaryGenome
from genome.cell import CellGenome
from genome.choice import ChoiceGenome
from genome.errors import GenomeError

ENCODINGS: dict[str, type] = {g.encoding: g for g in (BinaryGenome, CellGenome, ChoiceGenome)}


def genome_from_dict(data: Mapping[str, Any]):
    """Rebuild a genome from its ``to_dict`` form, dispatching on ``data["encoding"]``."""
    if not isinstance(data, Mapping):
        raise GenomeError(f"expected a genome dict with an 'encoding' entry, got {data!r}")
    name = data.get("encoding")
    if name not in ENCODINGS:
        raise GenomeError(f"unknown genome encoding {name!r}; known: {sorted(ENCODINGS)}")
    return ENCODINGS[name].from_dict(data)
