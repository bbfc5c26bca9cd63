"""The payment history read model: one row per payment with its session, for PostgreSQL
(or SQLite on the embedded default), and its queries by customer, station and period.

A payment's row copies its session's columns from a helper table of sessions, refreshed
whenever either side changes, and its refunded amount from a helper table of refunds, so
the row is the same whichever of session, payment and refund events the ledger holds first.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.databases.errors import DatabaseBusy
from projections.databases.port import (
    Database,
    JsonFormat,
    JsonQuery,
    Row,
    to_json,
    upsert,
)
from projections.entities import Entity
from projections.fold import Rows
from projections.read_model import ReadModel, upsert_having
from projections.roaming_cdrs import ROAMING_CDRS, cdr_rows

log = logging.getLogger("evledger.projector")

_SESSION_COLUMNS = frozenset(
    {
        "session_id",
        "customer_id",
        "station_id",
        "connector_id",
        "tariff_id",
        "tariff_version",
        "started_at",
        "stopped_at",
        "energy_wh",
        "energy_kwh",
        "currency",
        "line_items",
        "subtotal_minor",
        "vat_minor",
        "total_minor",
    }
)
_PAYMENT_COLUMNS = frozenset(
    {
        "payment_id",
        "session_id",
        "session_key",
        "method",
        "currency",
        "authorised_minor",
        "captured_minor",
        "released_minor",
        "status",
        "failure_reason",
        "reconciliation",
        "discrepancy_minor",
        "created_at",
        "authorised_at",
        "captured_at",
        "failed_at",
        "voided_at",
    }
)
_REFUND_COLUMNS = frozenset({"payment_key", "status", "issued_minor"})

# payment_history column <- history_sessions column.
_COPIED_FROM_SESSION = {
    "customer_id": "customer_id",
    "station_id": "station_id",
    "connector_id": "connector_id",
    "session_started_at": "started_at",
    "session_ended_at": "stopped_at",
    "energy_wh": "energy_wh",
    "energy_kwh": "energy_kwh",
    "tariff_id": "tariff_id",
    "tariff_version": "tariff_version",
    "line_items": "line_items",
    "session_currency": "currency",
    "session_subtotal_minor": "subtotal_minor",
    "session_vat_minor": "vat_minor",
    "session_total_minor": "total_minor",
}

_DDL = (
    """CREATE TABLE IF NOT EXISTS history_sessions (
        session_key {text} PRIMARY KEY,
        session_id {text},
        customer_id {text},
        station_id {text},
        connector_id {text},
        tariff_id {text},
        tariff_version {int},
        started_at {ts},
        stopped_at {ts},
        energy_wh {bigint},
        energy_kwh {kwh},
        currency {text},
        line_items {json},
        subtotal_minor {bigint},
        vat_minor {bigint},
        total_minor {bigint}
    )""",
    """CREATE TABLE IF NOT EXISTS history_refunds (
        refund_key {text} PRIMARY KEY,
        payment_key {text},
        status {text},
        issued_minor {bigint}
    )""",
    "CREATE INDEX IF NOT EXISTS history_refunds_by_payment ON history_refunds (payment_key)",
    """CREATE TABLE IF NOT EXISTS payment_history (
        payment_key {text} PRIMARY KEY,
        payment_id {text},
        session_key {text},
        session_id {text},
        customer_id {text},
        station_id {text},
        connector_id {text},
        session_started_at {ts},
        session_ended_at {ts},
        energy_wh {bigint},
        energy_kwh {kwh},
        tariff_id {text},
        tariff_version {int},
        line_items {json},
        session_currency {text},
        session_subtotal_minor {bigint},
        session_vat_minor {bigint},
        session_total_minor {bigint},
        method {text},
        currency {text},
        authorised_minor {bigint},
        captured_minor {bigint},
        released_minor {bigint},
        refunded_minor {bigint} NOT NULL DEFAULT 0,
        net_minor {bigint} GENERATED ALWAYS AS (COALESCE(captured_minor, 0) - refunded_minor)
            STORED,
        status {text},
        failure_reason {text},
        reconciliation {text},
        discrepancy_minor {bigint},
        created_at {ts},
        authorised_at {ts},
        captured_at {ts},
        failed_at {ts},
        voided_at {ts}
    )""",
    # Newest-first pages per customer, per station and per period (keyset on the same order).
    "CREATE INDEX IF NOT EXISTS payment_history_by_customer"
    " ON payment_history (customer_id, created_at DESC, payment_id DESC)",
    "CREATE INDEX IF NOT EXISTS payment_history_by_station"
    " ON payment_history (station_id, created_at DESC, payment_id DESC)",
    "CREATE INDEX IF NOT EXISTS payment_history_by_time"
    " ON payment_history (created_at DESC, payment_id DESC)",
    "CREATE UNIQUE INDEX IF NOT EXISTS payment_history_by_payment_id"
    " ON payment_history (payment_id)",
    "CREATE INDEX IF NOT EXISTS payment_history_by_session ON payment_history (session_key)",
    ROAMING_CDRS.ddl(),
)

HISTORY_COLUMNS = (
    "payment_id",
    "created_at",
    "status",
    "customer_id",
    "station_id",
    "connector_id",
    "session_id",
    "session_started_at",
    "session_ended_at",
    "energy_kwh",
    "tariff_id",
    "tariff_version",
    "currency",
    "authorised_minor",
    "captured_minor",
    "refunded_minor",
    "net_minor",
    "session_total_minor",
    "reconciliation",
    "discrepancy_minor",
    "method",
    "failure_reason",
    "line_items",
)

# A history page's item: every history column but the line items, each written as the
# API's summary writes it. Where the database writes JSON (`Dialect.json_text`), each row
# keeps that object's text in SUMMARY_TEXT, rewritten whenever the row is, so that a page
# joins stored texts instead of writing each row's (most of a page's database CPU).
_SUMMARY_TIMES = ("created_at", "session_started_at", "session_ended_at")
SUMMARY_FORMATS: dict[str, JsonFormat] = {
    name: JsonFormat.TIME
    if name in _SUMMARY_TIMES
    else JsonFormat.DECIMAL
    if name == "energy_kwh"
    else JsonFormat.PLAIN
    for name in HISTORY_COLUMNS
    if name != "line_items"
}
SUMMARY_TEXT = "summary_json"
# The order matters as well as the formats: the text is an object of the columns in order.
_SUMMARY_ITEMS = tuple(SUMMARY_FORMATS.items())
_HAS_SUMMARY_TEXT = (
    "SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()"
    f" AND table_name = 'payment_history' AND column_name = '{SUMMARY_TEXT}'"
)
_ADD_SUMMARY_TEXT = f"ALTER TABLE payment_history ADD COLUMN IF NOT EXISTS {SUMMARY_TEXT} TEXT"
_ADD_TRIES, _ADD_WAIT_MS = 10, 500
_WITHOUT_TEXT = f"SELECT 1 FROM payment_history WHERE {SUMMARY_TEXT} IS NULL LIMIT 1"
# One chunk of a fill: the next rows by key after `{after}`'s, their texts written where
# missing (`{text}`: the expression); the chunk's last key, its rows, the texts written.
_FILL_CHUNK, _PROGRESS_S = 10_000, 3.0
_FILL_CHUNK_SQL = (
    "WITH chunk AS (SELECT payment_key FROM payment_history {after}"
    " ORDER BY payment_key LIMIT ?),"
    f" filled AS (UPDATE payment_history SET {SUMMARY_TEXT} = {{text}} FROM chunk"
    " WHERE payment_history.payment_key = chunk.payment_key"
    f" AND payment_history.{SUMMARY_TEXT} IS NULL RETURNING 1)"
    " SELECT (SELECT max(payment_key) FROM chunk) AS last,"
    " (SELECT count(*) FROM chunk) AS seen, (SELECT count(*) FROM filled) AS filled"
)

# The derived columns' new values (a payment's session columns, its issued refunds' sum),
# with the row's own summary columns beside them, by payment key: `{where}` picks the rows.
_DERIVED_VALUES = (
    "SELECT t.payment_key, "
    + ", ".join(f"s.{source} AS {column}" for column, source in _COPIED_FROM_SESSION.items())
    + ", (SELECT COALESCE(SUM(r.issued_minor), 0) FROM history_refunds r"
    " WHERE r.payment_key = t.payment_key AND r.status = 'issued') AS refunded_minor, "
    + ", ".join(
        f"t.{column}"
        for column in SUMMARY_FORMATS
        if column not in _COPIED_FROM_SESSION and column not in ("refunded_minor", "net_minor")
    )
    + " FROM payment_history t LEFT JOIN history_sessions s ON s.session_key = t.session_key"
    " {where}"
)
# The rows a batch touched: its payments, its sessions' payments, its refunds' payments.
_TOUCHED = (
    " WHERE t.payment_key IN (SELECT payment_key FROM payment_history WHERE payment_key {in_keys}"
    " UNION SELECT payment_key FROM payment_history WHERE session_key {in_keys}"
    " UNION SELECT payment_key FROM history_refunds WHERE refund_key {in_keys})"
)


def _derive(db: Database, where: str = "", params: Sequence[Any] = ()) -> None:
    """Recompute the derived columns of the rows ``where`` picks, and their summary text
    where the database writes one, in one statement: one new version of each row."""
    values = _DERIVED_VALUES.replace("{where}", where)
    assigned = [*_COPIED_FROM_SESSION, "refunded_minor"]
    written = db.dialect.json_text
    if written is not None:
        # The text of the row as it will be: its new values, its net amount from them.
        net = "COALESCE(d.captured_minor, 0) - d.refunded_minor AS net_minor"
        # OFFSET 0 keeps the values a subquery of their own: pulled up, the refunded sum's
        # subquery would be run for each of its three uses (refunded, net, the text).
        values = (
            f"SELECT m.*, {written(SUMMARY_FORMATS)} AS {SUMMARY_TEXT}"
            f" FROM (SELECT d.*, {net} FROM ({values} OFFSET 0) d) m"
        )
        assigned.append(SUMMARY_TEXT)
    db.execute(
        "UPDATE payment_history SET "
        + ", ".join(f"{column} = n.{column}" for column in assigned)
        + f" FROM ({values}) n WHERE payment_history.payment_key = n.payment_key",
        params,
    )


def _write_summaries(db: Database, where: str) -> None:
    """Write the summary text of the rows ``where`` selects, where the database has one."""
    written = db.dialect.json_text
    if written is not None:
        expression = written(SUMMARY_FORMATS)
        db.execute(f"UPDATE payment_history SET {SUMMARY_TEXT} = {expression}{where}")


def add_summary_texts(db: Database) -> None:
    """Give payment_history its summary text column, with every row's text, where the
    database writes JSON: a table made before the column was is migrated in place by the
    first projector (or `bench/fill.py`) to start, pages answering meanwhile (a row without
    its text yet is written by the page's query). Safe while another projector does it."""
    if db.dialect.json_text is None:
        return
    if not db.execute(_HAS_SUMMARY_TEXT):
        _add_summary_column(db)
    if db.execute(_WITHOUT_TEXT):
        fill_summary_texts(db)


def _add_summary_column(db: Database) -> None:
    """The column alone, in a transaction of its own: adding a column with no default
    changes the catalogue only, but waits for the table's readers and blocks new ones while
    it waits, so it gives up waiting soon and tries again a little later."""
    for attempt in range(1, _ADD_TRIES + 1):
        try:
            with db.transaction():
                db.execute(f"SET LOCAL lock_timeout = '{_ADD_WAIT_MS}ms'")
                db.execute(_ADD_SUMMARY_TEXT)
            return
        except DatabaseBusy as error:
            if attempt == _ADD_TRIES:
                raise DatabaseBusy(
                    f"payment_history stayed busy through {_ADD_TRIES} tries to add its"
                    f" {SUMMARY_TEXT} column ({error}); start the projector again when the"
                    " long reads of that table have ended"
                ) from error
            log.warning("payment_history is busy (%s); adding %s again", error, SUMMARY_TEXT)
            time.sleep(attempt * 0.5)


def fill_summary_texts(db: Database, chunk: int = _FILL_CHUNK) -> None:
    """Write the summary text of every row that has none (rows inserted by other means than
    the projector: a migration, a benchmark's fill), ``chunk`` rows by key per transaction
    (row locks only, held briefly), with a progress line every few seconds."""
    written = db.dialect.json_text
    if written is None:
        return
    statement = _FILL_CHUNK_SQL.replace("{text}", written(SUMMARY_FORMATS))
    last: str | None = None
    seen = filled = 0
    shown = time.monotonic()
    while True:
        after = "" if last is None else "WHERE payment_key > ?"
        params: list[Any] = [chunk] if last is None else [last, chunk]
        (done,) = db.execute(statement.replace("{after}", after), params)
        if done["last"] is None:
            break
        last, seen, filled = done["last"], seen + done["seen"], filled + done["filled"]
        if time.monotonic() - shown >= _PROGRESS_S:
            shown = time.monotonic()
            log.info("payment_history: %s summary texts written, %s rows read", filled, seen)
    log.info("payment_history: %s summary texts written (%s rows read)", filled, seen)


# The helper tables a batch upserts: entity, table, key column, value columns.
_WRITTEN = (
    (Entity.SESSION, "history_sessions", "session_key", _SESSION_COLUMNS),
    (Entity.PAYMENT, "payment_history", "payment_key", _PAYMENT_COLUMNS),
    (Entity.REFUND, "history_refunds", "refund_key", _REFUND_COLUMNS),
)


class PaymentHistory(ReadModel):
    """One row per payment with its session, refunds and reconciliation; and one per
    roaming CDR (OCPI) with its re-priced total and reconciliation."""

    name = "payment_history"
    entities = (Entity.SESSION, Entity.PAYMENT, Entity.REFUND, Entity.ROAMING_CDR)
    ddl = _DDL
    tables = {
        "payment_history": "payment_key",
        "history_sessions": "session_key",
        "history_refunds": "refund_key",
        ROAMING_CDRS.name: ROAMING_CDRS.order,
    }

    def write(self, rows: dict[Entity, Rows]) -> None:
        sessions, payments, refunds = (
            upsert_having(self.db, table, key, rows[entity], columns)
            for entity, table, key, columns in _WRITTEN
        )
        upsert(self.db, ROAMING_CDRS.name, ROAMING_CDRS.key, cdr_rows(rows[Entity.ROAMING_CDR]))
        # Derived columns, recomputed from the helper tables for every row the batch touched.
        if self.rejoins_each_batch and (payments or sessions or refunds):
            _derive(self.db, _TOUCHED, [to_json(payments), to_json(sessions), to_json(refunds)])

    def create(self) -> None:
        super().create()
        add_summary_texts(self.db)

    def rejoin(self) -> None:
        _derive(self.db)

    def drop_statements(self) -> Sequence[str]:
        return [f"DROP TABLE IF EXISTS {table}" for table in self.tables]


# --- queries -----------------------------------------------------------------------------


class BadCursor(ValueError):
    """A --after cursor that this query did not hand out."""


@dataclass(frozen=True)
class HistoryPage:
    rows: list[Row]
    next_cursor: str | None


def encode_cursor(created_at: datetime, payment_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), payment_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, payment_id = json.loads(base64.urlsafe_b64decode(padded))
        moment = datetime.fromisoformat(created_at)
        if moment.tzinfo is None or not 1970 <= moment.year < 3000:
            raise ValueError(f"time out of range: {created_at!r}")
        if not isinstance(payment_id, str) or "\x00" in payment_id:
            raise ValueError("no payment id has that")  # nor can a database text hold NUL
        # A lone surrogate (JSON's "\ud800") is no text a driver can send: it would fail in
        # the driver's encoding, not here.
        payment_id.encode()
        # In UTC: an offset with seconds (which Python reads) is refused by PostgreSQL as
        # text, as a batch of pages binds its times (api/page_batches.py).
        return moment.astimezone(UTC), payment_id
    except (ValueError, TypeError, RecursionError) as error:
        raise BadCursor(f"not a history cursor: {cursor!r}") from error


# Newest first; a page's cursor is its last row's values of CURSOR_COLUMNS.
HISTORY_ORDER = "created_at DESC, payment_id DESC"
CURSOR_COLUMNS = ("created_at", "payment_id")


@dataclass(frozen=True)
class HistoryQuery:
    """One page's statement and parameters, the same for every database and driver."""

    statement: str
    params: list[Any]
    limit: int

    def page(self, rows: list[Row]) -> HistoryPage:
        last = tuple(rows[-1][column] for column in CURSOR_COLUMNS) if rows else None
        return HistoryPage(rows, self.next_cursor(len(rows), last))

    def next_cursor(self, count: int, last: tuple[Any, ...] | None) -> str | None:
        """The cursor of the page after one of ``count`` rows, ``last`` the last row's
        values of CURSOR_COLUMNS; None when this was the last page."""
        if count == self.limit and last is not None:
            return encode_cursor(*last)
        return None

    def as_json(self, columns: Mapping[str, JsonFormat]) -> JsonQuery:
        """This page (its statement selecting ``COLUMNS``) as JSON objects of ``columns``
        with their cursor's columns, for `AsyncDatabase.json_rows`."""
        # The stored text where the columns are the summary's (a few dozen ns to compare).
        stored = SUMMARY_TEXT if tuple(columns.items()) == _SUMMARY_ITEMS else None
        return JsonQuery(
            self.statement, self.params, columns, HISTORY_ORDER, CURSOR_COLUMNS, stored
        )


@dataclass(frozen=True)
class HistoryFilter:
    """Which payments a history page holds: a customer's or a station's (or all), created
    from ``period_from`` inclusive to ``period_to`` exclusive, after the ``after`` cursor;
    passed whole from the CLI and the API down to the query."""

    customer_id: str | None = None
    station_id: str | None = None
    period_from: datetime | None = None
    period_to: datetime | None = None
    limit: int = 50
    after: str | None = None


def history_query(
    param: Callable[[Any], Any],
    wanted: HistoryFilter,
    columns: Sequence[str] = HISTORY_COLUMNS,
) -> HistoryQuery:
    """Payments newest first (by creation time); ``param`` is the database's ``param`` (how
    it binds times)."""
    conditions: list[str] = []
    params: list[Any] = []
    if wanted.customer_id is not None:
        conditions.append("customer_id = ?")
        params.append(wanted.customer_id)
    if wanted.station_id is not None:
        conditions.append("station_id = ?")
        params.append(wanted.station_id)
    if wanted.period_from is not None:
        conditions.append("created_at >= ?")
        params.append(param(wanted.period_from))
    if wanted.period_to is not None:
        conditions.append("created_at < ?")
        params.append(param(wanted.period_to))
    if wanted.after is not None:
        created_at, payment_id = decode_cursor(wanted.after)
        conditions.append("(created_at, payment_id) < (?, ?)")
        params.extend([param(created_at), payment_id])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    statement = (
        f"SELECT {', '.join(columns)} FROM payment_history {where} ORDER BY {HISTORY_ORDER} LIMIT ?"
    )
    return HistoryQuery(statement, [*params, wanted.limit], wanted.limit)


def query_history(db: Database, wanted: HistoryFilter) -> HistoryPage:
    """Payments newest first (by creation time); pass the returned cursor as ``after`` for
    the next page."""
    query = history_query(db.param, wanted)
    return query.page(db.execute(query.statement, query.params))


def payment(db: Database, payment_id: str) -> Row | None:
    rows = db.execute(
        f"SELECT {', '.join(HISTORY_COLUMNS)} FROM payment_history WHERE payment_id = ?",
        [payment_id],
    )
    return rows[0] if rows else None
