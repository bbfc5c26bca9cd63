"""The rebuild places of a file database (DuckDB's analytics, SQLite's views): a file beside
the live one per rebuild and shard, owned by the rebuild through a lock file beside them.

The rebuild creates ``.<place>.lock`` and holds a ``flock`` on it (projections/staging.py)
before it makes any place, for its whole life, and removes it after its places. A rebuild
killed (SIGKILL, power loss) leaves its full-size places behind with their lock file, which
nothing holds any more: the next rebuild, as it starts, removes them. The owner removes
its places as it ends, and keeps its lock file (unlocked) while any of them remains.
Places without a lock file (made by an earlier version, which had none) are left alone: a
rebuild of that version may still be running.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

from projections.staging import owned, remove_if_abandoned
from replay.targets import Leftover, StillOwned, database_size, remove_database_file

log = logging.getLogger("evledger.replay")

_LOCK = ".lock"


class RebuildFiles:
    """The rebuild places of ``live`` (named ``<stem>.rebuild-<tag><suffix>`` beside it)."""

    def __init__(self, live: Path, suffix: str) -> None:
        self.live = live
        self.suffix = suffix

    def place(self, tag: str) -> Path:
        return self.live.with_name(f"{self.live.stem}.rebuild-{tag}{self.suffix}")

    def _lock(self, tag: str) -> Path:
        return self.place(tag).with_name(f".{self.place(tag).name}{_LOCK}")

    @contextmanager
    def owner(self, tag: str) -> Iterator[StillOwned]:
        """A flock is the process's for as long as it lives: owned throughout."""
        with owned(self._lock(tag), partial(self._removed, tag)):
            yield lambda: None

    def _removed(self, tag: str) -> bool:
        """Whether rebuild ``tag``'s places are all gone, removed now if need be."""
        try:
            _remove(self._places(tag))
        except OSError as error:
            log.warning(
                "cannot remove the places of rebuild %s (the next one will): %s", tag, error
            )
            return False
        return True

    def _places(self, tag: str) -> list[Path]:
        """Rebuild ``tag``'s places: its own and its shards' (``<tag>_<p>``)."""
        shards = self.live.parent.glob(
            f"{glob.escape(self.place(tag).stem)}_*{glob.escape(self.suffix)}"
        )
        return [self.place(tag), *sorted(shards)]

    def remove_abandoned(self) -> list[Leftover]:
        prefix = f".{self.live.stem}.rebuild-"
        ending = f"{self.suffix}{_LOCK}"
        removed: list[Leftover] = []
        for lock in sorted(self.live.parent.glob(f"{glob.escape(prefix)}*{glob.escape(ending)}")):
            tag = lock.name[len(prefix) : -len(ending)]
            found: list[Leftover] = []
            try:
                # Measured under the lock: a running rebuild's journals come and go.
                if remove_if_abandoned(lock, partial(self._measure_then_remove, tag, found)):
                    removed.extend(found)
            except OSError as error:  # another user's, say: reported, the rebuild goes on
                log.warning("cannot remove the places of the killed rebuild %s: %s", tag, error)
        return removed

    def _measure_then_remove(self, tag: str, found: list[Leftover]) -> None:
        places = self._places(tag)
        for place in places:
            size = database_size(place)
            if size is not None:
                found.append(Leftover(str(place), size))
        _remove(places)


def _remove(places: list[Path]) -> None:
    for place in places:
        remove_database_file(place)
