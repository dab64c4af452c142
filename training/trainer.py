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
from training.checkpoint import CheckpointError, TrainingParts
from training.checkpoint import header as state_header
from training.checkpoint import restore as restore_state
from training.checkpoint import save as save_state
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


BOUND_SETTINGS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay",
                  "schedule")
"""Evaluation settings a training state is bound to (with the seed and the number of training
examples): a state resumes only under the same values."""

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
          dataset: Optional[str] = None, stop_epoch: Optional[int] = None,
          resume: Optional[bytes] = None,
          on_epoch: Optional[Callable[[int, float], None]] = None,
          keep_state: Optional[Callable[[bytes], None]] = None,
          bind: Optional[Mapping[str, Any]] = None) -> float:
    """Train ``model`` in place on ``x``'s device for ``evaluation["epochs"]`` epochs on the
    task's loss; return the last epoch's mean loss.

    Training in pieces (multi-fidelity): ``stop_epoch`` (1 to ``epochs``) stops after that many
    epochs in all; the learning-rate schedule and the drop-path annealing still span
    ``epochs``, so a training stopped and resumed is the training that never stopped.
    ``keep_state`` is called once at the end with the training state (bytes, see
    :mod:`training.checkpoint`); ``resume`` takes such bytes and continues from the epoch they
    reached, over a ``model`` built as the first one was (same genome, space and seed) and with
    the same settings and ``bind`` (JSON values the state is bound to: :func:`score` binds
    the genome's key; else :class:`~training.checkpoint.CheckpointError`). On the CPU the
    continuation is bitwise the uninterrupted training. ``on_epoch(epoch, train_loss)`` is
    called after each epoch trained (``epoch``: epochs reached, from 1) with the model in
    training mode; it may measure the model (in eval mode, without gradients), and must leave
    the weights and torch's global RNG as they were.

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
    parts = TrainingParts(
        model, optimizer, scheduler, scaler, generator, augment_generator, device,
        {**{k: s[k] for k in BOUND_SETTINGS}, "seed": seed, "examples": len(y), **(bind or {})})
    start, epoch_loss = 0, float("nan")
    if resume is not None:
        reached = restore_state(resume, parts)
        start, epoch_loss = reached.epoch, reached.train_loss
    stop = _stop_epoch(stop_epoch, start, s["epochs"])
    drop_path = getattr(model, "drop_path_prob", None)
    for epoch in range(start, stop):
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
        if on_epoch is not None:
            on_epoch(epoch + 1, epoch_loss)
            model.train()
    if drop_path:
        model.drop_path_prob = drop_path
    if keep_state is not None:
        keep_state(save_state(parts, stop, epoch_loss))
    return epoch_loss


def _stop_epoch(stop_epoch: Optional[int], start: int, epochs: int) -> int:
    """The epoch a training from epoch ``start`` stops at; raises
    :class:`~training.checkpoint.CheckpointError` when it cannot get there."""
    if stop_epoch is None:
        stop_epoch = epochs
    if isinstance(stop_epoch, bool) or not isinstance(stop_epoch, int) \
            or not start < stop_epoch <= epochs:
        reached = f"; the training state has reached epoch {start}" if start else ""
        raise CheckpointError(
            f"stop_epoch {stop_epoch!r} cannot be reached: it must be an integer from "
            f"{start + 1} to evaluation.epochs = {epochs}{reached}")
    return stop_epoch


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


def _genome_key(genome: Any) -> dict[str, str]:
    """What binds a training state to its genome: the canonical key, when it has one."""
    key = getattr(genome, "key", None)
    return {"genome": key()} if callable(key) else {}


def score(genome: Any, space: Mapping[str, Any], data: Splits, evaluation: Mapping[str, Any],
          seed: int, *, with_test: bool = False, device: str = "cpu",
          task: Task | str = "classification", train_on_val: bool = False,
          before_training: Callable[[dict[str, Any]], None] | None = None,
          measure: Collection[str] = (), stop_epoch: Optional[int] = None,
          resume: Optional[bytes] = None, checkpoint: bool = False, curve: bool = False,
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

    Multi-fidelity (see :func:`train`): ``stop_epoch`` stops after that many epochs of
    ``evaluation["epochs"]``; ``resume`` (a state from an earlier call's ``checkpoint``) builds
    the model as usual (same seed), loads the state over it and continues training from the
    epoch it reached (``params`` and ``flops`` are measured as usual, ``train_seconds`` and
    ``train_loss`` are this call's). ``checkpoint=True`` puts the state reached in
    ``metrics["checkpoint"]`` (bytes: take it out of the metrics before they are journalled).
    ``curve=True`` measures the validation split after every epoch trained in this call
    (without changing the training) into ``metrics["curve"]``: one
    ``{"epoch", "train_loss", "val_<metric>"...}`` per epoch (the task's split metrics,
    non-finite values as ``None``; no ``val_*`` with ``train_on_val``); the last point's are the
    final ``val_*`` metrics. With any of these four, the metrics also hold ``epochs`` (the
    epoch reached) and ``epochs_trained`` (epochs trained in this call).
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
    batch = int(evaluation.get("eval_batch_size", DEFAULT_EVALUATION["eval_batch_size"]))
    points: list[dict[str, Any]] = []
    last_val: list[dict[str, float]] = []  # the curve's last validation, reused below

    def measure_epoch(epoch: int, train_loss: float) -> None:
        point: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
        if not train_on_val:
            last_val[:] = [task.measure(trained, held.x_val, held.y_val, batch)]
            point.update({f"val_{k}": v if math.isfinite(v) else None
                          for k, v in last_val[0].items()})
        points.append(point)

    states: list[bytes] = []
    metrics["train_loss"] = train(trained, x, y, evaluation, seed, task, dataset=data.name,
                                  stop_epoch=stop_epoch, resume=resume,
                                  on_epoch=measure_epoch if curve else None,
                                  keep_state=states.append if checkpoint else None,
                                  bind=_genome_key(genome))
    splits = [("test", held.x_test, held.y_test)] if with_test or train_on_val else []
    if not train_on_val:
        splits.insert(0, ("val", held.x_val, held.y_val))
    else:  # the validation data was trained on
        metrics.update({f"val_{k}": None for k in task.split_metrics})
    for split, xs, ys in splits:
        measured = (last_val[0] if split == "val" and last_val
                    else task.measure(trained, xs, ys, batch))
        if not math.isfinite(measured["loss"]):  # diverged on the last steps: no fitness
            raise NonFiniteLoss(f"{'validation' if split == 'val' else 'test'} loss is "
                                f"{measured['loss']}: training diverged")
        metrics.update({f"{split}_{k}": v for k, v in measured.items()})
    if stop_epoch is not None or resume is not None or checkpoint or curve:
        first = state_header(resume).epoch if resume is not None else 0
        metrics["epochs"] = stop_epoch or {**DEFAULT_EVALUATION, **evaluation}["epochs"]
        metrics["epochs_trained"] = metrics["epochs"] - first
    if curve:
        metrics["curve"] = points
    if checkpoint:
        metrics["checkpoint"] = states[0]
    metrics["train_seconds"] = time.perf_counter() - start
    return metrics, model
