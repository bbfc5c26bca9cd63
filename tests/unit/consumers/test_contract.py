"""The upstream message contract: every type parses strictly, bad input names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from consumers.contract import ContractViolation, json_schema, parse_message
from consumers.translate import to_command
from domain import commands

WHEN = "2026-03-01T10:00:00+01:00"

VALID: dict[str, dict[str, Any]] = {
    "tariff.published": {
        "tariff_id": "T-STD",
        "currency": "EUR",
        "price_per_kwh": "0.35",
        "price_per_minute": "0.02",
        "session_fee": 50,
        "idle_fee_per_minute": "0.10",
        "idle_grace_minutes": 15,
        "vat_rate": "0.19",
        "timezone": "Europe/Berlin",
        "energy_windows": [
            {"name": "peak", "starts_at": "17:00", "ends_at": "21:00", "price_per_kwh": "0.49"}
        ],
    },
    "session.started": {
        "session_id": "S1",
        "station_id": "ST-1",
        "connector_id": "1",
        "customer_id": "C1",
        "tariff_id": "T-STD",
        "meter_start_wh": 1000,
    },
    "session.stopped": {
        "session_id": "S1",
        "meter_stop_wh": 21000,
        "stop_reason": "ev_disconnected",
        "charging_ended_at": "2026-03-01T10:45:00+01:00",
    },
    "payment.authorized": {
        "payment_id": "P1",
        "session_id": "S1",
        "amount_minor": 5000,
        "currency": "EUR",
        "method": "card",
    },
    "payment.captured": {"payment_id": "P1", "amount_minor": 1234},
    "payment.failed": {"payment_id": "P1", "reason": "card_declined"},
    "payment.voided": {"payment_id": "P1", "reason": "session never started"},
    "refund.requested": {
        "refund_id": "R1",
        "payment_id": "P1",
        "amount_minor": 200,
        "reason": "overcharge",
        "note": "meter drift",
    },
    "refund.approved": {"refund_id": "R1", "decided_by": "agent-7"},
    "refund.rejected": {"refund_id": "R1", "decided_by": "agent-7", "note": "no evidence"},
    "refund.issued": {"refund_id": "R1", "processor_ref": "re_123"},
    "refund.failed": {"refund_id": "R1", "reason": "card_closed"},
}

COMMAND_CLASS = {
    "tariff.published": commands.PublishTariff,
    "session.started": commands.StartSession,
    "session.stopped": commands.StopSession,
    "payment.authorized": commands.AuthorisePayment,
    "payment.captured": commands.CapturePayment,
    "payment.failed": commands.FailPayment,
    "payment.voided": commands.VoidPayment,
    "refund.requested": commands.RequestRefund,
    "refund.approved": commands.ApproveRefund,
    "refund.rejected": commands.RejectRefund,
    "refund.issued": commands.IssueRefund,
    "refund.failed": commands.FailRefund,
}


def encode(message_type: str, **overrides: Any) -> bytes:
    body = {"type": message_type, "event_id": f"ev-{message_type}", "occurred_at": WHEN}
    body.update(VALID[message_type])
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


@pytest.mark.parametrize("message_type", sorted(VALID))
def test_every_type_parses_and_becomes_its_domain_command(message_type: str) -> None:
    message = parse_message(encode(message_type))
    command = to_command(message)
    assert type(command) is COMMAND_CLASS[message_type]
    assert message_type == command.MESSAGE_TYPE
    assert command.event_id == f"ev-{message_type}"
    assert command.occurred_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_rates_become_exact_decimals_and_windows_local_times() -> None:
    command = to_command(parse_message(encode("tariff.published")))
    assert isinstance(command, commands.PublishTariff)
    assert command.price_per_kwh == Decimal("0.35")
    assert command.vat_rate == Decimal("0.19")
    assert command.session_fee == 50
    assert command.idle_grace_minutes == 15
    (window,) = command.energy_windows
    assert (window.starts_at, window.ends_at) == (time(17), time(21))
    assert window.price_per_kwh == Decimal("0.49")


def test_optional_fields_fall_back_to_the_domain_defaults() -> None:
    raw = encode(
        "tariff.published",
        price_per_minute=...,
        session_fee=...,
        idle_fee_per_minute=...,
        idle_grace_minutes=...,
        timezone=...,
        energy_windows=...,
    )
    command = to_command(parse_message(raw))
    assert isinstance(command, commands.PublishTariff)
    assert command.session_fee == 0
    assert command.price_per_minute == Decimal(0)


def test_unknown_fields_are_kept_but_ignored() -> None:
    message = parse_message(encode("payment.captured", acquirer="adyen", trace={"a": 1}))
    assert message.model_extra == {"acquirer": "adyen", "trace": {"a": 1}}
    command = to_command(message)
    assert not hasattr(command, "acquirer")


def test_the_offset_of_a_timestamp_is_respected() -> None:
    message = parse_message(encode("payment.captured", occurred_at="2026-03-01T10:00:00-05:30"))
    assert message.occurred_at == datetime(2026, 3, 1, 10, tzinfo=timezone(-timedelta(hours=5.5)))


@pytest.mark.parametrize(
    ("raw", "field", "reason"),
    [
        (b"\xff\xfe\x00garbage", "", "not UTF-8"),
        (b'{"type": "payment.captured", "event_id"', "", "invalid JSON"),
        (b"[1, 2]", "", "JSON object"),
        (b'"just a string"', "", "JSON object"),
        (b'{"event_id": "x"}', "type", "unknown message type None"),
        (b'{"type": "payment.refunded", "event_id": "x"}', "type", "unknown message type"),
        (encode("payment.captured", amount_minor=-1), "amount_minor", "greater than or equal"),
        (encode("payment.captured", amount_minor=12.5), "amount_minor", "valid integer"),
        (encode("payment.captured", amount_minor="1200"), "amount_minor", "valid integer"),
        (encode("payment.captured", amount_minor=True), "amount_minor", "valid integer"),
        (encode("payment.captured", amount_minor=...), "amount_minor", "Field required"),
        (encode("payment.captured", payment_id=""), "payment_id", "at least 1"),
        (encode("payment.captured", payment_id="   "), "payment_id", "blank"),
        (encode("payment.captured", event_id=...), "event_id", "Field required"),
        (encode("payment.captured", occurred_at="2026-03-01T10:00:00"), "occurred_at", "offset"),
        (encode("payment.captured", occurred_at="yesterday"), "occurred_at", "RFC 3339"),
        (encode("payment.captured", schema_version=2), "schema_version", "1"),
        (encode("tariff.published", price_per_kwh=0.35), "price_per_kwh", "decimal strings"),
        (encode("tariff.published", vat_rate="19%"), "vat_rate", "plain decimal"),
        (encode("tariff.published", vat_rate="NaN"), "vat_rate", "plain decimal"),
        (encode("tariff.published", currency="eur"), "currency", "pattern"),
        (encode("payment.authorized", method="cash"), "method", "card"),
        (encode("refund.requested", reason="because"), "reason", "failed_session"),
        (
            encode(
                "tariff.published",
                energy_windows=[
                    {"name": "peak", "starts_at": "25:00", "ends_at": "21:00", "price_per_kwh": "1"}
                ],
            ),
            "energy_windows.0.starts_at",
            "pattern",
        ),
    ],
)
def test_bad_input_is_a_contract_violation_naming_the_field(
    raw: bytes, field: str, reason: str
) -> None:
    with pytest.raises(ContractViolation) as caught:
        parse_message(raw)
    assert caught.value.field == field
    assert reason in caught.value.reason


def test_the_published_json_schema_is_in_sync() -> None:
    published = Path(__file__).parents[3] / "schemas" / "upstream-v1.schema.json"
    assert json.loads(published.read_text()) == json_schema(), (
        "regenerate with: evledger contract schema > schemas/upstream-v1.schema.json"
    )
