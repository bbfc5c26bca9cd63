"""Making a file's bytes, or a directory's names, durable before what follows relies on
them: a rename is only as durable as the renamed file's data and its directory's entry."""

from __future__ import annotations

import os
from pathlib import Path


def fsync(path: Path) -> None:
    """Flush ``path`` (a file or a directory) to the disk. Never call it on a DuckDB file
    this process has open: closing the descriptor drops DuckDB's lock (a POSIX lock,
    which any close in the process releases)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
