"""Where DuckDB keeps a database's write-ahead log: a module of its own, without DuckDB, for
the swap's short-lived child process to import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def wal_places(path: Path, suffixes: Sequence[str] = (".wal",)) -> list[Path]:
    """Where DuckDB may keep the WAL files of the database at ``path``: beside it, and, if
    ``path`` is a symlink, beside the file it names (DuckDB 2.0 keeps them there; the
    versions pyproject allows need not, so both are looked at)."""
    files = (path, path.resolve())
    return list(dict.fromkeys(f.with_name(f.name + s) for f in files for s in suffixes))
