"""Smaller holes in what upstream input can do, one regression test each."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from cli.time_bounds import parse_bounded
from consumers.file_ingest import FileIngest
from domain.application import BillingApplication
from domain.commands import PublishTariff
from projections.payment_history import BadCursor, decode_cursor, encode_cursor
from replay.targets import BadSnapshotName, check_label
from tests.unit.consumers.test_contract import encode

WHEN = datetime(2026, 3, 1, tzinfo=UTC)


def tariff(vat_rate: str) -> PublishTariff:
    return PublishTariff(
        event_id="t1",
        occurred_at=WHEN,
        tariff_id="T",
        currency="EUR",
        price_per_kwh=Decimal("0.3"),
        vat_rate=Decimal(vat_rate),
    )


def test_a_decimal_differing_in_the_29th_digit_is_other_content() -> None:
    first = tariff("0.1234567890123456789012345671")
    second = tariff("0.1234567890123456789012345672")
    assert first.content_sha256() != second.content_sha256()
    assert tariff("0.20").content_sha256() == tariff("0.2").content_sha256()


@pytest.mark.parametrize("label", ["ok\n", "ok\r\n", "ok ", "\nok"])
def test_a_snapshot_label_with_a_line_break_is_refused(label: str) -> None:
    with pytest.raises(BadSnapshotName):
        check_label(label)
    assert check_label("ok") == "ok"


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "0001-01-01", "9999-12-31T23:59:59-01:00", "9999-12-31"]
)
def test_times_near_year_1_or_9999_are_a_clear_error(value: str) -> None:
    with pytest.raises(ValueError, match="--as-of: must be from 1970-01-01"):
        parse_bounded(value, "--as-of")


def test_an_ordinary_time_without_offset_is_utc() -> None:
    assert parse_bounded("2026-03-01", "--from") == WHEN


def test_a_cursor_near_year_1_is_a_bad_cursor_not_a_traceback() -> None:
    with pytest.raises(BadCursor):
        decode_cursor(encode_cursor(datetime(1, 1, 1, tzinfo=UTC), "P1"))


def test_a_torn_last_dead_letter_line_does_not_break_later_file_ingest(tmp_path: Path) -> None:
    letters = tmp_path / "dead-letters.jsonl"
    letters.write_text('{"field": "", "reason": "x", "source": "f", "line": 1, "value_sha')
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_bytes(b"not json\n" + encode("payment.captured") + b"\n")
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    counters = FileIngest(app, upstream, letters).run()
    assert counters.dead_lettered == 1
    lines = letters.read_text().splitlines()
    assert len(lines) == 2 and '"line": 1' in lines[1]
    # And the file stays readable for the next run.
    assert FileIngest(app, upstream, letters).run().dead_lettered == 1
    assert len(letters.read_text().splitlines()) == 2
