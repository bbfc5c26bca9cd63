"""Triage and accounting of ingest batches, without services."""

from __future__ import annotations

import json

import pytest

from consumers.counters import AccountingError, IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.metrics import metrics_text
from consumers.producer import routing_key
from consumers.triage import SourceRecord, triage
from domain import commands


def record(offset: int, value: bytes) -> SourceRecord:
    return SourceRecord("evledger.ingest", 0, offset, b"k", value, 1_700_000_000_000)


CAPTURE = json.dumps(
    {
        "type": "payment.captured",
        "event_id": "e1",
        "occurred_at": "2026-03-01T10:00:00Z",
        "payment_id": "P1",
        "amount_minor": 100,
    }
).encode()


def test_valid_records_become_commands_and_the_rest_dead_letters_in_order() -> None:
    sorted_out = triage(
        [
            record(10, CAPTURE),
            record(11, b"{not json"),
            record(12, b'{"type": "payment.captured"}'),
            record(13, b"\x00\x01binary"),
        ]
    )
    assert [(r.offset, type(c)) for r, c in sorted_out.commands] == [(10, commands.CapturePayment)]
    assert [(d.source_offset, d.field) for d in sorted_out.dead_letters] == [
        (11, ""),
        (12, "event_id"),
        (13, ""),
    ]
    assert sorted_out.dead_letters[0].value == b"{not json"
    assert "invalid JSON" in sorted_out.dead_letters[0].reason


def test_a_value_the_domain_refuses_is_a_dead_letter_too() -> None:
    bad_currency = json.dumps(
        {
            "type": "payment.authorized",
            "event_id": "e2",
            "occurred_at": "2026-03-01T10:00:00Z",
            "payment_id": "P1",
            "session_id": "S1",
            "amount_minor": 100,
            "currency": "XYZ",
            "method": "card",
        }
    ).encode()
    sorted_out = triage([record(1, bad_currency)])
    assert sorted_out.commands == []
    (letter,) = sorted_out.dead_letters
    assert "XYZ" in letter.reason


def test_dead_letter_headers_round_trip_and_keep_the_original_bytes() -> None:
    letter = record(42, b"\xff garbage").dead_letter("amount_minor", "must be >= 0")
    again = DeadLetter.from_headers(letter.key, letter.value, letter.headers())
    assert again == letter
    assert again.value == b"\xff garbage"


def test_counters_add_up_or_fail_loudly() -> None:
    counters = IngestCounters(consumed=5, applied=3, duplicates=1, rejected=1, dead_lettered=1)
    counters.check()
    counters.add(IngestCounters(consumed=1, dead_lettered=1))
    counters.check()
    assert "evledger_ingest_consumed_total 6.0" in metrics_text(counters)
    with pytest.raises(AccountingError):
        IngestCounters(consumed=2, applied=1).check()
    with pytest.raises(AccountingError):
        IngestCounters(consumed=1, applied=1, rejected=2).check()


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ({"type": "session.started", "session_id": "S1", "tariff_id": "T"}, b"S1"),
        ({"type": "payment.authorized", "session_id": "S1", "payment_id": "P1"}, b"P1"),
        ({"type": "refund.requested", "refund_id": "R1", "payment_id": "P1"}, b"P1"),
        ({"type": "refund.approved", "refund_id": "R1"}, b"R1"),
        ({"type": "tariff.published", "tariff_id": "T"}, b"T"),
        ({"type": "mystery"}, None),
    ],
)
def test_routing_keys_keep_one_objects_messages_together(
    message: dict[str, str], key: bytes | None
) -> None:
    assert routing_key(json.dumps(message).encode()) == key


def test_routing_key_of_garbage_is_none() -> None:
    assert routing_key(b"\xff\xfe") is None
    assert routing_key(b"[1]") is None
