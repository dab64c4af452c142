"""What the architecture alone decides: parameters, FLOPs, latency. One home for each.

A measure takes the built (untrained or trained) model, one example's shape and the device the
evaluation runs on, and returns metrics. The trainer takes every measure in :data:`MEASURES`
before training, so constraints on these metrics refuse an architecture before it costs any
training (``score(before_training=...)``). ``on_demand`` measures cost time (latency is timed
for a fraction of a second) and run only when an objective or a constraint names one of their
metrics. A new measure is a function registered with :func:`register_measure`.

Latency is timed with ``torch.utils.benchmark.Timer.blocked_autorange``: blocks of calls are
timed until ``min_run_time`` seconds are spent, the block size chosen so that the timer's own
cost (and, on a GPU, the synchronisation it does around each block) is amortised. It reports
the median per call and the interquartile range over blocks, with the thread count and the
hardware it ran on: a latency without those is not a number anyone can compare.
"""
from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from genome.errors import EvonasError
from genome.registry import Registry

DEFAULT_LATENCY_SECONDS = 0.2
"""Seconds ``blocked_autorange`` spends timing (its own default)."""


class MeasureError(EvonasError):
    """An unknown measure."""


@dataclass(frozen=True)
class Measure:
    """A measure of a built model: ``measure(model, example_shape, device, evaluation) ->
    metrics`` (``evaluation``: the evaluation settings), the metric names it returns, and
    whether it runs only when a metric of its is asked for."""

    name: str
    metrics: tuple[str, ...]
    measure: Callable[[nn.Module, tuple[int, ...], str, Mapping[str, Any]], dict[str, Any]]
    on_demand: bool = False


MEASURES = Registry("measure", MeasureError)
"""Measure name -> :class:`Measure`, in the order they are taken."""


def register_measure(name: str, metrics: tuple[str, ...], *, on_demand: bool = False):
    """Decorator: register ``measure(model, example_shape, device, evaluation)``."""
    def add(fn: Callable) -> Callable:
        MEASURES.add(name, Measure(name, metrics, fn, on_demand))
        return fn
    return add


def architecture_metrics(*, on_demand: bool) -> tuple[str, ...]:
    """The metric names of the measures that are (not) taken on demand."""
    return tuple(m for entry in MEASURES.values() if entry.on_demand == on_demand
                 for m in entry.metrics)


def take_measures(model: nn.Module, example_shape: tuple[int, ...], device: str,
                  evaluation: Mapping[str, Any], *, on_demand: bool,
                  wanted: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The metrics of every measure with ``on_demand`` as given; an on-demand one only when
    ``wanted`` names one of its metrics. The model's train/eval mode is kept."""
    out: dict[str, Any] = {}
    for entry in MEASURES.values():
        if entry.on_demand != on_demand or (on_demand and not wanted & set(entry.metrics)):
            continue
        out.update(entry.measure(model, example_shape, device, evaluation))
    return out


# ------------------------------------------------------------------------------- the measures
def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Floating-point operations of one forward pass on one example (torch's flop counter),
    on the device the model is on."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape, device=device))
    model.train(was_training)
    return int(counter.get_total_flops())


@register_measure("params", ("params",))
def _params(model: nn.Module, shape: tuple[int, ...], device: str,
            evaluation: Mapping[str, Any]) -> dict[str, Any]:
    return {"params": count_parameters(model)}


@register_measure("flops", ("flops",))
def _flops(model: nn.Module, shape: tuple[int, ...], device: str,
           evaluation: Mapping[str, Any]) -> dict[str, Any]:
    return {"flops": count_flops(model, shape)}


def hardware_name(device: str) -> str:
    """The GPU's name for a CUDA device, else the CPU's model name."""
    if str(device).startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@torch.no_grad()
def measure_latency(model: nn.Module, input_shape: tuple[int, ...], batch_size: int, *,
                    device: Optional[str] = None,
                    min_run_time: float = DEFAULT_LATENCY_SECONDS,
                    runs: Optional[int] = None) -> dict[str, Any]:
    """Wall time of one forward pass of the eval-mode ``model`` on a batch of ``batch_size``
    random inputs on ``device`` (default: where the model's parameters are), in milliseconds,
    timed with ``torch.utils.benchmark.Timer.blocked_autorange(min_run_time)`` on torch's
    current thread count. With ``runs`` exactly that many blocks of one call are timed instead
    (quick, for tests). Returns ``median_ms`` (per call), ``iqr_ms`` (spread over blocks),
    ``mean_ms``, ``runs`` (blocks), ``calls_per_run``, ``batch_size``, ``threads``, ``device``,
    ``hardware``, ``torch`` and ``method``. The model's mode is restored; the global random
    state is not touched (inputs come from their own generator)."""
    import logging

    quiet = logging.getLogger("torch.utils.cpp_extension")  # "No CUDA runtime is found" on
    level = quiet.level                                     # import: about C++ builds, not us
    quiet.setLevel(logging.ERROR)
    try:
        from torch.utils.benchmark import Measurement, Timer
    finally:
        quiet.setLevel(level)

    device = str(device or next(model.parameters(), torch.empty(0)).device)
    was_training = model.training
    model.eval()
    x = torch.randn(batch_size, *input_shape,
                    generator=torch.Generator().manual_seed(0)).to(device)
    threads = torch.get_num_threads()
    timer = Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=threads)
    try:
        model(x)  # warm up: first-call allocations and lazy initialisation are not latency
        if runs is None:
            measured = timer.blocked_autorange(min_run_time=min_run_time)
            method = f"torch.utils.benchmark blocked_autorange(min_run_time={min_run_time:g})"
        else:
            measured = Measurement.merge([timer.timeit(1) for _ in range(runs)])[0]
            method = f"torch.utils.benchmark timeit(1) x {runs}"
    finally:
        model.train(was_training)
    return {"median_ms": measured.median * 1e3, "iqr_ms": measured.iqr * 1e3,
            "mean_ms": measured.mean * 1e3, "runs": len(measured.times),
            "calls_per_run": measured.number_per_run, "batch_size": batch_size,
            "threads": threads, "device": device, "hardware": hardware_name(device),
            "torch": torch.__version__, "method": method}


@register_measure("latency", ("latency_ms", "latency_iqr_ms"), on_demand=True)
def _latency(model: nn.Module, shape: tuple[int, ...], device: str,
             evaluation: Mapping[str, Any]) -> dict[str, Any]:
    measured = measure_latency(
        model, shape, int(evaluation.get("latency_batch_size", 1)), device=device,
        min_run_time=float(evaluation.get("latency_seconds", DEFAULT_LATENCY_SECONDS)))
    return {"latency_ms": measured["median_ms"], "latency_iqr_ms": measured["iqr_ms"],
            "latency_threads": measured["threads"]}
