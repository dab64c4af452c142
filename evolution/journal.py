"""The run directory's write side: everything a run knows lives here, as plain data.

``runs/<name>/``
    ``config.yaml``   the validated config, frozen at the start (every default spelled out)
    ``run.json``      the run's identity: a random run id, the frozen config (the authoritative
                      copy ``config.yaml`` must match) and its hash
    ``journal.jsonl`` one JSON object per line, appended and flushed per event: ``session``
                      (a process started or resumed the run), ``ask`` (index, seed, genome),
                      ``result`` (status, objective values, metrics, worker, times, cache hits),
                      ``generation`` / ``window`` (population statistics), ``extend``
    ``state.json``    snapshot of the search (strategy with its RNG, cache, counts), bound to
                      the run id, the config hash and the exact journal prefix it covers (lines,
                      bytes, SHA-256); resume loads it and replays the rest
    ``lock``          held with an OS lock (``flock``) while a process drives the run; it says
                      which (pid and host), for messages
    ``best/``         the best genome, retrained, as an export folder
    ``summary.json``  the outcome of a finished run

Files other than the journal are replaced atomically (temp file, fsync, ``os.replace``) with the
permissions a plain ``open`` would give. Nothing is pickled. The read side is
:class:`evolution.record.RunRecord`.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

from genome.errors import EvonasError
from genome.jsonable import dumps

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
JOURNAL = "journal.jsonl"
CONFIG = "config.yaml"
IDENTITY = "run.json"
SNAPSHOT = "state.json"
LOCK = "lock"
FORMAT = 2
"""Version of the run directory layout (journal events and snapshot); bumped on change.
Format 1 journals (a single ``fitness`` per result) are read through :func:`upgrade`; their
snapshots are not, so resuming one replays the whole journal."""


class RunDirectoryError(EvonasError):
    """A run directory is missing, locked by a live process, damaged, or of an unknown format."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write ``path`` through ``write(file)`` into a temp file beside it, fsync, then
    ``os.replace``: readers see the old file or the new one, never a torn one. The file gets
    the permissions of a plain ``open`` (0666 less the umask), not the temp file's 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
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


def config_hash(config: dict[str, Any]) -> str:
    """SHA-256 of a config dict, independent of key order."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


# ----------------------------------------------------------------------------------- the lock
def _holder(text: str) -> tuple[Optional[int], str]:
    """``(pid, host)`` from a lock file's text (``None, ""`` when there is none)."""
    parts = text.split()
    try:
        return int(parts[0]), (parts[1] if len(parts) > 1 else "")
    except (ValueError, IndexError):
        return None, ""


