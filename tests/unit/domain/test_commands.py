"""Commands validate their values on construction; malformed means ValueError."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.commands import (
    COMMAND_TYPES,
    AuthorisePayment,
    CapturePayment,
    PublishTariff,
    RequestRefund,
    StopSession,
)
from domain.errors import InvalidValueError

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_every_contract_message_type_has_a_command() -> None:
    assert set(COMMAND_TYPES) >= {
        "tariff.published",
        "session.started",
        "session.stopped",
        "payment.authorized",
        "payment.captured",
        "payment.failed",
        "refund.requested",
        "refund.approved",
        "refund.rejected",
        "refund.issued",
        "refund.failed",
    }


def test_float_rates_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="Decimal"):
        PublishTariff(
            event_id="e",
            occurred_at=T0,
            tariff_id="T",
            currency="EUR",
            price_per_kwh=0.39,  # type: ignore[arg-type]
            vat_rate=Decimal("0.19"),
        )


def test_float_and_negative_amounts_are_refused() -> None:
    with pytest.raises(InvalidValueError):
        CapturePayment(event_id="e", occurred_at=T0, payment_id="P", amount_minor=9.99)  # type: ignore[arg-type]
    with pytest.raises(InvalidValueError, match="negative"):
        CapturePayment(event_id="e", occurred_at=T0, payment_id="P", amount_minor=-1)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="UTC offset"):
        StopSession(
            event_id="e",
            occurred_at=T0,
            session_id="S",
            meter_stop_wh=1,
            charging_ended_at=datetime(2024, 5, 1, 10, 0),
        )


def test_enumerations_are_checked() -> None:
    with pytest.raises(InvalidValueError, match="method"):
        AuthorisePayment(
            event_id="e",
            occurred_at=T0,
            payment_id="P",
            session_id="S",
            amount_minor=1,
            currency="EUR",
            method="cash",
        )
    with pytest.raises(InvalidValueError, match="reason"):
        RequestRefund(
            event_id="e",
            occurred_at=T0,
            refund_id="R",
            payment_id="P",
            amount_minor=1,
            reason="because",
        )
    with pytest.raises(InvalidValueError, match="currency"):
        AuthorisePayment(
            event_id="e",
            occurred_at=T0,
            payment_id="P",
            session_id="S",
            amount_minor=1,
            currency="XXX",
            method="card",
        )


def test_empty_event_id_is_refused() -> None:
    with pytest.raises(InvalidValueError, match="event_id"):
        CapturePayment(event_id="", occurred_at=T0, payment_id="P", amount_minor=1)


def test_content_hash_ignores_decimal_spelling_and_offset() -> None:
    def capture(at: datetime) -> CapturePayment:
        return CapturePayment(event_id="e", occurred_at=at, payment_id="P", amount_minor=1)

    same_instant = datetime.fromisoformat("2024-05-01T12:00:00+02:00")
    assert capture(T0).content_sha256() == capture(same_instant).content_sha256()
    other = CapturePayment(event_id="e", occurred_at=T0, payment_id="P", amount_minor=2)
    assert capture(T0).content_sha256() != other.content_sha256()
