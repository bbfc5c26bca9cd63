"""The DuckDB swap's rename: the rebuilt analytics file takes the live file's name whole,
while no process has either file open, so nothing is copied row by row (copying the keyed
tables into the live file in one transaction built their key indexes whole in memory: the
swap's memory grew with the ledger).

DuckDB locks its file with a POSIX record lock, which belongs to the process and goes with
any close of the file in it, so the swap cannot keep DuckDB's lock across closing its own
connection. It takes an open file description lock instead (Linux): DuckDB's lock and this
one conflict both ways, in this process too, and closing a DuckDB connection leaves it.
Taken once this process has closed its connections, it fails if any process has the file
open (a projector or a reader that came in between, or a connection of this process that
is still open): the swap is refused and both files are kept as they were. While it is
held, no DuckDB opens either file; once the name has moved, one that opens it gets the new
file.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from replay.swap import LiveModelBusy


def replace_database(new: Path, live: Path) -> None:
    """Rename the checkpointed, closed DuckDB file ``new`` over ``live``; LiveModelBusy
    (nothing renamed) if a process has either open, or either has changes in a WAL beside
    it, which DuckDB would replay into the file that then has its name."""
    with unopened(new), unopened(live):
        for path in (new, live):
            wal = path.with_name(path.name + ".wal")
            if wal.exists() and wal.stat().st_size:
                raise LiveModelBusy(
                    f"{wal} holds changes not checkpointed into {path.name}; nothing swapped"
                )
            wal.unlink(missing_ok=True)
        os.replace(new, live)


@contextmanager
def unopened(path: Path) -> Iterator[None]:
    """No DuckDB opens ``path`` (to read or to write) until the block ends; LiveModelBusy
    if a process has it open now."""
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.fcntl(fd, fcntl.F_OFD_SETLK, _whole_file(fcntl.F_WRLCK))
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            raise LiveModelBusy(
                f"{path} is open elsewhere (a projector, a reader, another connection) at "
                "the swap: nothing swapped, the live models are kept; run the replay again"
            ) from None
        yield
    finally:
        os.close(fd)  # which releases the lock


def _whole_file(kind: int) -> bytes:
    """A ``struct flock`` over the whole file (l_pid 0, as an open file description lock
    requires): short type, short whence, off_t start, off_t length, pid_t pid."""
    return struct.pack("hhqqixxxx", kind, os.SEEK_SET, 0, 0, 0)
