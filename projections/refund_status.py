"""The refund status read model: one row per refund with its payment, customer and station,
for PostgreSQL (or SQLite on the embedded default), and its queries.

Customer and station come from the refund's session, found through its payment; helper
tables of payments and sessions fill them in whichever order the events arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from domain.vocabulary import RefundStatus
from projections.databases.port import Database, Row, for_keys
from projections.entities import Entity
from projections.fold import Rows
from projections.read_model import ReadModel, upsert_having

REFUND_STATUSES = tuple(status.value for status in RefundStatus)
_OPEN_STATUSES = frozenset(status.value for status in RefundStatus if status.is_open)

_REFUND_COLUMNS = frozenset(
    {
        "refund_id",
        "payment_id",
        "payment_key",
        "session_id",
        "session_key",
        "amount_minor",
        "currency",
        "reason",
        "note",
        "status",
        "requested_at",
        "decided_at",
        "decided_by",
        "automatic",
        "decision_note",
        "rejection_reason",
        "issued_at",
        "issued_minor",
        "processor_ref",
        "failed_at",
        "failure_reason",
        "closed_at",
    }
)
_PAYMENT_COLUMNS = frozenset({"session_id", "session_key"})
_SESSION_COLUMNS = frozenset({"customer_id", "station_id"})

_DDL = (
    """CREATE TABLE IF NOT EXISTS refund_status_payments (
        payment_key {text} PRIMARY KEY,
        session_key {text},
        session_id {text}
    )""",
    """CREATE TABLE IF NOT EXISTS refund_status_sessions (
        session_key {text} PRIMARY KEY,
        customer_id {text},
        station_id {text}
    )""",
    """CREATE TABLE IF NOT EXISTS refund_status (
        refund_key {text} PRIMARY KEY,
        refund_id {text},
        payment_id {text},
        payment_key {text},
        session_id {text},
        session_key {text},
        customer_id {text},
        station_id {text},
        amount_minor {bigint},
        currency {text},
        reason {text},
        note {text},
        status {text},
        requested_at {ts},
        decided_at {ts},
        decided_by {text},
        automatic {bool},
        decision_note {text},
        rejection_reason {text},
        issued_at {ts},
        issued_minor {bigint},
        processor_ref {text},
        failed_at {ts},
        failure_reason {text},
        closed_at {ts}
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS refund_status_by_refund_id ON refund_status (refund_id)",
    "CREATE INDEX IF NOT EXISTS refund_status_by_status"
    " ON refund_status (status, requested_at DESC, refund_id DESC)",
    "CREATE INDEX IF NOT EXISTS refund_status_by_customer"
    " ON refund_status (customer_id, requested_at DESC, refund_id DESC)",
    "CREATE INDEX IF NOT EXISTS refund_status_by_station"
    " ON refund_status (station_id, requested_at DESC, refund_id DESC)",
    "CREATE INDEX IF NOT EXISTS refund_status_by_payment ON refund_status (payment_key)",
    "CREATE INDEX IF NOT EXISTS refund_status_by_session ON refund_status (session_key)",
)

# Only a refund requested before its payment was known lacks a session; fill it once known.
# Of every row; with the key condition, of the rows a batch touched.
_SESSION_FROM_PAYMENT_ALL = (
    "UPDATE refund_status SET (session_key, session_id) = ("
    "SELECT p.session_key, p.session_id FROM refund_status_payments p"
    " WHERE p.payment_key = refund_status.payment_key)"
    " WHERE session_key IS NULL"
)
_SESSION_FROM_PAYMENT = _SESSION_FROM_PAYMENT_ALL + " AND {where} {in_keys}"
_PARTIES_FROM_SESSION_ALL = (
    "UPDATE refund_status SET (customer_id, station_id) = ("
    "SELECT s.customer_id, s.station_id FROM refund_status_sessions s"
    " WHERE s.session_key = refund_status.session_key)"
)
_PARTIES_FROM_SESSION = _PARTIES_FROM_SESSION_ALL + " WHERE {where} {in_keys}"

