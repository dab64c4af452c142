"""How a genome becomes a model and a score. Torch lives here; ``genome`` is imported, never
``evolution``."""
from training.data import DataError, Splits, load_dataset
from training.decode import build_model
from training.export import FORMATS, ExportError, export_model, load_model
from training.score import NonFiniteLoss, score

__all__ = ["DataError", "ExportError", "FORMATS", "NonFiniteLoss", "Splits", "build_model",
           "export_model", "load_dataset", "load_model", "score"]
