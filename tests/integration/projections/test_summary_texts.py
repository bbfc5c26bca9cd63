"""The summary text payment_history stores with each row on PostgreSQL (`SUMMARY_TEXT`),
which the API's history pages join instead of writing each row's JSON: byte for byte the
JSON the page writes (and pydantic's `PaymentSummary` in a UTC session) over varied rows,
whatever the zones of the projector's and the API's sessions; rewritten by every write of
a row (payments, sessions priced later, captures, refunds, reconciliation, a sharded
rebuild's rejoin); added to a table made before it was, with every row's text, by the next
projector to start, pages answering meanwhile; pages of a table without it written."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.conninfo import make_conninfo

from api.schemas import SUMMARY_FORMATS as API_SUMMARY_FORMATS
from api.schemas import PaymentSummary
from domain.application import BillingApplication
from domain.commands import ApproveRefund, IssueRefund, RequestRefund
from projections.databases.port import COLUMNS, JsonPage, JsonQuery
from projections.databases.postgres import PostgresDatabase
from projections.databases.postgres_async import AsyncPostgresPool
from projections.databases.postgres_json import json_text
from projections.payment_history import (
    SUMMARY_FORMATS,
    SUMMARY_TEXT,
    HistoryFilter,
    PaymentHistory,
    fill_summary_texts,
    history_query,
)
from projections.runner import LedgerSource, Projector
from tests.integration.projections.databases.test_json_rows import TIMES
from tests.unit.projections.scenario import at, commands

pytestmark = pytest.mark.postgres

# Rows whose stored text is not the text written from their columns now (or is missing).
_STALE = (
    f"SELECT payment_id FROM payment_history WHERE {SUMMARY_TEXT} IS NULL"
    f" OR {SUMMARY_TEXT} <> {json_text(SUMMARY_FORMATS)}"
)
_TEXT = st.one_of(
    st.none(), st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
)
_MINOR = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))
# A payment_history row of one customer: column -> value.
_ROW = st.fixed_dictionaries(
    {
        "created_at": TIMES,
        "status": _TEXT,
        "station_id": _TEXT,
        "connector_id": _TEXT,
        "session_id": _TEXT,
        "session_started_at": TIMES,
        "session_ended_at": TIMES,
        "energy_kwh": st.one_of(
            st.none(), st.decimals(min_value=0, max_value=10**11 - 1, places=3, allow_nan=False)
        ),
        "tariff_id": _TEXT,
        "tariff_version": st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)),
        "currency": _TEXT,
        "authorised_minor": _MINOR,
        "captured_minor": _MINOR,
        "refunded_minor": st.integers(min_value=-(2**62), max_value=2**62),
        "session_total_minor": _MINOR,
        "reconciliation": _TEXT,
        "discrepancy_minor": _MINOR,
        "method": _TEXT,
        "failure_reason": _TEXT,
    }
)


@pytest.fixture(params=["UTC", "Asia/Kolkata"])
def dsn(request: pytest.FixtureRequest, pg_dsn: str, pg_schema: str) -> Iterator[str]:
    """The schema's DSN (its payment history created), the session in one time zone: the
    text is the same in every zone (times in UTC), as the API's pages are."""
    options = f"-csearch_path={pg_schema} -cTimeZone={request.param}"
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    PaymentHistory(db).create()
    db.close()
    yield make_conninfo(pg_dsn, options=options)


def _page(customer: str, limit: int) -> JsonQuery:
    wanted = HistoryFilter(customer_id=customer, limit=limit)
    return history_query(lambda value: value, wanted, columns=(COLUMNS,)).as_json(
        API_SUMMARY_FORMATS
    )


