"""What a model is trained for and how it is measured: tasks by name.

A task says which loss the trainer minimises, what it measures on a split, which metrics an
evaluation reports (so the config can check its objectives), the input layout and kind of data
it takes, and what the model's output means (for exports and model cards). The trainer,
export and the config read it here and nowhere else. A new task is a :class:`Task` subclass
with a config section, registered with :func:`register_task`.

This module imports torch only inside the methods that train or measure, so the config can
read the registry without it.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal, Mapping

from genome.errors import EvonasError
from genome.registry import Registry
from genome.section import Section


class Task(ABC):
    """One kind of learning problem."""

    name: ClassVar[str]
    title: ClassVar[str]
    Config: ClassVar[type[Section]]     # the config's ``task:`` section (``name: Literal``)
    data_kind: ClassVar[str]            # what its data sets hold: images, ...
    layout: ClassVar[str]               # one example's layout, with the batch first: NCHW
    output_name: ClassVar[str]          # the exported model's output
    split_metrics: ClassVar[tuple[str, ...]]  # what measure() returns for a split
    primary: ClassVar[str]              # the split metric people read first (accuracy)
    metrics: ClassVar[tuple[str, ...]]  # what an evaluation can report (objectives, constraints)
    directions: ClassVar[Mapping[str, str]]  # the natural direction of each measured metric

    @abstractmethod
    def loss(self, output: Any, target: Any, evaluation: Mapping[str, Any]) -> Any:
        """The training loss of a batch (a scalar tensor)."""

    @abstractmethod
    def measure(self, model: Any, x: Any, y: Any, batch_size: int) -> dict[str, float]:
        """Metrics of the eval-mode ``model`` on one split, without the split's prefix
        (``accuracy``, ``loss``): the trainer names them ``val_*`` and ``test_*``."""

    @abstractmethod
    def decoder_space(self, data: Any) -> dict[str, Any]:
        """What the decoder needs to know of the data (``in_channels``, ``num_classes``)."""

    @abstractmethod
    def output_meaning(self, space: Mapping[str, Any]) -> dict[str, Any]:
        """The exported model's output: its shape (batch first) and what it means."""

    def attach(self, model: Any, data: Any) -> Any:
        """The module that is trained and measured for the searched ``model`` on ``data``
        (a DPD task puts a frozen PA model after it); by default ``model`` itself. Only
        ``model``'s own parameters are counted and exported."""
        return model


class ClassificationConfig(Section):
    """Image classification: cross-entropy, accuracy (no settings yet)."""

    name: Literal["classification"] = "classification"


class Classification(Task):
    """Images ``(N, C, H, W)`` to class logits: cross-entropy loss (with
    ``evaluation["label_smoothing"]`` when set; measured losses are plain cross-entropy),
    accuracy and mean loss.

    A model that returns ``(logits, aux_logits)`` in training mode (a cell model with an
    auxiliary head) is trained on ``loss + evaluation["auxiliary_weight"] * aux_loss``."""

    name = "classification"
    title = "image classification"
    Config = ClassificationConfig
    data_kind = "images"
    layout = "NCHW"
    output_name = "logits"
    split_metrics = ("accuracy", "loss")
    primary = "accuracy"
    metrics = ("val_accuracy", "val_loss", "train_loss", "params", "flops", "train_seconds",
               "latency_ms", "latency_iqr_ms")
    directions = {"val_accuracy": "max", "val_loss": "min", "train_loss": "min",
                  "params": "min", "flops": "min", "train_seconds": "min",
                  "latency_ms": "min", "latency_iqr_ms": "min"}

    def loss(self, output: Any, target: Any, evaluation: Mapping[str, Any]) -> Any:
        from torch import nn

        smoothing = float(evaluation.get("label_smoothing") or 0.0)
        extra = {"label_smoothing": smoothing} if smoothing else {}  # off: exactly as before
        if isinstance(output, tuple):  # (logits, aux_logits): a cell model's auxiliary head
            return (nn.functional.cross_entropy(output[0], target, **extra)
                    + float(evaluation.get("auxiliary_weight", 0.4))
                    * nn.functional.cross_entropy(output[1], target, **extra))
        return nn.functional.cross_entropy(output, target, **extra)

    def measure(self, model: Any, x: Any, y: Any, batch_size: int) -> dict[str, float]:
        import torch
        from torch import nn

        model.eval()
        # Summed on the device (float64: the same sums as adding .item()s), read once.
        correct = torch.zeros((), dtype=torch.int64, device=y.device)
        loss = torch.zeros((), dtype=torch.float64, device=y.device)
        with torch.no_grad():
            for i in range(0, len(y), batch_size):
                logits = model(x[i:i + batch_size])
                loss += nn.functional.cross_entropy(logits, y[i:i + batch_size],
                                                    reduction="sum").double()
                correct += (logits.argmax(1) == y[i:i + batch_size]).sum()
        return {"accuracy": int(correct) / len(y), "loss": float(loss) / len(y)}

    def decoder_space(self, data: Any) -> dict[str, Any]:
        return {"in_channels": data.in_channels, "num_classes": data.num_classes}

    def output_meaning(self, space: Mapping[str, Any]) -> dict[str, Any]:
        return {"name": self.output_name, "shape": ["batch", space["num_classes"]],
                "meaning": "class logits (apply softmax for probabilities)"}


class TaskError(EvonasError):
    """An unknown task name."""


TASKS = Registry("task", TaskError)
"""``task.name`` -> its :class:`Task`."""


def register_task(task: Task) -> Task:
    return TASKS.add(task.name, task)


def get_task(name: str) -> Task:
    return TASKS.get_entry(name)


register_task(Classification())
