"""How a genome becomes a model and a score. Torch lives here; ``genome`` is imported, never
``evolution``."""
from training.data import DataError, Splits, load_dataset
from training.decode import build_model
from training.score import NonFiniteLoss, score

__all__ = ["DataError", "NonFiniteLoss", "Splits", "build_model", "load_dataset", "score"]
