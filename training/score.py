"""Train a decoded genome under a budget and measure it.

Everything random (weight init, batch order) is seeded from the evaluation seed, so the same
(genome, settings, seed) gives the same numbers on the same machine and thread count.
"""
from __future__ import annotations

import math
import random
import time
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from genome.errors import EvonasError
from training.data import Splits
from training.decode import build_model

DEFAULT_TRAINING: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 64,
    "optimizer": "sgd",
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "schedule": "cosine",
    "eval_batch_size": 512,
    "auxiliary_weight": 0.4,
}


class NonFiniteLoss(EvonasError):
    """The training loss became NaN or infinite; the evaluation is recorded as failed."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass on one example (torch's flop counter)."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    return int(counter.get_total_flops())


def _optimizer(model: nn.Module, s: Mapping[str, Any]) -> torch.optim.Optimizer:
    name = s["optimizer"]
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=s["lr"], momentum=s["momentum"],
                               weight_decay=s["weight_decay"], nesterov=s["momentum"] > 0)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=s["lr"], weight_decay=s["weight_decay"])
    raise EvonasError(f"unknown optimizer {name!r}; choose sgd, adam or adamw")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
             batch_size: int = 512) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` (in eval mode) on ``(x, y)``."""
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(y), batch_size):
        logits = model(x[i:i + batch_size])
        loss += nn.functional.cross_entropy(logits, y[i:i + batch_size], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / len(y), loss / len(y)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, settings: Mapping[str, Any],
          seed: int) -> float:
    """Train ``model`` in place for ``settings["epochs"]`` epochs; return the last epoch's mean
    loss. A model that returns ``(logits, aux_logits)`` in training mode (a cell model with an
    auxiliary head) is trained on ``loss + settings["auxiliary_weight"] (0.4) * aux_loss``, and
    a model with a ``drop_path_prob`` has it annealed linearly from 0 over the epochs.
    Batch order comes from a generator seeded with ``seed``. Raises
    :class:`NonFiniteLoss` as soon as the loss is NaN or infinite."""
    s = {**DEFAULT_TRAINING, **settings}
    optimizer = _optimizer(model, s)
    steps_per_epoch = max(1, math.ceil(len(y) / s["batch_size"]))
    total = s["epochs"] * steps_per_epoch
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
                 if s["schedule"] == "cosine" else None)
    generator = torch.Generator().manual_seed(seed)
    aux_weight = float(s["auxiliary_weight"])
    drop_path = getattr(model, "drop_path_prob", None)
    epoch_loss = float("nan")
    for epoch in range(s["epochs"]):
        model.train()
        if drop_path:  # anneal linearly from 0 to the model's rate, as in DARTS / NASNet
            model.drop_path_prob = drop_path * epoch / s["epochs"]
        order = torch.randperm(len(y), generator=generator)
        running, seen = 0.0, 0
        for i in range(0, len(y), s["batch_size"]):
            idx = order[i:i + s["batch_size"]].to(y.device)
            if len(idx) == 1 < len(y):  # batch norm needs two examples: skip a last single one
                continue
            out = model(x[idx])
            if isinstance(out, tuple):  # (logits, aux_logits): a cell model's auxiliary head
                loss = (nn.functional.cross_entropy(out[0], y[idx]) + aux_weight
                        * nn.functional.cross_entropy(out[1], y[idx]))
            else:
                loss = nn.functional.cross_entropy(out, y[idx])
            if not torch.isfinite(loss):
                raise NonFiniteLoss(f"training loss became {loss.item()} in epoch {epoch + 1}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            running += loss.item() * len(idx)
            seen += len(idx)
        epoch_loss = running / seen
    if drop_path:
        model.drop_path_prob = drop_path
    return epoch_loss


def score(genome: Any, space: Mapping[str, Any], data: Splits, settings: Mapping[str, Any],
          seed: int, *, with_test: bool = False,
          device: str = "cpu") -> tuple[dict[str, Any], nn.Module]:
    """Build ``genome``, train it on ``data``'s training split on ``device`` and measure it.

    Returns ``(metrics, model)`` (the model stays on ``device``). Metrics: ``val_accuracy``
    (the fitness), ``val_loss``, ``train_loss``, ``params``, ``flops`` (per example, counted on
    the CPU), ``train_seconds`` (wall time), and with ``with_test`` also ``test_accuracy`` and
    ``test_loss``. Batch order always comes from a CPU generator, so it does not depend on the
    device.
    """
    start = time.perf_counter()
    seed_everything(seed)
    model = build_model(genome, {**space, "in_channels": data.in_channels,
                                 "num_classes": data.num_classes})
    metrics: dict[str, Any] = {
        "params": count_parameters(model),
        "flops": count_flops(model, tuple(data.x_train.shape[1:])),
    }
    model.to(device)
    on = lambda t: t.to(device)  # noqa: E731  (a no-op on the CPU)
    metrics["train_loss"] = train(model, on(data.x_train), on(data.y_train), settings, seed)
    batch = int(settings.get("eval_batch_size", DEFAULT_TRAINING["eval_batch_size"]))
    metrics["val_accuracy"], metrics["val_loss"] = evaluate(
        model, on(data.x_val), on(data.y_val), batch)
    if not math.isfinite(metrics["val_loss"]):  # diverged on the last steps: no fitness
        raise NonFiniteLoss(f"validation loss is {metrics['val_loss']}: training diverged")
    if with_test:
        metrics["test_accuracy"], metrics["test_loss"] = evaluate(
            model, on(data.x_test), on(data.y_test), batch)
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics, model
