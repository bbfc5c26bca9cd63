"""The contract's bounds: what the schema says is what is
accepted, and nothing accepted is beyond what a read model can hold."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from consumers.contract import (
    MAX_AMOUNT_MINOR,
    MAX_ENERGY_WINDOWS,
    MAX_ID_LENGTH,
    MAX_METER_WH,
    MAX_MINUTES,
    ContractViolation,
    parse_message,
)
from consumers.strict_json import MAX_DEPTH, JsonRefused, loads, nesting_depth
from tests.unit.consumers.test_contract import encode

INT64_MAX = 2**63 - 1


def violation(raw: bytes) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        parse_message(raw)
    return caught.value


# -- values the read models cannot hold ---------------------------------------------


@pytest.mark.parametrize(
    ("message_type", "field", "limit"),
    [
        ("payment.authorized", "amount_minor", MAX_AMOUNT_MINOR),
        ("payment.captured", "amount_minor", MAX_AMOUNT_MINOR),
        ("refund.requested", "amount_minor", MAX_AMOUNT_MINOR),
        ("tariff.published", "session_fee", MAX_AMOUNT_MINOR),
        ("tariff.published", "idle_grace_minutes", MAX_MINUTES),
        ("session.started", "meter_start_wh", MAX_METER_WH),
        ("session.stopped", "meter_stop_wh", MAX_METER_WH),
    ],
)
@pytest.mark.parametrize("excess", [1, INT64_MAX, 2**63, 2**64 + 7, 10**40])
def test_every_integer_has_an_upper_bound(
    message_type: str, field: str, limit: int, excess: int
) -> None:
    parse_message(encode(message_type, **{field: limit}))
    too_big = violation(encode(message_type, **{field: limit + excess}))
    assert too_big.field == field
    assert "less than or equal" in too_big.reason


def test_the_bounds_fit_the_tightest_read_model_columns() -> None:
    # energy_kwh is DECIMAL(14,3): 11 integer digits of kWh.
    assert MAX_METER_WH // 1000 < 10**11
    # A session fee in a currency without minor unit is a DECIMAL(18,6) unit price.
    assert MAX_AMOUNT_MINOR < 10**12
    # The largest session: all energy at the highest rate, in a 3-decimal currency.
    largest_total = (MAX_METER_WH // 1000 * 10**4 + MAX_MINUTES * 2 * 10**4) * 1000 * 2
    assert largest_total * 100 < INT64_MAX


@pytest.mark.parametrize(
    "rate",
    ["1e-999999999", "1e-400", "1E2", "+0.19", "-0.19", ".19", "19.", " 0.19 ", "0.19\n",
     "0.1_9", "\u0660.\u0661\u0669", "0x10", "Infinity", "NaN", "", "0.1234567", "12345.1",
     "1,5"],
)  # fmt: skip
def test_rates_are_plain_bounded_decimal_strings(rate: str) -> None:
    refused = violation(encode("tariff.published", vat_rate=rate))
    assert refused.field == "vat_rate"
    assert "plain decimal" in refused.reason


@pytest.mark.parametrize("rate", ["0", "0.19", "9999.999999", "0012.5"])
def test_plain_rates_pass(rate: str) -> None:
    parse_message(encode("tariff.published", price_per_kwh=rate))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("payment_id", "P\x00"),
        ("payment_id", "\u200b"),
        ("payment_id", "\u200b\u200c\ufeff"),
        ("payment_id", "a\u202eb"),
        ("payment_id", "a\nb"),
        ("payment_id", "\x1b[31mred"),
        ("payment_id", "x" * (MAX_ID_LENGTH + 1)),
        ("event_id", "\x7f"),
        ("event_id", "\u2028"),
    ],
)
def test_ids_are_printable_non_blank_and_bounded(field: str, value: str) -> None:
    assert violation(encode("payment.captured", **{field: value})).field == field


def test_a_lone_surrogate_in_an_id_is_refused() -> None:
    raw = encode("payment.captured").replace(b'"P1"', b'"P\\ud800"')
    violation(raw)


def test_notes_keep_line_breaks_but_not_nul() -> None:
    parse_message(encode("refund.requested", note="line one\nline two\ttab"))
    assert violation(encode("refund.requested", note="a\x00b")).field == "note"


def test_energy_windows_are_bounded_in_number() -> None:
    windows = [
        {"name": f"w{i}", "starts_at": f"{i // 2:02d}:{30 * (i % 2):02d}",
         "ends_at": f"{(i + 1) // 2:02d}:{30 * ((i + 1) % 2):02d}", "price_per_kwh": "0.3"}
        for i in range(MAX_ENERGY_WINDOWS)
    ]  # fmt: skip
    windows[-1]["ends_at"] = "00:00"
    parse_message(encode("tariff.published", energy_windows=windows))
    extra = {"name": "x", "starts_at": "00:00", "ends_at": "00:01", "price_per_kwh": "1"}
    refused = violation(encode("tariff.published", energy_windows=[*windows, extra]))
    assert refused.field == "energy_windows"


# -- the contract is no looser than its schema --------------------------------------


@pytest.mark.parametrize(
    "occurred_at",
    ["1700000000", "2026-03-01", "2026-03-01T10:00+01:00", "2026-03-01T10:00:00+0100",
     "2026-W09-7T10:00:00Z", "2026-03-01T10:00:00+24:00", " 2026-03-01T10:00:00Z",
     "2026-03-01T10:00:00Z\n", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
     "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z"],
)  # fmt: skip
def test_timestamps_are_rfc3339_with_offset_within_the_range(occurred_at: str) -> None:
    assert violation(encode("payment.captured", occurred_at=occurred_at)).field == "occurred_at"


def test_a_unix_number_is_not_a_timestamp() -> None:
    assert violation(encode("payment.captured", occurred_at=1700000000)).field == "occurred_at"


@pytest.mark.parametrize(
    "occurred_at",
    ["2000-01-01T00:00:00Z", "2099-12-31T23:59:59.999999999+12:00", "2026-03-01t10:00:00z"],
)
def test_rfc3339_edges_pass(occurred_at: str) -> None:
    parse_message(encode("payment.captured", occurred_at=occurred_at))


def test_duplicate_keys_are_refused_not_last_one_wins() -> None:
    raw = (
        b'{"type": "payment.authorized", "event_id": "e1", "occurred_at": "2026-03-01T10:00:00Z",'
        b' "payment_id": "P1", "session_id": "S1", "amount_minor": 5, "currency": "EUR",'
        b' "method": "card", "type": "payment.captured"}'
    )
    refused = violation(raw)
    assert "duplicate key 'type'" in refused.reason


def test_duplicate_keys_inside_an_extra_field_are_refused_too() -> None:
    raw = encode("payment.captured").replace(b"}", b', "x": {"a": 1, "a": 2}}')
    assert "duplicate key" in violation(raw).reason


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_non_json_literals_are_refused(literal: bytes) -> None:
    raw = encode("payment.captured").replace(b"}", b', "extra": ' + literal + b"}")
    assert "not a JSON value" in violation(raw).reason


def test_schema_version_true_is_not_one() -> None:
    assert violation(encode("payment.captured", schema_version=True)).field == "schema_version"


def test_a_huge_integer_literal_is_a_violation_not_a_crash() -> None:
    raw = encode("payment.captured").replace(
        b'"amount_minor": 1234', b'"amount_minor": ' + b"9" * 5000
    )
    violation(raw)


# -- deep nesting -------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000, sys.getrecursionlimit() * 5])
def test_deep_nesting_is_a_violation_never_a_recursion_error(depth: int) -> None:
    deep = b"[" * depth + b"]" * depth
    assert "nested deeper" in violation(deep).reason
    in_extra = encode("payment.captured").replace(b"}", b', "trace": ' + deep + b"}")
    assert "nested deeper" in violation(in_extra).reason
    unclosed = encode("payment.captured").replace(b"}", b', "trace": ' + b'{"a":' * depth)
    assert "nested deeper" in violation(unclosed).reason


def test_nesting_at_the_limit_passes() -> None:
    value: Any = 1
    for _ in range(MAX_DEPTH - 1):
        value = [value]
    parse_message(encode("payment.captured", trace=value))


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"a": "[" * 1000 + '\\"{' * 50})
    assert nesting_depth(text) == 1
    assert loads(text) == {"a": "[" * 1000 + '\\"{' * 50}


def test_strict_json_refuses_with_reason_instead_of_raising_anything_else() -> None:
    for text in ["[" * 200_000, '{"a": 1, "a": 1}', "NaN", "{", "1" * 10_000]:
        with pytest.raises(JsonRefused):
            loads(text)


def test_publish_routes_a_deeply_nested_line_without_crashing() -> None:
    from consumers.producer import routing_key

    assert routing_key(b"[" * 100_000 + b"]" * 100_000) is None
    assert routing_key(b'{"type": "payment.captured", "payment_id": "P1", "x": NaN}') is None
