"""The live side of a rebuild, as a port: hold the live models still, checksum them, and
swap the rebuilt tables in atomically, so a query sees the old model or the new one, never
a mix. One subclass per database, beside its home (replay/home_*.py):

PostgreSQL moves tables between schemas in one transaction that first locks the live
models' tracking rows: a live projector in another process waits on that lock, then its
compare-and-set fails (or, if the rebuild stands exactly where it expected, succeeds on the
new tables) and it carries on from the swapped-in position. SQLite copies the rebuilt
tables into the live file in one transaction, so the file a live process has open is never
replaced behind its back. DuckDB, which admits one process to a file, renames the rebuilt
file over the live one while no process has either open (replay/duck_file_swap.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from projections.databases.port import Database
from projections.read_model import LEDGER_APPLICATION, ReadModel
from projections.tracking import TRACKING_TABLE, create_tracking
from replay.checksum import TableChecksum, model_checksums
from replay.targets import ModelGroup, Place

if TYPE_CHECKING:  # a query opens a home without the projector
    from projections.runner import LedgerSource


class LiveModelBusy(RuntimeError):
    """The live database is held by another process (DuckDB allows one writer)."""


class LiveSide(ABC):
    """One group's live read models and the rebuilt place that may replace them."""

    def __init__(self, db: Database, group: ModelGroup, rebuilt: Place) -> None:
        self.db = db
        self.group = group
        self.rebuilt = rebuilt
        self.models: list[ReadModel] = [model_class(db) for model_class in group.classes]

    @abstractmethod
    def table_exists(self, table: str) -> bool: ...

    def present(self, model: ReadModel) -> bool:
        """The live model has its tables and a tracked position."""
        return self.table_exists(TRACKING_TABLE) and all(
            self.table_exists(table) for table in model.tables
        )

    def positions(self) -> dict[str, int | None]:
        """Each live model's position (None where there is no live model yet), and on a
        sharded ledger each of its other shards' positions (``<name>@<p>``)."""
        present = [model for model in self.models if self.present(model)]
        found: dict[str, int] = {}
        if present:
            placeholders = ", ".join("?" for _ in present)
            shards = " OR ".join("projection_name LIKE ?" for _ in present)
            rows = self.db.execute(
                f"SELECT projection_name, notification_id FROM {TRACKING_TABLE}"
                f" WHERE projection_name IN ({placeholders}) OR {shards}{self.lock_clause}",
                [model.name for model in present] + [f"{model.name}@%" for model in present],
            )
            found = {str(row["projection_name"]): int(row["notification_id"]) for row in rows}
        return {model.name: found.pop(model.name, None) for model in self.models} | found

    lock_clause = ""

    def catch_up(self, sources: Sequence[LedgerSource], until: Sequence[int]) -> None:
        """Bring the live models that exist to ``until`` at least on each shard (``sources``
        shard 0 first), as their projector would."""
        from replay.ledger_prefix import project_shards

        present = [model for model in self.models if self.present(model)]
        project_shards(sources, present, until)

    def checksums(
        self, model: ReadModel, like: Mapping[str, TableChecksum] | None = None
    ) -> dict[str, TableChecksum]:
        """The live model's checksums; a table's is ``like``'s (the rebuilt one's) where
        their fingerprints are equal (replay/checksum.py)."""
        return model_checksums(model, self.group.home.fingerprint, like)

    @abstractmethod
    def held(self) -> Any:
        """A context manager: the live models stand still inside it; yields positions()."""

    @abstractmethod
    def swap_in(self, rebuilt: Sequence[ReadModel], positions: dict[str, int]) -> None:
        """Inside held(): replace the live tables with the rebuilt ones, set positions."""

    def after_swap(self) -> None:  # noqa: B027 - only PostgreSQL leaves anything behind
        """Once the swap has committed: remove what the old tables left behind."""

    def close(self) -> None:
        self.db.close()

    def _set_positions(self, positions: dict[str, int]) -> None:
        for name, position in positions.items():
            create_tracking(self.db, name, LEDGER_APPLICATION)
            self.db.execute(
                f"UPDATE {TRACKING_TABLE} SET notification_id = ? WHERE projection_name = ?",
                [position, name],
            )
