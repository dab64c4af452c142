"""Train a decoded genome under a budget and measure it, for the task it is trained for.

Everything random (weight init, batch order, augmentation) is seeded from the evaluation seed,
so the same (genome, evaluation settings, seed) gives the same numbers on the same machine and
thread count. The loss and the metrics come from the task (:mod:`training.tasks`).
"""
from __future__ import annotations

import contextlib
import functools
import math
import random
import time
from typing import Any, Callable, Collection, Mapping, Optional

import numpy as np
import torch
from torch import nn

from genome.errors import EvonasError
from training.augment import Augment, augmentation_generator
from training.data import Splits, on_device, recipe_defaults
from training.decode import build_model
from training.measures import take_measures
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


GPU_CHECK_EVERY = 50
"""Training steps between finiteness checks of the loss on a GPU (each waits for the GPU)."""


class NonFiniteLoss(EvonasError):
    """The training loss became NaN or infinite; the evaluation is recorded as failed."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


def _amp_auto(device: torch.device) -> Optional[torch.dtype]:
    if device.type != "cuda":
        return None  # the CPU path stays exact fp32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


AMP: dict[str, Callable[[torch.device], Optional[torch.dtype]]] = {
    "auto": _amp_auto,                      # bf16 on a GPU that has it, else fp16; CPU: off
    "off": lambda device: None,
    "bf16": lambda device: torch.bfloat16,  # also on the CPU (autocast to bfloat16)
    "fp16": lambda device: torch.float16,   # with a gradient scaler
}
"""``evaluation.amp`` -> the autocast dtype on a device (``None``: full precision)."""


def amp_dtype(setting: str, device: torch.device | str) -> Optional[torch.dtype]:
    """The autocast dtype of ``evaluation.amp`` = ``setting`` on ``device``."""
    try:
        choose = AMP[setting]
    except KeyError:
        raise EvonasError(f"unknown evaluation.amp {setting!r}; choose {', '.join(AMP)}") \
            from None
    return choose(torch.device(device))


def _has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def check_every(evaluation: Mapping[str, Any], device: torch.device) -> int:
    """Steps between finiteness checks of the training loss: ``evaluation.check_every``, or
    by default every step on the CPU (a check costs nothing there) and every
    :data:`GPU_CHECK_EVERY` steps on a GPU (each check waits for the GPU)."""
    every = evaluation.get("check_every")
    return int(every) if every else (1 if device.type == "cpu" else GPU_CHECK_EVERY)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, evaluation: Mapping[str, Any],
          seed: int, task: Task | str = "classification", *,
          dataset: Optional[str] = None) -> float:
    """Train ``model`` in place on ``x``'s device for ``evaluation["epochs"]`` epochs on the
    task's loss; return the last epoch's mean loss.

    A model with a ``drop_path_prob`` has it annealed linearly from 0 over the epochs. Batch
    order comes from a CPU generator seeded with ``seed``. Training batches are augmented as
    the evaluation says (``random_crop``, ``flip``, ``cutout``; unset keys take the defaults of
    data set ``dataset``, see :mod:`training.augment`) from a generator on ``x``'s device
    seeded from ``seed``.

    The step makes no host sync: the loss is summed on the device and checked for NaN or
    infinity every :func:`check_every` steps and at the end of each epoch; a non-finite loss
    raises :class:`NonFiniteLoss` naming the epoch and the steps it lies between. Options
    (``evaluation``): ``amp`` (:data:`AMP`: autocast, with a gradient scaler for fp16),
    ``channels_last`` (``None``: on a GPU for convolutional models; the model is converted in
    place), ``compile`` (``torch.compile`` the training forward). On the CPU with the defaults
    the numbers are those of a plain fp32 loop with a check per step.
    """
    task = get_task(task) if isinstance(task, str) else task
    s = {**DEFAULT_EVALUATION, **evaluation}
    device = x.device
    augment = Augment.from_settings(s, recipe_defaults(dataset) if dataset else None)
    augment_generator = augmentation_generator(seed, device) if augment else None
    dtype = amp_dtype(s.get("amp") or "auto", device)
    autocast = (functools.partial(torch.autocast, device.type, dtype=dtype) if dtype
                else contextlib.nullcontext)
    scaler = torch.amp.GradScaler(device.type) if dtype == torch.float16 else None
    channels_last = s.get("channels_last")
    if channels_last is None:
        channels_last = device.type == "cuda" and _has_conv(model)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if s.get("compile") else model
    every = check_every(s, device)
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
        order = torch.randperm(len(y), generator=generator).to(device)
        # Summed in float64 on the device: the same arithmetic as adding loss.item() * n
        running = torch.zeros((), dtype=torch.float64, device=device)
        seen, step, checked = 0, 0, 0
        for i in range(0, len(y), s["batch_size"]):
            idx = order[i:i + s["batch_size"]]
            if len(idx) == 1 < len(y):  # batch norm needs two examples: skip a last single one
                continue
            batch = x[idx]
            if augment:
                batch = augment(batch, augment_generator)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            with autocast():
                loss = task.loss(forward(batch), y[idx], s)
            running += loss.detach().double() * len(idx)
            seen += len(idx)
            step += 1
            if step % every == 0:  # before the step: a NaN never reaches the weights here
                _check_finite(running, epoch, checked, step, every)
                checked = step
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            if scheduler is not None:
                scheduler.step()
        _check_finite(running, epoch, checked, step, every)
        epoch_loss = float(running / seen)
    if drop_path:
        model.drop_path_prob = drop_path
    return epoch_loss


def _check_finite(running: torch.Tensor, epoch: int, checked: int, step: int,
                  every: int) -> None:
    """Raise :class:`NonFiniteLoss` when the epoch's summed loss is NaN or infinite (one host
    sync)."""
    if not bool(torch.isfinite(running)):
        where = (f"at step {step}" if step - checked <= 1 else
                 f"between steps {checked + 1} and {step}")
        raise NonFiniteLoss(
            f"training loss became {float(running)} in epoch {epoch + 1} ({where} of the "
            f"epoch; checked every {every} step{'s' if every != 1 else ''}): training "
            f"diverged; lower evaluation.lr, or check the data")


def score(genome: Any, space: Mapping[str, Any], data: Splits, evaluation: Mapping[str, Any],
          seed: int, *, with_test: bool = False, device: str = "cpu",
          task: Task | str = "classification", train_on_val: bool = False,
          before_training: Callable[[dict[str, Any]], None] | None = None,
          measure: Collection[str] = (),
          ) -> tuple[dict[str, Any], nn.Module]:
    """Build ``genome``, train it on ``data``'s training split on ``device`` and measure it.

    Returns ``(metrics, model)`` (the model stays on ``device``). Metrics: ``val_accuracy``,
    ``val_loss`` (the task's metrics on the validation split), ``train_loss``, ``params``,
    ``flops`` (per example, counted on the CPU), ``train_seconds`` (wall time), and with
    ``with_test`` also ``test_accuracy`` and ``test_loss``. With ``train_on_val`` the model
    trains on training + validation data (a final retraining): the validation metrics are
    ``None`` and the test metrics are measured. Batch order always comes from a CPU generator,
    so it does not depend on the device. Metrics that cost time to measure (``latency_ms``,
    ``latency_iqr_ms``: :mod:`training.measures`, on ``device``) are measured only when
    ``measure`` names them (the run's objectives and constraints). ``before_training`` is
    called with what is known of the built model before it trains (``params``, ``flops``, and
    latency when measured); it may raise to skip training (a broken constraint).
    """
    task = get_task(task) if isinstance(task, str) else task
    start = time.perf_counter()
    seed_everything(seed)
    model = build_model(genome, {**space, **task.decoder_space(data)})
    shape = tuple(data.x_train.shape[1:])
    metrics = take_measures(model, shape, "cpu", evaluation, on_demand=False)
    if before_training is not None:  # a params or FLOPs bound: refused before timing it
        before_training(dict(metrics))
    model.to(device)
    timed = take_measures(model, shape, device, evaluation, on_demand=True,
                          wanted=frozenset(measure))
    if timed:
        metrics.update(timed)
        if before_training is not None:
            before_training(dict(metrics))
    held = on_device(data, device)  # moved once per worker, reused by later evaluations
    x, y = held.x_train, held.y_train
    if train_on_val:
        x, y = torch.cat([x, held.x_val]), torch.cat([y, held.y_val])
    trained = task.attach(model, data).to(device)  # the model, or the model in a larger one
    metrics["train_loss"] = train(trained, x, y, evaluation, seed, task, dataset=data.name)
    batch = int(evaluation.get("eval_batch_size", DEFAULT_EVALUATION["eval_batch_size"]))
    splits = [("test", held.x_test, held.y_test)] if with_test or train_on_val else []
    if not train_on_val:
        splits.insert(0, ("val", held.x_val, held.y_val))
    else:  # the validation data was trained on
        metrics.update({f"val_{k}": None for k in task.split_metrics})
    for split, xs, ys in splits:
        measured = task.measure(trained, xs, ys, batch)
        if not math.isfinite(measured["loss"]):  # diverged on the last steps: no fitness
            raise NonFiniteLoss(f"{'validation' if split == 'val' else 'test'} loss is "
                                f"{measured['loss']}: training diverged")
        metrics.update({f"{split}_{k}": v for k, v in measured.items()})
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics, model