async def _pages(
    dsn: str, customer: str = "C"
) -> tuple[list[JsonPage], list[JsonPage], list[JsonPage]]:
    """The same pages from stored texts (alone and batched) and written by the query."""
    queries = [_page(customer, 500), _page(customer, 2), _page("nobody", 5)]
    pool = AsyncPostgresPool(dsn, size=1)
    await pool.open()
    try:
        async with pool.lend() as db:
            stored = [JsonPage.of(await db.json_rows(query)) for query in queries]
            batched = await db.json_pages(queries)
            written = [
                JsonPage.of(await db.json_rows(dataclasses.replace(query, stored=None)))
                for query in queries
            ]
    finally:
        await pool.close()
    return stored, batched, written


def _insert(dsn: str, rows: list[dict[str, Any]]) -> list[bytes]:
    """``rows`` as customer C's payments, their texts written; pydantic's JSON of each row
    as the driver loads it, in the page's order."""
    db = PostgresDatabase(dsn)
    try:
        db.execute("DELETE FROM payment_history")
        for index, row in enumerate(rows):
            values = {"payment_key": f"pk-{index}", "payment_id": f"P-{index}", **row}
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            db.execute(
                f"INSERT INTO payment_history ({names}, customer_id) VALUES ({marks}, 'C')",
                list(values.values()),
            )
        fill_summary_texts(db)
        assert db.execute(_STALE) == []
        loaded = db.execute(
            history_query(db.param, HistoryFilter(customer_id="C", limit=500)).statement,
            ["C", 500],
        )
    finally:
        db.close()
    # As the API's sessions (in UTC) load them, whatever the zone of the writer's session.
    in_utc = [{name: _utc(value) for name, value in row.items()} for row in loaded]
    return [PaymentSummary.model_validate(row).model_dump_json().encode() for row in in_utc]


def _utc(value: Any) -> Any:
    return value.astimezone(UTC) if isinstance(value, datetime) else value


def test_the_projection_s_summary_columns_are_the_api_s() -> None:
    assert SUMMARY_FORMATS == API_SUMMARY_FORMATS
    assert _page("C", 1).stored == SUMMARY_TEXT


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=st.lists(_ROW, max_size=8))
def test_stored_pages_are_byte_for_byte_the_written_ones(
    dsn: str, rows: list[dict[str, Any]]
) -> None:
    expected = _insert(dsn, rows)
    stored, batched, written = asyncio.run(_pages(dsn))
    assert stored == batched == written
    assert stored[0].items == b",".join(expected)
    assert stored[0].count == len(rows)


def test_the_values_that_matter_most(dsn: str) -> None:
    moment = datetime(2024, 5, 1, 10, 0, 0, 400000, tzinfo=UTC)
    rows = [
        {"created_at": moment, "status": 'a"\\/\x01é', "energy_kwh": Decimal("20.000")},
        {"created_at": moment.replace(microsecond=0), "captured_minor": 988},
        {"created_at": None, "refunded_minor": 5, "captured_minor": None},
    ]
    expected = _insert(dsn, rows)
    stored, _, written = asyncio.run(_pages(dsn))
    assert stored == written
    assert stored[0].items == b",".join(expected)
    assert b'"net_minor":-5' in stored[0].items


def _project_scenario(db: PostgresDatabase, batch_size: int) -> list[str]:
    """The known scenario (sessions priced before and after their payments, captures,
    failures, voids, reconciliation) and refunds of P1, command by command: after each,
    no row's text is stale. P1's text at each step."""
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    history = PaymentHistory(db)
    projector = Projector(LedgerSource.of(app), [history], batch_size=batch_size)
    projector.create()
    texts: list[str] = []
    more = [
        RequestRefund(
            event_id="req-RA",
            occurred_at=at(900),
            refund_id="RA",
            payment_id="P1",
            amount_minor=100,
            reason="service_quality",
        ),
        ApproveRefund(event_id="ok-RA", occurred_at=at(910), refund_id="RA", decided_by="ana"),
        IssueRefund(event_id="pay-RA", occurred_at=at(920), refund_id="RA", processor_ref="x1"),
    ]
    for command in [*commands(), *more]:
        app.handle(command)
        projector.run_until_idle()
        assert db.execute(_STALE) == []
        found = db.execute(f"SELECT {SUMMARY_TEXT} FROM payment_history WHERE payment_id = 'P1'")
        if found and (not texts or texts[-1] != found[0][SUMMARY_TEXT]):
            texts.append(found[0][SUMMARY_TEXT])
    return texts


