"""What an architecture is: frozen, hashable, JSON-serialisable genomes, their pure variation
operators, and the registry of encodings. This package imports neither torch nor
``evolution``."""
from genome.errors import EvonasError, GenomeError
from genome.registry import (ENCODINGS, Encoding, Graph, genome_from_dict, get_encoding,
                             load_genome, parse_genome, register)

# The built-in encodings register themselves on import (one line each).
from genome.binary import BinaryGenome  # noqa: E402
from genome.cell import CellGenome  # noqa: E402
from genome.choice import ChoiceGenome  # noqa: E402
from genome.signal import SignalGenome  # noqa: E402
from genome.tuned import TunedGenome  # noqa: E402

__all__ = ["BinaryGenome", "CellGenome", "ChoiceGenome", "ENCODINGS", "Encoding", "EvonasError",
           "GenomeError", "Graph", "SignalGenome", "TunedGenome", "genome_from_dict",
           "get_encoding", "load_genome", "parse_genome", "register"]
