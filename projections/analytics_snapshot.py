"""The readers' copy of the analytics file, so analysts never touch the projector's file.

DuckDB lets one process hold a database file for writing, and a reader's lock would in
turn keep the projector out. So the projector owns ``analytics.duckdb`` alone and, after
its batches, publishes a copy as ``analytics.snapshot.duckdb`` by an atomic rename.
Readers (queries, the report, a server) open the newest copy read-only: they see a
committed state, at most a batch old once the projector has caught up (or four times a
copy's duration, for a file so large that copying takes long), and a reader that
still has an older copy open keeps reading it undisturbed (the rename replaces only the
name; within one process DuckDB shares an open file per path, so a long-lived reader such
as a server should close its connections between requests to see the next copy). While
catching up on a long ledger the copy is refreshed at most every half minute, so copying
never dominates the projector's time.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from projections.databases.duckdb import DuckDatabase
from projections.databases.duckdb_wal import wal_places
from projections.databases.errors import ReadModelDatabaseError
from projections.databases.fsync import fsync
from projections.staging import staging_file

log = logging.getLogger("evledger.analytics")

# While catching up: seconds between two copies (once caught up, every batch is copied).
# Every 5 s, copies took a tenth of a catch-up's CPU time on a 64k-event ledger, for a
# readers' copy that is behind anyway until the projector has caught up.
CATCH_UP_INTERVAL_S = 30.0
# A copy waits until this many times its last copy's duration has passed since it, so that
# copying a large file never takes more than a fifth of the projector's time.
COPY_SHARE_FACTOR = 4


def snapshot_path(live: Path) -> Path:
    """Where readers find the copy of ``live``: ``analytics.snapshot.duckdb`` beside it."""
    return live.with_name(f"{live.stem}.snapshot{live.suffix or '.duckdb'}")


def reader_path(live: Path) -> Path:
    """The file a reader opens: the published copy, or the file itself when no projector
    has published one (a snapshot made by replay, an export loaded elsewhere)."""
    copy = snapshot_path(live)
    return copy if copy.exists() else live


def publish_snapshot(db: DuckDatabase) -> Path:
    """Copy ``db``'s committed state into a new file and rename it to the snapshot path
    (atomic); the path published.

    A checkpoint writes everything committed into the file itself, and a plain copy of its
    bytes is then the copy: its memory does not grow with the file (DuckDB's own
    COPY FROM DATABASE rebuilds every key index of the copy in memory, ran out of it on a
    long ledger and left the live database invalidated). The copy is made by a child
    process: opening the live file here and closing it would drop DuckDB's lock on it
    (POSIX locks belong to the process, and any close releases them).
    """
    db.execute("CHECKPOINT")
    for wal in wal_places(db.path):
        if wal.exists() and wal.stat().st_size:
            # Something the checkpoint could not fold in would be missing from the copy.
            raise SnapshotError(f"{wal} still holds changes after a checkpoint")
    with staged_snapshot(db.path, db.path) as target:
        return target  # published as the block ends


@contextmanager
def staged_snapshot(source: Path, live: Path) -> Iterator[Path]:
    """Copy ``source`` (checkpointed, no writer in its middle) beside the readers' copy of
    ``live``; yields the snapshot path, and publishes the copy there by an atomic rename
    when the block ends without an error (the copy is removed either way, and the copies
    of a process killed while making one are removed before: projections/staging.py)."""
    target = snapshot_path(live)
    with staging_file(target) as partial:
        copied = subprocess.run(
            ["cp", "--", str(source), str(partial)], capture_output=True, text=True, check=False
        )
        if copied.returncode != 0:
            raise SnapshotError(f"copying {source}: {copied.stderr.strip()}")
        fsync(partial)  # its bytes before its name: a crash leaves no torn copy published
        yield target
        os.replace(partial, target)
        fsync(target.parent)


class SnapshotError(Exception):
    """The readers' copy could not be made; the live file is untouched."""


class SnapshotPublisher:
    """Publishes the copy after the batches that changed the file: once the projector has
    caught up, at the first batch (or idle poll) when copying would not take more than a
    fifth of its time; while it catches up, at most every ``interval_s`` as well."""

    def __init__(
        self,
        db: DuckDatabase,
        interval_s: float = CATCH_UP_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.interval_s = interval_s
        self.clock = clock
        self.published = 0
        self._changed = False
        self._last = float("-inf")
        self._cost = 0.0

    def changed(self) -> None:
        self._changed = True

    def after_batch(self, caught_up: bool) -> None:
        if not self._changed:
            return
        since = self.clock() - self._last
        if since < COPY_SHARE_FACTOR * self._cost or (not caught_up and since < self.interval_s):
            return
        self._publish()

    def publish_pending(self) -> None:
        """Publish now if anything changed since the last copy, whatever the rate."""
        if self._changed:
            self._publish()

    def _publish(self) -> None:
        started = self.clock()
        try:
            publish_snapshot(self.db)
        except Exception as error:
            # The readers keep the previous copy; the projector must not stop for them.
            # Still marked changed, so the next batch tries again.
            log.warning("could not publish the readers' copy of %s: %r", self.db.path, error)
            self._reopen_if_invalidated(error)
            return
        self._changed = False
        self._last = self.clock()
        self._cost = self._last - started
        self.published += 1

    def _reopen_if_invalidated(self, error: Exception) -> None:
        """After a fatal error (out of memory in a checkpoint, say) DuckDB refuses every
        further statement on the database: reopen it, which replays what was committed;
        if even that fails, stop the projector with both errors rather than later."""
        if self._usable():
            return
        log.warning("%s was invalidated by that failure: reopening it", self.db.path)
        self.db.close()
        if not self._usable():
            raise ReadModelDatabaseError(
                f"{self.db.path} is unusable after a failed readers' copy ({error!r})"
            ) from error

    def _usable(self) -> bool:
        try:
            self.db.execute("SELECT 1 AS ok")
        except ReadModelDatabaseError:
            return False
        return True