@pytest.mark.parametrize("batch_size", [1, 4])
def test_every_write_of_a_row_rewrites_its_text(pg: PostgresDatabase, batch_size: int) -> None:
    texts = _project_scenario(pg, batch_size)
    assert len(pg.execute("SELECT 1 FROM payment_history")) >= 4
    # P1: authorised, its session priced, captured, then a refund issued against it.
    assert len(texts) >= 3
    assert '"refunded_minor":0' in texts[-2] and '"refunded_minor":100' in texts[-1]
    assert '"net_minor":888' in texts[-1] and '"reconciliation":"exact"' in texts[-1]


def test_a_rejoin_rewrites_every_text(pg: PostgresDatabase) -> None:
    _project_scenario(pg, 4)
    pg.execute(f"UPDATE payment_history SET {SUMMARY_TEXT} = NULL WHERE payment_id = 'P1'")
    pg.execute(f"UPDATE payment_history SET {SUMMARY_TEXT} = 'stale' WHERE payment_id <> 'P1'")
    PaymentHistory(pg).rejoin()
    assert pg.execute(_STALE) == []


def test_a_table_made_before_the_text_gets_it_with_every_row_s(pg: PostgresDatabase) -> None:
    _project_scenario(pg, 4)
    before = pg.execute(f"SELECT payment_id, {SUMMARY_TEXT} FROM payment_history ORDER BY 1")
    pg.execute(f"ALTER TABLE payment_history DROP COLUMN {SUMMARY_TEXT}")  # as made before
    PaymentHistory(pg).create()
    after = pg.execute(f"SELECT payment_id, {SUMMARY_TEXT} FROM payment_history ORDER BY 1")
    assert after == before and all(row[SUMMARY_TEXT] for row in after)
    PaymentHistory(pg).create()  # once only: a second start finds the column
    assert pg.execute(f"SELECT payment_id, {SUMMARY_TEXT} FROM payment_history ORDER BY 1") == (
        before
    )


def test_the_text_only_for_the_summary_s_columns_in_their_order() -> None:
    reordered = dict(reversed(list(API_SUMMARY_FORMATS.items())))
    wanted = HistoryFilter(customer_id="C", limit=1)
    query = history_query(lambda value: value, wanted, columns=(COLUMNS,))
    assert query.as_json(reordered).stored is None


def _project_in(dsn: str) -> None:
    """The known scenario projected through ``dsn`` (its schema's tables made already)."""
    db = PostgresDatabase(dsn)
    try:
        _project_scenario(db, 37)
    finally:
        db.close()


def _made(pg_dsn: str, pg_schema: str) -> str:
    """The schema's DSN, its payment history made."""
    db = PostgresDatabase(pg_dsn, schema=pg_schema)
    PaymentHistory(db).create()
    db.close()
    return _zoned(pg_dsn, pg_schema, "UTC")


def _zoned(pg_dsn: str, pg_schema: str, zone: str) -> str:
    return make_conninfo(pg_dsn, options=f"-csearch_path={pg_schema} -cTimeZone={zone}")


def test_projector_and_api_in_different_zones(pg_dsn: str, pg_schema: str) -> None:
    """Texts stored by a projector in one zone, pages read by a server whose DSN says
    another: every time of every page (stored, batched, written) in UTC with `Z`."""
    _made(pg_dsn, pg_schema)
    _project_in(_zoned(pg_dsn, pg_schema, "Asia/Kolkata"))
    stored, batched, written = asyncio.run(
        _pages(_zoned(pg_dsn, pg_schema, "America/New_York"), "C1")
    )
    assert stored == batched == written
    items = stored[0].items
    assert stored[0].count >= 2 and b'Z"' in items and b"+05:30" not in items
    assert b"-05:00" not in items and b"-04:00" not in items


