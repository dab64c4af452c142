"""The run directory: everything a run knows lives here, as plain data.

``runs/<name>/``
    ``config.yaml``   the validated config, frozen at the start (every default spelled out)
    ``journal.jsonl`` one JSON object per line, appended and flushed per event: ``ask`` (index,
                      seed, genome), ``result`` (status, fitness, metrics, worker, times, cache
                      hits), ``generation`` (population statistics)
    ``best/``         ``genome.json`` (genome, settings, metrics) and ``model.pt`` (state_dict)
    ``summary.json``  the outcome of a finished run

Files other than the journal are replaced atomically (temp file, fsync, ``os.replace``).
Nothing is pickled.
"""
from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from genome.errors import EvonasError

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
CONFIG = "config.yaml"


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write ``path`` through ``write(file)`` into a temp file beside it, fsync, then
    ``os.replace``: readers see the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, lambda f: json.dump(_finite(data), f, indent=2, allow_nan=False))


class RunDirectory:
    """An open run directory with its journal ready for appending."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._journal = open(self.path / JOURNAL, "a", encoding="utf-8")

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str, config: dict[str, Any], *,
               exact: bool) -> "RunDirectory":
        """Make ``runs_dir/name`` and freeze ``config`` into it.

        When the folder exists and is not empty: with ``exact`` (the user named the run) this is
        an error; otherwise the first free ``name-2``, ``name-3``, ... is taken.
        """
        runs_dir = Path(runs_dir)
        path, n = runs_dir / name, 1
        while path.exists() and any(path.iterdir()):
            if exact:
                raise EvonasError(f"run directory {path} already exists and is not empty; "
                                  f"choose another --name or remove it")
            n += 1
            path = runs_dir / f"{name}-{n}"
        path.mkdir(parents=True, exist_ok=True)
        frozen = {**config, "name": path.name}
        atomic_write(path / CONFIG, lambda f: yaml.safe_dump(frozen, f, sort_keys=False))
        return cls(path)

    def append(self, event: dict[str, Any]) -> None:
        """Append one event to the journal and push it to disk before returning."""
        self._journal.write(json.dumps(_finite(event), allow_nan=False) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())

    def write_json(self, relative: str, data: Any) -> Path:
        path = self.path / relative
        write_json(path, data)
        return path

    def close(self) -> None:
        self._journal.close()

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _finite(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by ``None`` (strict JSON has neither)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_journal(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The events of a run directory's journal, in order."""
    with open(Path(path) / JOURNAL, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
