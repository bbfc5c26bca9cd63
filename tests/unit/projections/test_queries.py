"""Query helpers that need no database: history cursors, the SELECT-only check, the report."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from projections.analytics_queries import QueryRefused, check_select
from projections.payment_history import BadCursor, decode_cursor, encode_cursor


def test_history_cursor_round_trips() -> None:
    moment = datetime(2024, 5, 6, 10, 0, 0, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(moment, "P-1")) == (moment, "P-1")


@pytest.mark.parametrize("cursor", ["", "garbage", "W10"])
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(cursor)


def _made(created_at: str, payment_id: object) -> str:
    """A cursor made by hand, not by encode_cursor."""
    raw = json.dumps([created_at, payment_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("payment_id", ["P\x001", 5, None, "P\ud800"])
def test_a_cursor_naming_no_possible_payment_is_refused(payment_id: object) -> None:
    with pytest.raises(BadCursor):
        decode_cursor(_made("2024-05-06T10:00:00+00:00", payment_id))


def test_a_cursor_s_time_comes_back_in_utc_even_with_an_offset_of_seconds() -> None:
    # PostgreSQL refuses such an offset in a batch of pages' time array.
    moment, _ = decode_cursor(_made("2024-05-06T10:00:00+05:00:00.5", "P-1"))
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0
    assert moment == datetime(2024, 5, 6, 4, 59, 59, 500000, tzinfo=UTC)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "with a as (select 1) select * from a",
        "FROM trial_balance",
        "DESCRIBE fact_sessions",
    ],
)
def test_selects_are_allowed(sql: str) -> None:
    check_select(sql)


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("DELETE FROM fact_sessions", "got DELETE"),
        ("SELECT 1; DROP TABLE fact_sessions", "exactly one statement"),
        ("COPY fact_sessions TO 'x.csv'", "got COPY"),
        ("ATTACH 'other.db'", "got ATTACH"),
        ("SELEKT 1", "not valid SQL"),
    ],
)
def test_anything_else_is_refused(sql: str, reason: str) -> None:
    with pytest.raises(QueryRefused, match=reason):
        check_select(sql)
