"""Where evaluations may run: CPU slots and GPU slots, resolved from ``pool.devices``.

A GPU slot's worker process starts with ``CUDA_VISIBLE_DEVICES`` set to its one GPU, before any
of its code or torch runs, and evaluates on ``cuda:0``; the run's own process never initialises
CUDA (GPUs are counted through NVML).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence, Union

from evolution.pool.base import PoolError


@dataclass(frozen=True)
class Slot:
    """One place an evaluation runs: ``device`` as the config names it (``cpu``, ``cuda:1``)
    and the environment its worker process starts with (``CUDA_VISIBLE_DEVICES``)."""

    device: str
    env: dict[str, str] = field(default_factory=dict)

    @property
    def worker_device(self) -> str:
        """The device inside the worker: a GPU worker sees only its GPU, as ``cuda:0``."""
        return "cpu" if self.device == "cpu" else "cuda:0"


def visible_gpus() -> list[str]:
    """The CUDA GPUs this process may use, as the values a child's ``CUDA_VISIBLE_DEVICES``
    takes (index ``i`` is ``cuda:i`` here). Counted through NVML by
    ``torch.cuda.device_count()``, which does not initialise CUDA or create a context in this
    process; a torch built without CUDA finds none."""
    import torch

    count = torch.cuda.device_count()
    if count <= 0:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return [str(i) for i in range(count)]
    return [v.strip() for v in visible.split(",") if v.strip()][:count]


def resolve_slots(devices: Union[str, Sequence[str]], workers: int,
                  slots_per_gpu: int = 1) -> list[Slot]:
    """The slots of ``pool.devices``: ``auto`` is every visible GPU (``slots_per_gpu`` slots
    each), or ``workers`` CPU slots when there is none; ``cpu`` is ``workers`` CPU slots whose
    workers see no GPU; a list ``[cuda:0, ...]`` is those GPUs, which must exist."""
    if devices == "cpu":
        return [Slot("cpu", {"CUDA_VISIBLE_DEVICES": ""}) for _ in range(workers)]
    gpus = visible_gpus()
    if devices == "auto":
        if not gpus:
            return [Slot("cpu") for _ in range(workers)]
        devices = [f"cuda:{i}" for i in range(len(gpus))]
    wanted = [int(str(d).partition(":")[2]) for d in devices]
    missing = [f"cuda:{i}" for i in wanted if i >= len(gpus)]
    if missing:
        import torch

        if not gpus:
            why = ("this torch is built without CUDA" if not torch.backends.cuda.is_built()
                   else "torch.cuda.device_count() is 0")
            seen = "this machine has no CUDA GPU visible to evonas"
        else:
            why = f"torch.cuda.device_count() is {len(gpus)}"
            seen = f"only cuda:0..cuda:{len(gpus) - 1} are visible"
        if "CUDA_VISIBLE_DEVICES" in os.environ:
            why += f", CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']!r}"
        raise PoolError(f"pool.devices names {', '.join(missing)}, but {seen} ({why}). Use "
                        f"pool.devices: auto (every GPU there is, else CPU workers) or cpu.")
    return [Slot(f"cuda:{i}", {"CUDA_VISIBLE_DEVICES": gpus[i]})
            for i in wanted for _ in range(slots_per_gpu)]


@contextmanager
def child_environ(changes: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``changes`` while a child process is started (a spawned child
    inherits it before any of its own code, or torch, runs)."""
    saved = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
