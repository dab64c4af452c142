"""What an architecture is: frozen, hashable, JSON-serialisable genomes and their pure
variation operators. This package imports neither torch nor ``evolution``."""
from genome.binary import BinaryGenome
from genome.errors import EvonasError, GenomeError
from genome.registry import genome_from_dict

__all__ = ["BinaryGenome", "EvonasError", "GenomeError", "genome_from_dict"]
