"""What every read model is to the projector: create, position, apply a batch; and the
statements that drop its tables, for the rebuild's swap."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from projections.databases.port import Database, Row, upsert
from projections.entities import Entity, Fact, LedgerEvent
from projections.fold import FoldedOnce, Rows, fold
from projections.tracking import (
    advance_tracking,
    create_tracking,
    shard_tracking_name,
    tracked_position,
)

# The upstream application every read model follows (the library's Tracking names it).
LEDGER_APPLICATION = "BillingApplication"


class ReadModel(ABC):
    """A set of tables built from the ledger, with its position tracked beside them."""

    name: ClassVar[str]
    entities: ClassVar[tuple[Entity, ...]]
    # Statements that create the tables, indexes and views (idempotent), in order.
    ddl: ClassVar[tuple[str, ...]]
    # Tables (and their ordering keys) whose content defines the model, for comparisons.
    tables: ClassVar[dict[str, str]]

    # The ledger shard this instance follows (projections/sharded.py). Shard 0 tracks its
    # position under the model's name, as an unsharded ledger always has.
    shard: int = 0
    # Whether each batch recomputes the columns ``rejoin`` recomputes, for the rows it
    # touched (see ``rejoined_at_end``).
    rejoins_each_batch: bool = True

    def __init__(self, db: Database) -> None:
        self.db = db

    def for_shard(self, shard: int) -> ReadModel:
        """Another instance of this model on the same database, following ``shard``."""
        twin = copy.copy(self)
        twin.shard = shard
        return twin

    def rejoined_at_end(self) -> ReadModel:
        """Another instance of this model whose batches leave out the columns ``rejoin``
        recomputes: for a rebuild worker, which rejoins once after its last batch. One
        statement over every row costs PostgreSQL less than each batch's over the rows it
        touched (two thirds of its CPU in a rebuild); the rows are the same ("The same
        values the batches derive, whatever the order")."""
        twin = copy.copy(self)
        twin.rejoins_each_batch = False
        return twin

    @property
    def tracking_name(self) -> str:
        """The name of this instance's position: one position per ledger shard."""
        return shard_tracking_name(self.name, self.shard)

    def create(self) -> None:
        with self.db.transaction():
            for statement in self.ddl:
                self.db.execute(statement)
            create_tracking(self.db, self.tracking_name, LEDGER_APPLICATION)

    def position(self) -> int:
        return tracked_position(self.db, self.tracking_name)

    def apply(self, batch: Sequence[LedgerEvent], facts: Sequence[Fact] | None = None) -> None:
        """Apply contiguous events in one transaction that also moves the position.

        ``facts`` are the batch's facts when the caller has them already (the projector
        computes them once for all its read models); otherwise they are computed here."""
        if not batch:
            return
        from projections.facts import facts_of_batch  # the domain's classes: not for queries

        if isinstance(facts, FoldedOnce):
            rows = facts.fold(self.entities)
        else:
            rows = fold(facts_of_batch(batch) if facts is None else facts, self.entities)
        with self.db.transaction():
            # Position first: it locks the tracking row, so racing projectors queue here.
            advance_tracking(
                self.db,
                self.tracking_name,
                batch[0].notification_id - 1,
                batch[-1].notification_id,
            )
            self.write(rows)

    def after_batch(self, caught_up: bool) -> None:
        """Called by the projector after each step (``caught_up``: it read the ledger's
        end); nothing by default."""
        return None

    def finish(self) -> None:
        """Called once when the projector stops, before the database closes; nothing by
        default."""
        return None

    @abstractmethod
    def write(self, rows: dict[Entity, Rows]) -> None:
        """Write one batch's folded rows (inside the batch's transaction)."""

    def rejoin(self) -> None:
        """Recompute, for every row, the columns it takes from other rows (a payment's
        session, a refund's payment): after a sharded rebuild merges the shards' rows, those
        rows may be another shard's (a message routed against the rule is recorded on the
        shard it reached). The same values the batches derive, whatever the order; nothing
        by default (a model that derives no columns)."""
        return None

    @abstractmethod
    def drop_statements(self) -> Sequence[str]:
        """Statements that drop the model's tables and views (the swap replaces them)."""

    def snapshot(self) -> dict[str, list[Row]]:
        """Every table's rows in key order: two models with equal snapshots are equal."""
        return {
            table: self.db.execute(f"SELECT * FROM {table} ORDER BY {order}")
            for table, order in self.tables.items()
        }


def upsert_having(
    db: Database, table: str, key_column: str, rows: Rows, columns: frozenset[str]
) -> list[Any]:
    """Upsert into ``table`` the rows with a value for at least one of its ``columns``, each
    with all of them (``upsert``'s ``columns``: a None never clears a stored value, and the
    table takes one statement per batch instead of one per set of columns its rows happen
    to have); the keys written."""
    having = {key: values for key, values in rows.items() if not columns.isdisjoint(values)}
    upsert(db, table, [key_column], having, columns)
    return [key[0] for key in having]