def lock_owner(path: str | os.PathLike) -> Optional[int]:
    """The pid of the process holding the run directory's lock, or ``None`` when no process
    holds it (probed with the OS lock itself, so a dead holder never counts)."""
    file = Path(path) / LOCK
    try:
        fd = os.open(file, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, _ = _holder(os.pread(fd, 256, 0).decode(errors="replace"))
            return pid if pid is not None else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """Exclusive ownership of a run directory for a process's lifetime: ``flock`` on ``lock``,
    which the OS releases when the process dies (no stale locks to take over, no window between
    creating the file and writing it). The file is never truncated by a process that did not
    get the lock; the holder writes its pid and host into it, for messages only."""

    def __init__(self, directory: Path):
        self.file = directory / LOCK
        self.fd: Optional[int] = None

    def acquire(self) -> None:
        fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, host = _holder(os.pread(fd, 256, 0).decode(errors="replace"))
            os.close(fd)
            who = f"process {pid}" + (f" on {host}" if host else "") if pid else "another process"
            raise RunDirectoryError(f"{self.file.parent} is in use by {who}; wait for it to "
                                    f"finish or stop it first") from None
        except BaseException:
            os.close(fd)
            raise
        pid, host = _holder(os.pread(fd, 256, 0).decode(errors="replace"))
        here = socket.gethostname()
        if pid is not None and host and host != here:
            log.warning("%s: took over the lock that process %s on host %s wrote; the OS lock "
                        "was free, but locks are only as reliable as the file system across "
                        "hosts: if that process still runs on %s, stop it now",
                        self.file.parent, pid, host, host)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {here}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.ftruncate(self.fd, 0)
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


# ------------------------------------------------------------------------------ the directory
class RunDirectory:
    """An open run directory: holds its lock, appends to its journal, writes its snapshots.

    Only one process drives a run directory at a time (:class:`RunLock`). The journal's SHA-256
    is kept as it grows, so a snapshot records exactly which prefix it covers.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = RunLock(self.path)
        self._lock.acquire()
        try:
            self._journal = open(self.path / JOURNAL, "a", encoding="utf-8")
        except BaseException:
            self._lock.release()
            raise
        self.lines = 0  # events in the journal (``open`` sets it to the existing count)
        self._digest = hashlib.sha256()
        self.identity: dict[str, Any] = {}

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str, config: dict[str, Any], *,
               exact: bool) -> "RunDirectory":
        """Make ``runs_dir/name``, freeze ``config`` into it and give the run its identity.

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
        try:
            frozen = {**config, "name": path.name}
            opened.freeze(frozen, {"run_id": uuid.uuid4().hex, "created": time.time()})
        except BaseException:
            opened.close()
            raise
        return opened

    @classmethod
    def open(cls, path: str | os.PathLike) -> tuple["RunDirectory", list[dict[str, Any]]]:
        """Open an existing run directory to continue it; return it with its journal's events.

        A torn last line (the process died while writing it) is cut off with a warning; damage
        anywhere else, a missing journal beside a snapshot, or a ``config.yaml`` edited since the
        run froze it is an error.
        """
        path = Path(path)
        if not (path / CONFIG).is_file():
            raise RunDirectoryError(f"{path} is not a run directory (no {CONFIG}); give the "
                                    f"folder a run created, e.g. runs/<name>")
        opened = cls(path)
        try:
            opened.identity = opened._check_identity()
            if not (path / JOURNAL).exists() or (path / JOURNAL).stat().st_size == 0:
                if (path / SNAPSHOT).exists():
                    raise RunDirectoryError(
                        f"{path / JOURNAL} is missing or empty, but {SNAPSHOT} says the run had "
                        f"started; the run cannot be continued without its journal. Restore "
                        f"the journal, or start a new run")
            events, good, data = read_events(path, with_bytes=True)
            if good < len(data):
                log.warning("%s: the last journal line was cut off by a crash; dropping it",
                            path / JOURNAL)
                opened._journal.close()
                with open(path / JOURNAL, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
                opened._journal = open(path / JOURNAL, "a", encoding="utf-8")
            opened._digest.update(data[:good])
        except BaseException:
            opened.close()
            raise
        opened.lines = len(events)
        return opened, [upgrade(e) for e in events]

    # ------------------------------------------------------------------ identity
    def freeze(self, config: dict[str, Any], identity: dict[str, Any]) -> None:
        """Write the frozen ``config`` (``run.json`` first, the authority, then
        ``config.yaml``)."""
        self.identity = {**identity, "format": FORMAT, "config": config,
                         "config_sha256": config_hash(config)}
        write_json(self.path / IDENTITY, self.identity)
        self.write_config(config)

    def _check_identity(self) -> dict[str, Any]:
        """``run.json``, checked against ``config.yaml``. A run directory from before run ids
        gets one now; a config edited since the run froze it is refused, listing the keys."""
        config = _read_yaml(self.path / CONFIG)
        try:
            identity = json.loads((self.path / IDENTITY).read_text(encoding="utf-8"))
            frozen = identity["config"]
        except FileNotFoundError:
            log.info("%s has no %s (written by an older evonas); recording one", self.path,
                     IDENTITY)
            self.freeze(config, {"run_id": uuid.uuid4().hex, "created": time.time()})
            return self.identity
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunDirectoryError(f"{self.path / IDENTITY} is unreadable ({exc}); the run's "
                                    f"frozen config cannot be checked") from None
        _refuse_edits(self.path, config, frozen)
        return identity

    # ------------------------------------------------------------------ writing
    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.path / CONFIG, lambda f: yaml.safe_dump(config, f, sort_keys=False))

    def append(self, event: dict[str, Any]) -> None:
        """Append one event to the journal and push it to disk before returning."""
        line = (dumps(event) + "\n").encode()
        self._journal.write(line.decode())
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._digest.update(line)
        self.lines += 1

    def journal_size(self) -> int:
        return self._journal.tell()

    def checkpoint_path(self, index: int) -> Path:
        """Where the training state of evaluation ``index`` waits between two rungs."""
        return self.path / CHECKPOINTS / f"{index}.safetensors"

    def write_checkpoint(self, index: int, state: bytes) -> None:
        """Keep evaluation ``index``'s training state (safetensors bytes), atomically."""
        atomic_write(self.checkpoint_path(index), lambda f: f.write(state), mode="wb")

    def read_checkpoint(self, index: int) -> bytes:
        path = self.checkpoint_path(index)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise RunDirectoryError(
                f"{path}: the checkpoint evaluation {index} continues from cannot be read "
                f"({exc.strerror or exc}); the journal says it was promoted at a rung, so "
                f"the run cannot continue it") from None

    def drop_checkpoint(self, index: int) -> None:
        self.checkpoint_path(index).unlink(missing_ok=True)

    def write_json(self, relative: str, data: Any) -> Path:
        path = self.path / relative
        write_json(path, data)
        return path

    def write_snapshot(self, state: dict[str, Any]) -> None:
        """Replace ``state.json`` atomically with ``state``, bound to this run (its id and
        config hash) and to the journal prefix written so far (lines, bytes, SHA-256);
        compact, since it grows with the run and only evonas reads it."""
        binding = {"format": FORMAT, "run_id": self.identity.get("run_id"),
                   "config_sha256": self.identity.get("config_sha256"),
                   "lines": self.lines, "bytes": self.journal_size(),
                   "journal_sha256": self._digest.hexdigest()}
        write_json(self.path / SNAPSHOT, {**binding, **state}, indent=None)

    def close(self) -> None:
        if not self._journal.closed:
            try:
                self._journal.close()
            except OSError:  # a write that failed (disk full) cannot be flushed now either
                pass
        self._lock.release()

    def __enter__(self) -> "RunDirectory":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def frozen_config(path: str | os.PathLike) -> dict[str, Any]:
    """The config a run directory froze at its start: ``run.json``'s, checked against
    ``config.yaml`` (an edit is refused, listing the keys); ``config.yaml`` for a run directory
    from before run identities. Reads only; takes no lock."""
    path = Path(path)
    if not (path / CONFIG).is_file():
        raise RunDirectoryError(f"{path} is not a run directory (no {CONFIG}); give the "
                                f"folder a run created, e.g. runs/<name>")
    config = _read_yaml(path / CONFIG)
    if not (path / IDENTITY).exists():
        return config
    try:
        frozen = json.loads((path / IDENTITY).read_text(encoding="utf-8"))["config"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RunDirectoryError(f"{path / IDENTITY} is unreadable ({exc}); the run's frozen "
                                f"config cannot be checked") from None
    _refuse_edits(path, config, frozen)
    return frozen


def _refuse_edits(path: Path, config: dict[str, Any], frozen: dict[str, Any]) -> None:
    changed = differences(config, frozen)
    if changed:
        raise RunDirectoryError(
            f"{path / CONFIG} was changed after the run started, in: "
            f"{', '.join(changed[:12])}{' ...' if len(changed) > 12 else ''}. Results trained "
            f"under two settings cannot be mixed: restore the file (the frozen copy is in "
            f"{IDENTITY}), or start a new run with the new settings. To run longer, use "
            f"`evonas resume {path} --<budget key> N`")


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise RunDirectoryError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise RunDirectoryError(f"{path} does not hold a config mapping")
    return data


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix[:-1]: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}."))
    return out


def differences(a: dict[str, Any], b: dict[str, Any],
                ignore: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two config dicts (``ignore`` left out)."""
    fa, fb = _flat(a), _flat(b)
    return sorted(k for k in set(fa) | set(fb) if k not in ignore and fa.get(k) != fb.get(k))


# ----------------------------------------------------------------------------------- reading
def read_snapshot(path: str | os.PathLike, identity: Optional[dict[str, Any]] = None,
                  journal: Optional[bytes] = None,
                  lines: Optional[int] = None) -> Optional[dict[str, Any]]:
    """The run's snapshot when it belongs to this run and covers a prefix of this journal;
    else ``None`` (with a warning), in which case the whole journal is replayed.

    ``identity`` (the run's ``run.json``) and ``journal`` (the journal's bytes) bind it: the
    run id and config hash must match, and the first ``bytes`` of the journal must have the
    recorded SHA-256 and hold ``lines`` events (``lines``: events in the whole journal, which
    the snapshot may not exceed). A snapshot of an unknown format is an error."""
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
    why = None
    if identity is not None and (state.get("run_id") != identity.get("run_id")
                                 or state.get("config_sha256") != identity.get("config_sha256")):
        why = "it belongs to another run or config"
    elif journal is not None:
        size = state.get("bytes")
        if not isinstance(size, int) or size > len(journal):
            why = "it covers more of the journal than there is"
        elif hashlib.sha256(journal[:size]).hexdigest() != state.get("journal_sha256"):
            why = "the journal it covers is not this journal"
        elif journal[:size].count(b"\n") != state.get("lines"):
            why = "its line count does not match the journal"
    if why is None and lines is not None and state.get("lines", 0) > lines:
        why = "it is ahead of the journal"
    if why is not None:
        log.warning("%s does not fit this run (%s); replaying the whole journal instead",
                    file, why)
        return None
    return state


def read_events(path: str | os.PathLike, with_bytes: bool = False):
    """All complete events of a journal and the byte length they span (and, with
    ``with_bytes``, the journal's bytes). Only the last line may be torn or damaged (a crash
    mid-write); damage anywhere else, a blank line included, is an error that gives the byte
    offset."""
    file = Path(path) / JOURNAL
    data = file.read_bytes() if file.exists() else b""
    events, good, start, number = [], 0, 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:  # no newline: a torn last line
            break
        number += 1
        try:
            event = json.loads(data[start:end])
            if not isinstance(event, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if end == len(data) - 1:  # the last line: torn by a crash
                break
            what = "a blank line" if not data[start:end].strip() else f"not an event ({exc})"
            raise RunDirectoryError(
                f"{file} is damaged at byte {start} (line {number}: {what}); only a torn last "
                f"line can be repaired. Restore the file from a backup, or remove that line by "
                f"hand if you know what it held") from None
        events.append(event)
        good = start = end + 1
    return (events, good, data) if with_bytes else (events, good)


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


