"""evonas: evolutionary neural architecture search.

The public API; the code lives in the three packages users see (``genome``: what an
architecture is; ``training``: how it becomes a model and a score; ``evolution``: how the
search runs)::

    import evonas

    summary = evonas.search("my-search.yaml", objective=lambda genome: score(genome))
    config = evonas.load_config("runs/digits-genetic.yaml")
    summary = evonas.run(config)                       # -> evonas.RunSummary
    summary = evonas.resume(summary.run_dir, extend=10)
    record = evonas.RunRecord(summary.run_dir)         # read a run: config, results, best(k)
    model = evonas.load_model(summary.run_dir / "best")
    net = evonas.build_model(evonas.BinaryGenome.from_string("1-01_1-01-001"),
                             {"channels": [16, 32], "in_channels": 1, "num_classes": 10})

Importing evonas does not import torch; :func:`load_model` and :func:`build_model` do.
"""
from __future__ import annotations

from typing import Any, Mapping

from evolution.api import search
from evolution.asktell import Run, Trial, open_run
from evolution.callbacks import Callback
from evolution.config import Config, ConfigError, load_config
from evolution.record import RunRecord
from evolution.loop import RunSummary, resume, run
from genome import (BinaryGenome, CellGenome, ChoiceGenome, EvonasError, GenomeError,
                    genome_from_dict, load_genome, parse_genome)

__version__ = "0.2.0"


def load_model(path: Any) -> Any:
    """The trained model of an export folder or a run's ``best/`` as an ``nn.Module`` in eval
    mode, rebuilt through the decoder (see :func:`training.export.load_model`)."""
    from training.export import load_model as _load_model

    return _load_model(path)


def build_model(genome: Any, space: Mapping[str, Any]) -> Any:
    """A fresh ``nn.Module`` of ``genome`` (see :func:`training.decode.build_model`)."""
    from training.decode import build_model as _build_model

    return _build_model(genome, space)


__all__ = ["BinaryGenome", "Callback", "CellGenome", "ChoiceGenome", "Config", "ConfigError",
           "EvonasError",
           "GenomeError", "RunRecord", "RunSummary", "__version__", "build_model",
           "genome_from_dict", "load_config", "load_genome", "load_model", "parse_genome",
           "open_run", "resume", "run", "Run", "search", "Trial"]