REFUND_COLUMNS = (
    "refund_id",
    "status",
    "payment_id",
    "customer_id",
    "station_id",
    "amount_minor",
    "currency",
    "reason",
    "requested_at",
    "decided_at",
    "decided_by",
    "automatic",
    "rejection_reason",
    "issued_at",
    "processor_ref",
    "failed_at",
    "failure_reason",
    "age",
)
REFUND_DETAIL_COLUMNS = (*REFUND_COLUMNS[:-1], "session_id", "note", "decision_note", "age")


# The helper tables a batch upserts: entity, table, key column, value columns.
_WRITTEN = (
    (Entity.SESSION, "refund_status_sessions", "session_key", _SESSION_COLUMNS),
    (Entity.PAYMENT, "refund_status_payments", "payment_key", _PAYMENT_COLUMNS),
    (Entity.REFUND, "refund_status", "refund_key", _REFUND_COLUMNS),
)


class RefundStatusView(ReadModel):
    """One row per refund: where it stands and who it concerns."""

    name = "refund_status"
    entities = (Entity.SESSION, Entity.PAYMENT, Entity.REFUND)
    ddl = _DDL
    tables = {
        "refund_status": "refund_key",
        "refund_status_payments": "payment_key",
        "refund_status_sessions": "session_key",
    }

    def write(self, rows: dict[Entity, Rows]) -> None:
        sessions, payments, refunds = (
            upsert_having(self.db, table, key, rows[entity], columns)
            for entity, table, key, columns in _WRITTEN
        )
        if not self.rejoins_each_batch:
            return
        for where, keys in (("refund_key", refunds), ("payment_key", payments)):
            for_keys(self.db, _SESSION_FROM_PAYMENT.replace("{where}", where), keys)
        for where, keys in (
            ("refund_key", refunds),
            ("payment_key", payments),
            ("session_key", sessions),
        ):
            for_keys(self.db, _PARTIES_FROM_SESSION.replace("{where}", where), keys)

    def rejoin(self) -> None:
        self.db.execute(_SESSION_FROM_PAYMENT_ALL)
        self.db.execute(_PARTIES_FROM_SESSION_ALL)

    def drop_statements(self) -> Sequence[str]:
        return [f"DROP TABLE IF EXISTS {table}" for table in self.tables]


# --- queries -----------------------------------------------------------------------------


def _with_age(row: Row, now: datetime) -> Row:
    """Age: how long an open refund has waited, or how long a closed one took."""
    requested_at = row.get("requested_at")
    closed_at = row.pop("closed_at", None)
    if requested_at is None:
        row["age"] = None
        return row
    end = now if row["status"] in _OPEN_STATUSES or closed_at is None else closed_at
    row["age"] = end - requested_at
    return row


def query_refunds(
    db: Database,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    station_id: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
    payment_id: str | None = None,
) -> list[Row]:
    """Refunds newest first, filtered by any of status, customer, station and payment."""
    conditions: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("status", status),
        ("customer_id", customer_id),
        ("station_id", station_id),
        ("payment_id", payment_id),
    ):
        if value is not None:
            conditions.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = db.execute(
        f"SELECT {', '.join(REFUND_DETAIL_COLUMNS[:-1])}, closed_at FROM refund_status {where}"
        " ORDER BY requested_at DESC, refund_id DESC LIMIT ?",
        [*params, limit],
    )
    moment = now or datetime.now(UTC)
    return [_with_age(row, moment) for row in rows]


def refund(db: Database, refund_id: str, now: datetime | None = None) -> Row | None:
    rows = db.execute(
        f"SELECT {', '.join(REFUND_DETAIL_COLUMNS[:-1])}, closed_at FROM refund_status"
        " WHERE refund_id = ?",
        [refund_id],
    )
    return _with_age(rows[0], now or datetime.now(UTC)) if rows else None