async def _session_zone(dsn: str) -> list[dict[str, Any]]:
    pool = AsyncPostgresPool(dsn, size=1)
    await pool.open()
    try:
        async with pool.lend() as db:
            return await db.execute("SELECT current_setting('TimeZone') AS zone")
    finally:
        await pool.close()


def test_the_api_s_sessions_are_in_utc(pg_dsn: str, pg_schema: str) -> None:
    """So that every answer (a payment's detail too, loaded by the driver) spells UTC."""
    assert asyncio.run(_session_zone(_zoned(pg_dsn, pg_schema, "Asia/Kolkata"))) == [
        {"zone": "UTC"}
    ]


def test_pages_of_a_table_without_the_column_are_written(pg: PostgresDatabase) -> None:
    """A server over a database an older version made (or a snapshot of one): its pages
    are written by the query, the same bytes, found missing once and remembered."""
    _project_scenario(pg, 4)
    assert pg.dsn is not None and pg.schema is not None
    dsn = make_conninfo(pg.dsn, options=f"-csearch_path={pg.schema}")
    before = asyncio.run(_pages(dsn, "C1"))
    pg.execute(f"ALTER TABLE payment_history DROP COLUMN {SUMMARY_TEXT}")
    stored, batched, written = asyncio.run(_pages(dsn, "C1"))
    assert stored == batched == written == before[0] and stored[0].count >= 2


def _fill_later(dsn: str, rows: int) -> None:
    """``rows`` payments in a table made before the column was (no texts)."""
    db = PostgresDatabase(dsn)
    try:
        db.execute(f"ALTER TABLE payment_history DROP COLUMN {SUMMARY_TEXT}")
        db.execute(
            "INSERT INTO payment_history (payment_key, payment_id, customer_id, created_at)"
            " SELECT 'k' || i, 'P' || i, 'C' || mod(i, 100), now()"
            " FROM generate_series(1, ?) i",
            [rows],
        )
    finally:
        db.close()


def _without_text(dsn: str) -> int | None:
    """How many rows have no text yet; None before the column is there."""
    with psycopg.connect(dsn) as connection:
        try:
            found = connection.execute(
                f"SELECT count(*) FROM payment_history WHERE {SUMMARY_TEXT} IS NULL"
            ).fetchone()
        except psycopg.errors.UndefinedColumn:
            return None
    assert found is not None
    return int(found[0])


def test_pages_answer_while_a_migration_fills_the_texts(pg_dsn: str, pg_schema: str) -> None:
    dsn = _made(pg_dsn, pg_schema)
    _fill_later(dsn, 200_000)
    migrating = PostgresDatabase(dsn)
    migration = threading.Thread(target=lambda: PaymentHistory(migrating).create())
    migration.start()
    try:
        # Some chunks committed, others to come: the fill is under way.
        while migration.is_alive() and not 0 < (_without_text(dsn) or 0) < 200_000:
            time.sleep(0.02)
        assert migration.is_alive(), "the fill ended before a page could be asked for"
        with psycopg.connect(dsn) as connection:
            # A page blocked by the fill fails here instead of waiting for its end.
            connection.execute("SET statement_timeout = '5s'")
            page = connection.execute(
                "SELECT payment_id FROM payment_history WHERE customer_id = 'C1' LIMIT 5"
            ).fetchall()
        assert len(page) == 5
        assert (_without_text(dsn) or 0) > 0, "the page answered only once the fill ended"
    finally:
        migration.join()
        migrating.close()
    assert _without_text(dsn) == 0


def test_projectors_starting_together_migrate_once(pg_dsn: str, pg_schema: str) -> None:
    dsn = _made(pg_dsn, pg_schema)
    _fill_later(dsn, 30_000)
    errors: list[BaseException] = []

    def start() -> None:
        each = PostgresDatabase(dsn)
        try:
            PaymentHistory(each).create()
        except BaseException as error:  # reported by the assertion below
            errors.append(error)
        finally:
            each.close()

    threads = [threading.Thread(target=start) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert _without_text(dsn) == 0
