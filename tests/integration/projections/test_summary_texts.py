"""The summary text payment_history stores with each row on PostgreSQL (`SUMMARY_TEXT`),
which the API's history pages join instead of writing each row's JSON: byte for byte the
JSON the page wrote before (and pydantic's `PaymentSummary`) over varied rows and session
zones; rewritten by every write of a row (payments, sessions priced later, captures,
refunds, reconciliation, a sharded rebuild's rejoin); and added to a table made before it
was, with every row's text, by the next projector to start."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

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
_TIME = st.one_of(
    st.none(),
    st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda moment: moment.replace(microsecond=0)),
)
_MINOR = st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62))
# A payment_history row of one customer: column -> value.
_ROW = st.fixed_dictionaries(
    {
        "created_at": _TIME,
        "status": _TEXT,
        "station_id": _TEXT,
        "connector_id": _TEXT,
        "session_id": _TEXT,
        "session_started_at": _TIME,
        "session_ended_at": _TIME,
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
    projector and the API share the DSN, so the text is written in the readers' zone."""
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


async def _pages(dsn: str) -> tuple[list[JsonPage], list[JsonPage], list[JsonPage]]:
    """The same pages from stored texts (alone and batched) and written by the query."""
    queries = [_page("C", 500), _page("C", 2), _page("nobody", 5)]
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
    return [PaymentSummary.model_validate(row).model_dump_json().encode() for row in loaded]


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
