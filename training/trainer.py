"""Train a decoded genome under a budget and measure it, for the task it is trained for.

Everything random (weight init, batch order) is seeded from the evaluation seed, so the same
(genome, evaluation settings, seed) gives the same numbers on the same machine and thread
count. The loss and the metrics come from the task (:mod:`training.tasks`).
"""
from __future__ import annotations

import math
import random
import time
from typing import Any, Callable, Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from genome.errors import EvonasError
from training.data import Splits
from training.decode import build_model
from training.tasks import Task, get_task

DEFAULT_EVALUATION: dict[str, Any] = {
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


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, evaluation: Mapping[str, Any],
          seed: int, task: Task | str = "classification") -> float:
    """Train ``model`` in place for ``evaluation["epochs"]`` epochs on the task's loss; return
    the last epoch's mean loss. A model with a ``drop_path_prob`` has it annealed linearly from
    0 over the epochs. Batch order comes from a generator seeded with ``seed``. Raises
    :class:`NonFiniteLoss` as soon as the loss is NaN or infinite."""
    task = get_task(task) if isinstance(task, str) else task
    s = {**DEFAULT_EVALUATION, **evaluation}
    optimizer = _optimizer(model, s)
    steps_per_epoch = max(1, math.ceil(len(y) / s["batch_size"]))
    total = s["epochs"] * steps_per_epoch
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, total)
                 if s["schedule"] == "cosine" else None)
    generator = torch.Generator().manual_seed(seed)
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
            loss = task.loss(model(x[idx]), y[idx], s)
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


def score(genome: Any, space: Mapping[str, Any], data: Splits, evaluation: Mapping[str, Any],
          seed: int, *, with_test: bool = False, device: str = "cpu",
          task: Task | str = "classification", train_on_val: bool = False,
          before_training: Callable[[dict[str, Any]], None] | None = None,
          ) -> tuple[dict[str, Any], nn.Module]:
    """Build ``genome``, train it on ``data``'s training split on ``device`` and measure it.

    Returns ``(metrics, model)`` (the model stays on ``device``). Metrics: ``val_accuracy``,
    ``val_loss`` (the task's metrics on the validation split), ``train_loss``, ``params``,
    ``flops`` (per example, counted on the CPU), ``train_seconds`` (wall time), and with
    ``with_test`` also ``test_accuracy`` and ``test_loss``. With ``train_on_val`` the model
    trains on training + validation data (a final retraining): the validation metrics are
    ``None`` and the test metrics are measured. Batch order always comes from a CPU generator,
    so it does not depend on the device. ``before_training`` is called with what is known of
    the built model before it trains (``params``, ``flops``); it may raise to skip training
    (a broken constraint).
    """
    task = get_task(task) if isinstance(task, str) else task
    start = time.perf_counter()
    seed_everything(seed)
    model = build_model(genome, {**space, **task.decoder_space(data)})
    metrics: dict[str, Any] = {
        "params": count_parameters(model),
        "flops": count_flops(model, tuple(data.x_train.shape[1:])),
    }
    if before_training is not None:
        before_training(dict(metrics))
    model.to(device)
    on = lambda t: t.to(device)  # noqa: E731  (a no-op on the CPU)
    x, y = data.x_train, data.y_train
    if train_on_val:
        x, y = torch.cat([x, data.x_val]), torch.cat([y, data.y_val])
    trained = task.attach(model, data).to(device)  # the model, or the model in a larger one
    metrics["train_loss"] = train(trained, on(x), on(y), evaluation, seed, task)
    batch = int(evaluation.get("eval_batch_size", DEFAULT_EVALUATION["eval_batch_size"]))
    splits = [("test", data.x_test, data.y_test)] if with_test or train_on_val else []
    if not train_on_val:
        splits.insert(0, ("val", data.x_val, data.y_val))
    else:  # the validation data was trained on
        metrics.update({f"val_{k}": None for k in task.split_metrics})
    for split, xs, ys in splits:
        measured = task.measure(trained, on(xs), on(ys), batch)
        if not math.isfinite(measured["loss"]):  # diverged on the last steps: no fitness
            raise NonFiniteLoss(f"{'validation' if split == 'val' else 'test'} loss is "
                                f"{measured['loss']}: training diverged")
        metrics.update({f"{split}_{k}": v for k, v in measured.items()})
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics, model
