"""What killed rebuilds left behind: full-size places (files, schemas) that nothing removes
otherwise, so that repeated failures would fill the disk silently. The next rebuild, and
`evledger replay` as it starts, remove those whose rebuild is gone (each home knows how it
tells: replay/file_leftovers.py, replay/postgres_leftovers.py) and say so in one line."""

from __future__ import annotations

from collections.abc import Sequence

from replay.targets import ReadModelHome


def remove_leftovers(homes: Sequence[ReadModelHome]) -> str | None:
    """Remove the abandoned rebuild places of ``homes``; one line saying what went and how
    big, or None when there were none."""
    found = [leftover for home in homes for leftover in home.remove_abandoned_rebuilds()]
    if not found:
        return None
    places = ", ".join(f"{leftover.where} ({_mib(leftover.size_bytes)})" for leftover in found)
    total = _mib(sum(leftover.size_bytes for leftover in found))
    return f"removed what killed rebuilds left behind, {total}: {places}"


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
