"""The DuckDB swap's rename: the rebuilt analytics file takes the live file's name whole,
while no process has either file open, so nothing is copied row by row (copying the keyed
tables into the live file in one transaction built their key indexes whole in memory: the
swap's memory grew with the ledger).

DuckDB locks its file with a POSIX record lock, which belongs to the process and goes with
any close of the file in it, so the swap cannot keep DuckDB's lock across closing its own
connection. It takes an open file description lock instead (Linux), which DuckDB's lock
conflicts with both ways. It takes it, checks and renames in a short-lived child process:
opening and closing the files here would drop the lock of any DuckDB connection this
process still has open on them, and let a second writer in. Taken once this process has
closed its own connection, the lock fails if any process has the file open (a projector or
a reader that came in between, or a connection of this process that is still open): the
swap is refused and both files are kept as they were. While it is held, no DuckDB opens
either file; once the name has moved, one that opens it gets the new file.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from projections.databases.duckdb_wal import wal_places
from projections.databases.fsync import fsync
from replay.swap import LiveModelBusy
from replay.targets import DUCKDB_WALS

# The child's exit status for a refusal (its message on stderr).
_REFUSED = 3


class SwapUnsupported(RuntimeError):
    """This system has no open file description locks, which the DuckDB swap needs."""


def check_supported() -> None:
    """SwapUnsupported unless this system has open file description locks; called before
    rebuilding, rather than failing once the rebuild is done."""
    try:
        import fcntl
    except ImportError:
        supported = False
    else:
        supported = hasattr(fcntl, "F_OFD_SETLK")
    if not supported:
        raise SwapUnsupported(
            "rebuilding the DuckDB analytics needs open file description locks (Linux), "
            f"which {sys.platform} lacks; rebuild the other projections with --projection"
        )


def replace_database(new: Path, live: Path, *links: Path) -> None:
    """Rename the checkpointed, closed DuckDB file ``new`` over ``live`` (in a child
    process); LiveModelBusy (nothing renamed) if a process has either open, or either has
    changes in a WAL beside it, which DuckDB would replay into the file that then has its
    name. ``links`` are symlinks to ``live`` that DuckDB opens it by, whose WALs count too
    (projections.databases.duckdb_wal)."""
    child = subprocess.run(
        [sys.executable, "-m", "replay.duck_file_swap", str(new), str(live), *map(str, links)],
        capture_output=True,
        text=True,
        check=False,
    )
    if child.returncode == _REFUSED:
        raise LiveModelBusy(child.stderr.strip())
    if child.returncode != 0:
        raise OSError(f"renaming {new} over {live} failed: {child.stderr.strip()}")


def _replace(new: Path, live: Path, links: Sequence[Path]) -> None:
    with unopened(new), unopened(live):
        for path in (new, live, *links):
            for wal in wal_places(path, DUCKDB_WALS):
                if wal.exists() and wal.stat().st_size:
                    raise LiveModelBusy(
                        f"{wal} holds changes not checkpointed into {path.name}; nothing swapped"
                    )
                wal.unlink(missing_ok=True)
        os.replace(new, live)
        fsync(live.parent)


@contextmanager
def unopened(path: Path) -> Iterator[None]:
    """No DuckDB opens ``path`` (to read or to write) until the block ends; LiveModelBusy
    if a process has it open now. Closes a descriptor of ``path``: only in a process that
    has no DuckDB connection to it."""
    import fcntl

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


def _main(arguments: list[str]) -> int:
    new, live, *links = (Path(argument) for argument in arguments)
    try:
        _replace(new, live, links)
    except LiveModelBusy as refused:
        print(refused, file=sys.stderr)
        return _REFUSED
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
