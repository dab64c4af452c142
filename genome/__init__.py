"""What an architecture is: frozen, hashable, JSON-serialisable genomes and their pure
variation operators. This package imports neither torch nor ``evolution``."""
from genome.binary import BinaryGenome
from genome.cell import CellGenome
from genome.choice import ChoiceGenome
from genome.errors import EvonasError, GenomeError
from genome.registry import ENCODINGS, genome_from_dict

__all__ = ["BinaryGenome", "CellGenome", "ChoiceGenome", "ENCODINGS", "EvonasError",
           "GenomeError", "genome_from_dict"]
