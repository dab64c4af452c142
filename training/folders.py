"""Folders written whole: a folder is built beside its target and swapped into place, so a
reader (or a crash) sees the old folder or the new one, never a half-written one or none.

On Linux the swap is one ``renameat2(RENAME_EXCHANGE)``; elsewhere it is two renames, and a
crash between them is repaired the next time the folder is written. Leftovers of a killed
writer (``.NAME.PID.*.tmp``) are removed once their process is gone.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from genome.errors import EvonasError

log = logging.getLogger(__name__)

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc if hasattr(libc, "renameat2") else None
    except OSError:
        return None


_LIBC = _libc()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux ``renameat2``); ``False`` where the system
    cannot, so the caller falls back to two renames."""
    if _LIBC is None:
        return False
    result = _LIBC.renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                             _RENAME_EXCHANGE)
    if result == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not on this file system
        return False
    raise OSError(err, os.strerror(err), str(a))


def publish(folder: Path) -> None:
    """Give ``folder`` and everything in it the permissions of a plain ``mkdir`` / ``open``
    (temp files and folders are private) and push its files to disk."""
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o777 & ~umask)
        else:
            path.chmod(0o666 & ~umask)
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_leftovers(target: Path) -> None:
    """Remove what killed writers of ``target`` left beside it: temporary folders of dead
    processes, and the old copy of an interrupted two-rename swap (restored first when the
    swap stopped between its renames, leaving no ``target``)."""
    name = re.escape(target.name)
    temporary = re.compile(rf"^\.{name}\.(\d+)\..*\.tmp$")
    old = re.compile(rf"^\.{name}\.old-\w+$")
    if not target.parent.is_dir():
        return
    for sibling in target.parent.iterdir():
        match = temporary.match(sibling.name)
        if match and not _alive(int(match.group(1))):
            log.info("removing %s, left by a writer that was stopped", sibling)
            shutil.rmtree(sibling, ignore_errors=True)
        elif old.match(sibling.name):
            if not target.exists():
                log.warning("restoring %s from %s: a swap was interrupted", target, sibling)
                os.replace(sibling, target)
            else:
                shutil.rmtree(sibling, ignore_errors=True)


def replace_dir(target: Path, build: Callable[[Path], None], *,
                owned: Callable[[Path], bool], error: type[Exception] = EvonasError) -> Path:
    """Call ``build(tmp)`` on a fresh temporary folder beside ``target``, then put it in
    ``target``'s place, replacing what was there in one step. ``owned(target)`` says whether
    an existing, non-empty ``target`` may be replaced (evonas replaces only what it wrote);
    refusals are ``error``."""
    target = Path(target)
    clean_leftovers(target)
    if target.exists():
        if not target.is_dir():
            raise error(f"{target} exists and is not a folder; choose another output folder")
        if any(target.iterdir()) and not owned(target):
            raise error(f"{target} exists and is not an evonas export; choose a new folder or "
                        f"empty this one (evonas replaces only its own exports)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.{os.getpid()}.",
                                suffix=".tmp"))
    try:
        build(tmp)
        publish(tmp)
        if not target.exists():
            os.replace(tmp, target)
        elif exchange(tmp, target):
            shutil.rmtree(tmp, ignore_errors=True)  # now the old folder
        else:
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
