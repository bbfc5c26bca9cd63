"""What killed rebuilds left behind: full-size places (files, schemas) that nothing removes
otherwise, so that repeated failures would fill the disk silently. The next rebuild (only
it: not every replay command, ``--help`` needs no database) removes those of its groups
whose rebuild is gone (each home knows how it tells: replay/file_leftovers.py,
replay/postgres_leftovers.py) and says so in one line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from projections.databases.errors import ReadModelDatabaseError, first_line
from replay.targets import Leftover, ReadModelHome


def remove_leftovers(homes: Sequence[ReadModelHome], notice: Callable[[str], None]) -> None:
    """Remove the abandoned rebuild places of ``homes``, saying in one line to ``notice``
    what went and how big; a home that cannot be swept (its server down, say) is said in
    a line of its own, and the others are swept all the same."""
    found: list[Leftover] = []
    for home in homes:
        try:
            found.extend(home.remove_abandoned_rebuilds())
        except (ReadModelDatabaseError, OSError) as error:
            notice(f"cannot remove what killed rebuilds left behind: {first_line(error)}")
    if not found:
        return
    places = ", ".join(f"{leftover.where} ({_mib(leftover.size_bytes)})" for leftover in found)
    total = _mib(sum(leftover.size_bytes for leftover in found))
    notice(f"removed what killed rebuilds left behind, {total}: {places}")


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB"
