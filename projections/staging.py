"""Staging files that their process owns while it lives: a copy written beside its final name
and renamed into place. A process killed in the middle (SIGKILL, power loss) leaves its
staging file behind; the next one staging beside it removes it, and never one whose owner is
still writing it. A lock file owns other files the same way (a rebuild's places:
replay/file_leftovers.py).

Ownership is a ``flock`` held on the file from its creation to its rename: the kernel drops
it with the process however it ends, and it belongs to the open file description (closing
another descriptor of the file, or a POSIX lock such as DuckDB's, leaves it alone). A
process id in the name would not do: ids are reused, and processes of two containers
sharing the directory can have the same one.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

_SUFFIX = ".partial"

log = logging.getLogger("evledger.staging")


def _pattern(target: Path) -> str:
    return f".{glob.escape(target.name)}.*{_SUFFIX}"


@contextmanager
def staging_file(target: Path) -> Iterator[Path]:
    """A new, empty, hidden file beside ``target``, owned by this process until the block
    ends; removed then unless the block renamed it away. Abandoned staging files of
    ``target`` are removed first."""
    remove_abandoned(target)
    path = target.with_name(f".{target.name}.{os.getpid()}-{secrets.token_hex(4)}{_SUFFIX}")
    with owned(path):
        yield path


@contextmanager
def owned(path: Path, gone: Callable[[], bool] = lambda: True) -> Iterator[None]:
    """Create ``path`` and hold its lock until the block ends, then remove it (gone already
    if the block renamed it away). Other files may go with it: their owner's lock file,
    removed last, says whose they are (``remove_if_abandoned``); ``gone`` removes them as the
    block ends, and says whether they are all gone: if not, ``path`` stays, unlocked, for
    the next owner beside it to remove them."""
    fd = _create_locked(path)
    try:
        yield
    finally:
        try:
            if gone():
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # which releases the lock, once the name is gone


def remove_abandoned(target: Path) -> list[Path]:
    """Remove the staging files of ``target`` whose owner is gone; those removed. One that
    cannot be opened or removed (another user's, say) is logged and left: staging a new
    copy beside it does not need it gone."""
    removed = []
    for path in sorted(target.parent.glob(_pattern(target))):
        try:
            if remove_if_abandoned(path, lambda: None):
                removed.append(path)
        except OSError as error:
            log.warning("cannot remove the abandoned staging file %s: %s", path, error)
    return removed


def remove_if_abandoned(path: Path, also: Callable[[], None]) -> bool:
    """If the process that made ``path`` (``owned``) is gone: run ``also`` (remove what
    else it owned) holding its lock, then remove ``path``; whether it did."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False  # renamed into place or removed meanwhile
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # its owner is alive
        if not _names(fd, path):
            return False
        also()
        path.unlink()
        return True
    finally:
        os.close(fd)


def _create_locked(path: Path) -> int:
    """Create ``path`` and lock it; a sweeper that locked it first may have removed it
    before this process could lock it, so create it again until the locked file is the
    one the name holds."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _names(fd, path):
            return fd
        os.close(fd)


def _names(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd``."""
    with suppress(FileNotFoundError):
        named, opened = path.stat(), os.fstat(fd)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)
    return False
