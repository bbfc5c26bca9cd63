"""The rebuild places of a file database (DuckDB's analytics, SQLite's views): a file beside
the live one per rebuild and shard, owned by the rebuild through a lock file beside them.

The rebuild creates ``.<place>.lock`` and holds a ``flock`` on it (projections/staging.py)
before it makes any place, for its whole life, and removes it after its places. A rebuild
killed (SIGKILL, power loss) leaves its full-size places behind with their lock file, which
nothing holds any more: the next rebuild, and `evledger replay` as it starts, remove them.
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
from replay.targets import Leftover, database_files, remove_database_file

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
    def owner(self, tag: str) -> Iterator[None]:
        with owned(self._lock(tag)):
            yield

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
            found = [
                (place, sum(file.stat().st_size for file in database_files(place)))
                for place in self._places(tag)
                if database_files(place)
            ]

            try:
                if remove_if_abandoned(lock, partial(_remove, [place for place, _ in found])):
                    removed.extend(Leftover(str(place), size) for place, size in found)
            except OSError as error:  # another user's, say: reported, the rebuild goes on
                log.warning("cannot remove the places of the killed rebuild %s: %s", tag, error)
        return removed


def _remove(places: list[Path]) -> None:
    for place in places:
        remove_database_file(place)
