"""Shared fixtures: tiny configs that run in seconds on 2 cores."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

TINY = {
    "seed": 3,
    "search": {"encoding": "binary", "stages": [2, 3], "channels": [4, 4]},
    "strategy": {"name": "genetic", "population": 4, "generations": 2,
                 "p_crossover": 0.5, "q_crossover": 0.5, "p_mutation": 0.8, "q_mutation": 0.2},
    "data": {"dataset": "synthetic",
             "synthetic": {"samples": 64, "num_classes": 3, "image_size": 8, "channels": 1}},
    "evaluation": {"epochs": 1, "batch_size": 16, "lr": 0.05},
    "pool": {"backend": "serial", "workers": 1, "threads_per_worker": 1},
}


def merge(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(base[key], value) if isinstance(value, dict) and key in base else value
    return out


@pytest.fixture
def tiny(tmp_path: Path) -> dict:
    """A tiny config dict whose runs go under ``tmp_path/runs``."""
    return merge(TINY, {"runs_dir": str(tmp_path / "runs"), "name": "tiny"})


@pytest.fixture
def write_config(tmp_path: Path):
    def write(data: dict, name: str = "tiny.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path
    return write


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch):
    """``user_module(name, source)`` writes a module into ``tmp_path`` and makes it importable
    here and in spawned workers (cwd and sys.path), as a user's evaluator module would be."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, source: str) -> str:
        (tmp_path / f"{name}.py").write_text(source)
        return name
    return write


@pytest.fixture
def one_thread():
    """Single-threaded torch, as the runs' workers: reproducible numbers, no oversubscription
    on 2 cores. Restored afterwards."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
