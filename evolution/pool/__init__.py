"""Where evaluations run: backends behind one interface (:class:`Pool`, in ``base``).

``serial`` runs each task in the run's own process; ``local`` keeps one spawned worker process
per slot on this machine (``local``); ``dask`` sends tasks to a Dask cluster (``dask``). A new
backend is a module with a :class:`Pool` subclass and one line in :data:`BACKENDS`.
"""
from __future__ import annotations

from typing import Any, Optional

from evolution.pool.base import Pool, PoolError
from evolution.pool.dask import DaskPool
from evolution.pool.local import LocalPool
from evolution.pool.serial import SerialPool
from evolution.pool.slots import Slot, resolve_slots, visible_gpus
from genome.registry import Registry

BACKENDS = Registry("pool backend", PoolError)
"""``pool.backend`` -> backend class."""
for _cls in (SerialPool, LocalPool, DaskPool):
    BACKENDS.add(_cls.name, _cls)


def make_pool(config: Any, workers: Optional[int] = None) -> Pool:
    """The pool the config's ``pool`` section describes; ``workers`` overrides
    ``pool.workers`` (the number of CPU workers; GPU slots come from ``pool.devices`` and
    ``pool.slots_per_gpu``)."""
    return BACKENDS[config.pool.backend].from_config(config.pool, workers)


__all__ = ["BACKENDS", "DaskPool", "LocalPool", "Pool", "PoolError", "SerialPool", "Slot",
           "make_pool", "resolve_slots", "visible_gpus"]
