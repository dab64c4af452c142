"""How a genome becomes a model and a score. Torch lives here; ``genome`` is imported, never
``evolution``.

Modules: ``ops`` (the op table), ``decode`` (genome -> ``nn.Module``, through the decoder each
encoding names),
``tasks`` (what a model is trained for), ``data`` (data sets by name), ``trainer`` (training and
measuring), ``export`` (export folders and :func:`load_model`). Names below are imported on
first use, so ``training.tasks`` and ``training.data`` can be read without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_NAMES = {
    "DataError": "training.data", "Splits": "training.data", "load_dataset": "training.data",
    "DATASETS": "training.data",
    "build_model": "training.decode",
    "CheckpointError": "training.checkpoint",
    "ExportError": "training.export", "FORMATS": "training.export",
    "export_model": "training.export", "load_model": "training.export",
    "NonFiniteLoss": "training.trainer", "score": "training.trainer",
    "TASKS": "training.tasks", "get_task": "training.tasks",
}

__all__ = sorted(_NAMES)

# Tasks and data sets of their own modules register themselves on import (one line each); any
# import of a ``training`` module runs this first, so the registries are whole.
import training.signal  # noqa: E402,F401  (tasks pa, dpd)
import training.signal_data  # noqa: E402,F401  (data sets synthetic_pa, opendpd, iq)


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'training' has no attribute {name!r}")
