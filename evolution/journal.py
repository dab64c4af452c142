"""The run directory: everything a run knows lives here, as plain data.

``runs/<name>/``
    ``config.yaml``   the validated config, frozen at the start (every default spelled out)
    ``journal.jsonl`` one JSON object per line, appended and flushed per event: ``session``
                      (a process started or resumed the run), ``ask`` (index, seed, genome),
                      ``result`` (status, objective values, metrics, worker, times, cache hits),
                      ``generation`` / ``window`` (population statistics), ``extend``
    ``state.json``    snapshot of the search (strategy with its RNG, cache, counts) and how
                      much of the journal it covers; resume loads it and replays the rest
    ``lock``          pid of the process driving the run, while it runs
    ``best/``         ``genome.json`` (genome, settings, metrics) and ``model.pt`` (state_dict)
    ``summary.json``  the outcome of a finished run

Files other than the journal are replaced atomically (temp file, fsync, ``os.replace``).
Nothing is pickled.
"""
from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from genome.errors import EvonasError
from genome.jsonable import dumps

log = logging.getLogger(__name__)

JOURNAL = "journal.jsonl"
CONFIG = "config.yaml"
SNAPSHOT = "state.json"
LOCK = "lock"
FORMAT = 2
"""Version of the run directory layout (journal events and snapshot); bumped on change.
Format 1 journals (a single ``fitness`` per result) are read through :func:`upgrade`; their
snapshots are not, so resuming one replays the whole journal."""


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


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    """Replace ``path`` atomically with ``data`` as strict JSON (indented for people unless
    ``indent`` is ``None``)."""
    text = dumps(data, indent=indent)
    atomic_write(path, lambda f: f.write(text))


class RunDirectoryError(EvonasError):
    """A run directory is missing, locked by a live process, damaged, or of an unknown format."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def lock_owner(path: Path) -> int | None:
    """The pid holding ``path``'s lock if that process is alive, else ``None``."""
    try:
        pid = int((Path(path) / LOCK).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if _pid_alive(pid) else None


class RunDirectory:
    """An open run directory: holds its lock, appends to its journal, writes its snapshots.

    Only one process drives a run directory at a time: opening takes ``lock`` (created
    exclusively, holding the owner's pid); a lock whose process is gone is stale and taken over
    with a warning.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock()
        self._journal = open(self.path / JOURNAL, "a", encoding="utf-8")
        self.lines = 0  # events in the journal (``open`` sets it to the existing count)

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
                raise RunDirectoryError(
                    f"run directory {path} already exists and is not empty; continue it with "
                    f"`evonas resume {path}`, or choose another --name")
            n += 1
            path = runs_dir / f"{name}-{n}"
        path.mkdir(parents=True, exist_ok=True)
        opened = cls(path)
        opened.write_config({**config, "name": path.name})
        return opened

    @classmethod
    def open(cls, path: str | os.PathLike) -> tuple["RunDirectory", list[dict[str, Any]]]:
        """Open an existing run directory to continue it; return it with its journal's events.

        A torn last line (the process died while writing it) is cut off with a warning.
        """
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise RunDirectoryError(f"{path} is not a run directory (no {CONFIG}); give the "
                                    f"folder a run created, e.g. runs/<name>")
        opened = cls(path)
        try:
            events, good = read_events(path)
            size = (path / JOURNAL).stat().st_size if (path / JOURNAL).exists() else 0
            if good < size:
                log.warning("%s: the last journal line was cut off by a crash; dropping it",
                            path / JOURNAL)
                opened._journal.close()
                with open(path / JOURNAL, "r+b") as f:
                    f.truncate(good)
                opened._journal = open(path / JOURNAL, "a", encoding="utf-8")
        except BaseException:
            opened.close()
            raise
        opened.lines = len(events)
        return opened, [upgrade(e) for e in events]

    def _lock(self) -> None:
        lock = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = lock_owner(self.path)
                if owner is not None and owner != os.getpid():
                    raise RunDirectoryError(
                        f"{self.path} is in use by process {owner} (see {lock}); wait for it "
                        f"to finish or stop it first") from None
                log.warning("%s: taking over a stale lock", self.path)
                lock.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(f"{os.getpid()} {socket.gethostname()}\n")
            return
        raise RunDirectoryError(f"could not take the lock {lock}")

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.path / CONFIG, lambda f: yaml.safe_dump(config, f, sort_keys=False))

    def append(self, event: dict[str, Any]) -> None:
        """Append one event to the journal and push it to disk before returning."""
        self._journal.write(dumps(event) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self.lines += 1

    def journal_size(self) -> int:
        return self._journal.tell()

    def write_json(self, relative: str, data: Any) -> Path:
        path = self.path / relative
        write_json(path, data)
        return path

    def write_snapshot(self, state: dict[str, Any]) -> None:
        """Replace ``state.json`` atomically with ``state`` (stamped with the format); compact,
        since it grows with the run and only evonas reads it."""
        write_json(self.path / SNAPSHOT, {"format": FORMAT, **state}, indent=None)

    def close(self) -> None:
        if not self._journal.closed:
            self._journal.close()
            (self.path / LOCK).unlink(missing_ok=True)

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_snapshot(path: str | os.PathLike) -> dict[str, Any] | None:
    """The run's snapshot, or ``None`` (with a warning) when it is missing or unreadable, in
    which case the whole journal is replayed. A snapshot of an unknown format is an error."""
    file = Path(path) / SNAPSHOT
    if not file.exists():
        return None
    try:
        state = json.loads(file.read_text())
        version = state["format"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s is unreadable (%s); replaying the whole journal instead", file, exc)
        return None
    if version == 1:
        log.warning("%s was written by an older evonas (format 1); replaying the whole journal "
                    "instead", file)
        return None
    if version != FORMAT:
        raise RunDirectoryError(f"{file} has format {version!r}; this evonas reads formats 1 "
                                f"and {FORMAT}. Use the evonas version that wrote the run.")
    return state


def read_events(path: str | os.PathLike) -> tuple[list[dict[str, Any]], int]:
    """All complete events of a journal and the byte length they span. Only the last line may
    be torn (a crash mid-write); damage anywhere else is an error."""
    file = Path(path) / JOURNAL
    if not file.exists():
        return [], 0
    data = file.read_bytes()
    events, good, start = [], 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        last = end < 0 or end == len(data) - 1
        line = data[start:] if end < 0 else data[start:end]
        try:
            event = json.loads(line) if line.strip() else None
        except ValueError:
            if last:
                break
            raise RunDirectoryError(f"{file} is damaged at byte {start} (not the last line); "
                                    f"it cannot be replayed") from None
        if end < 0:  # a complete JSON object without its newline is still torn
            break
        if event is not None:
            events.append(event)
        good = start = end + 1
    return events, good


def upgrade(event: dict[str, Any]) -> dict[str, Any]:
    """An event in the current format: a format-1 ``result`` with one ``fitness`` gets
    ``values`` (``[fitness]`` when ok, else ``None``)."""
    if event.get("event") == "result" and "values" not in event:
        event = dict(event)
        fitness = event.pop("fitness", None)
        event["values"] = [fitness] if event.get("status") == "ok" and fitness is not None \
            else None
    return event


def read_journal(path: str | os.PathLike) -> Iterator[dict[str, Any]]:
    """The events of a run directory's journal, in order (a torn last line is left out)."""
    if not (Path(path) / JOURNAL).exists() and not (Path(path) / CONFIG).exists():
        raise RunDirectoryError(f"{path} is not a run directory")
    yield from (upgrade(e) for e in read_events(path)[0])
