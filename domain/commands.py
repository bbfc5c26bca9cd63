"""Commands, one per upstream message type (contract v1), validated on construction.

Amounts are int minor units, rates Decimal, times timezone-aware. A malformed value raises
InvalidValueError (a ValueError): no retry can fix it, so the caller dead-letters it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time
from decimal import Context, Decimal
from operator import attrgetter
from typing import Any, ClassVar

import orjson

from domain.errors import InvalidValueError
from domain.money import currency_exponent, require_minor_units, require_whole_number
from domain.tariff import EnergyWindow, TariffTerms
from domain.timeutil import require_aware
from domain.vocabulary import MessageType, PaymentMethod, RefundReason


def _require_text(value: Any, what: str, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(f"{what} must be a non-empty string, got {value!r}")


def _canonical(value: Any) -> Any:
    """A JSON-ready form in which equal values have one spelling (0.20 == 0.2)."""
    if type(value) is str or type(value) is int or value is None:
        return value  # most fields: nothing to respell, no isinstance checks to run
    if isinstance(value, Decimal):
        # normalize() rounds to the context's 28 digits; a precision of the value's own
        # digits keeps two rates that differ in the 29th digit apart.
        exact = Context(prec=max(28, len(value.as_tuple().digits)))
        return format(value.normalize(exact), "f")
    if type(value) is datetime:
        # orjson's text of a UTC datetime is isoformat()'s in a fraction of its time
        # (tests/unit/consumers/test_content_hash.py).
        return orjson.dumps(value.astimezone(UTC))[1:-1].decode()
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, time):
        return value.strftime("%H:%M")
    if isinstance(value, EnergyWindow):
        return {key: _canonical(item) for key, item in value.to_primitive().items()}
    if isinstance(value, tuple | list):
        return [_canonical(item) for item in value]
    return value


# What _canonical returns unchanged, by type (bool: no branch of it takes one).
_AS_THEY_ARE = frozenset({str, int, bool, type(None)})

# Each command class's field names: dataclasses.fields() filters them anew on every call.
_FIELD_NAMES: dict[type[Command], tuple[str, ...]] = {}


def _field_names(command_type: type[Command]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(command_type)
    if names is None:
        names = _FIELD_NAMES[command_type] = tuple(f.name for f in fields(command_type))
    return names


# json.dumps(content, sort_keys=True, separators=(",", ":")) builds this encoder on every
# call; one built once writes the same text.
_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def _canonical_json(content: dict[str, Any]) -> bytes:
    """The canonical text's bytes: json's sorted, compact, ASCII-escaped spelling.

    orjson writes it in a third less time when the text is printable ASCII, where the two
    spell alike, control characters' escapes included (orjson keeps other characters as
    UTF-8, where json escapes them, DEL too); any other text, and what orjson refuses (an
    integer past 64 bits), is json's. Contents hold no floats, which the two spell
    differently: `_canonical` gives str, int, bool, None, lists and str-keyed dicts only.
    """
    try:
        encoded = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return _CANONICAL_JSON.encode(content).encode("ascii")
    if encoded.isascii() and b"\x7f" not in encoded:
        return encoded
    return _CANONICAL_JSON.encode(content).encode("ascii")


PAYMENT_METHODS = frozenset(method.value for method in PaymentMethod)
REFUND_REASONS = frozenset(reason.value for reason in RefundReason)


@dataclass(frozen=True, kw_only=True)
class Command:
    """Fields every upstream message carries."""

    MESSAGE_TYPE: ClassVar[MessageType]

    event_id: str
    occurred_at: datetime

    def __post_init__(self) -> None:
        _require_text(self.event_id, "event_id")
        require_aware(self.occurred_at, "occurred_at")

    def content_sha256(self) -> str:
        """SHA-256 of the canonical content: same message, same hash, on any machine."""
        names = _field_names(type(self))
        # Most fields are text or integers, which _canonical returns as they are: asked
        # only of the others (a call per field was most of building the content).
        content = {
            name: value if type(value) in _AS_THEY_ARE else _canonical(value)
            for name, value in zip(names, attrgetter(*names)(self), strict=True)
        }
        content["type"] = self.MESSAGE_TYPE.value
        return hashlib.sha256(_canonical_json(content)).hexdigest()


@dataclass(frozen=True, kw_only=True)
class PublishTariff(Command):
    """tariff.published. ``session_fee`` is minor units; the other prices Decimal major units.

    ``timezone`` and ``energy_windows`` extend contract v1 with time-of-day energy prices.
    """

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.TARIFF_PUBLISHED

    tariff_id: str
    currency: str
    price_per_kwh: Decimal
    vat_rate: Decimal
    price_per_minute: Decimal = Decimal(0)
    session_fee: int = 0
    idle_fee_per_minute: Decimal = Decimal(0)
    idle_grace_minutes: int = 0
    timezone: str | None = None
    energy_windows: tuple[EnergyWindow, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.tariff_id, "tariff_id")
        self.terms()  # TariffTerms validates every price, the zone and the windows

    def terms(self) -> TariffTerms:
        return TariffTerms(
            currency=self.currency,
            price_per_kwh=self.price_per_kwh,
            vat_rate=self.vat_rate,
            price_per_minute=self.price_per_minute,
            session_fee_minor=self.session_fee,
            idle_fee_per_minute=self.idle_fee_per_minute,
            idle_grace_minutes=self.idle_grace_minutes,
            timezone=self.timezone,
            energy_windows=tuple(self.energy_windows),
        )


@dataclass(frozen=True, kw_only=True)
class StartSession(Command):
    """session.started"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.SESSION_STARTED

    session_id: str
    station_id: str
    connector_id: str
    customer_id: str
    tariff_id: str
    meter_start_wh: int

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("session_id", "station_id", "connector_id", "customer_id", "tariff_id"):
            _require_text(getattr(self, name), name)
        require_whole_number(self.meter_start_wh, "meter_start_wh", unit=" Wh")


@dataclass(frozen=True, kw_only=True)
class StopSession(Command):
    """session.stopped; ``occurred_at`` is the stop, ``charging_ended_at`` when power ended."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.SESSION_STOPPED

    session_id: str
    meter_stop_wh: int
    stop_reason: str | None = None
    charging_ended_at: datetime | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.session_id, "session_id")
        require_whole_number(self.meter_stop_wh, "meter_stop_wh", unit=" Wh")
        _require_text(self.stop_reason, "stop_reason", optional=True)
        if self.charging_ended_at is not None:
            require_aware(self.charging_ended_at, "charging_ended_at")


@dataclass(frozen=True, kw_only=True)
class AuthorisePayment(Command):
    """payment.authorized"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PAYMENT_AUTHORIZED

    payment_id: str
    session_id: str
    amount_minor: int
    currency: str
    method: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.payment_id, "payment_id")
        _require_text(self.session_id, "session_id")
        require_minor_units(self.amount_minor, "amount_minor")
        currency_exponent(self.currency)
        if self.method not in PAYMENT_METHODS:
            raise InvalidValueError(
                f"method must be one of {sorted(PAYMENT_METHODS)}, got {self.method!r}"
            )


@dataclass(frozen=True, kw_only=True)
class CapturePayment(Command):
    """payment.captured"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PAYMENT_CAPTURED

    payment_id: str
    amount_minor: int

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.payment_id, "payment_id")
        require_minor_units(self.amount_minor, "amount_minor")


@dataclass(frozen=True, kw_only=True)
class FailPayment(Command):
    """payment.failed; without an earlier authorisation it is a declined pre-authorisation."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PAYMENT_FAILED

    payment_id: str
    reason: str
    session_id: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.payment_id, "payment_id")
        _require_text(self.reason, "reason")
        _require_text(self.session_id, "session_id", optional=True)


@dataclass(frozen=True, kw_only=True)
class VoidPayment(Command):
    """payment.voided (an extension of contract v1): cancel an authorisation, free the hold."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.PAYMENT_VOIDED

    payment_id: str
    reason: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.payment_id, "payment_id")
        _require_text(self.reason, "reason", optional=True)


@dataclass(frozen=True, kw_only=True)
class RequestRefund(Command):
    """refund.requested"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.REFUND_REQUESTED

    refund_id: str
    payment_id: str
    amount_minor: int
    reason: str
    note: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.refund_id, "refund_id")
        _require_text(self.payment_id, "payment_id")
        require_minor_units(self.amount_minor, "amount_minor")
        if self.amount_minor == 0:
            raise InvalidValueError("a refund of 0 refunds nothing; amount_minor must be > 0")
        if self.reason not in REFUND_REASONS:
            raise InvalidValueError(
                f"reason must be one of {sorted(REFUND_REASONS)}, got {self.reason!r}"
            )
        if self.note is not None and not isinstance(self.note, str):
            raise InvalidValueError("note must be a string")


@dataclass(frozen=True, kw_only=True)
class _RefundDecision(Command):
    refund_id: str
    decided_by: str
    note: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.refund_id, "refund_id")
        _require_text(self.decided_by, "decided_by")
        if self.note is not None and not isinstance(self.note, str):
            raise InvalidValueError("note must be a string")


@dataclass(frozen=True, kw_only=True)
class ApproveRefund(_RefundDecision):
    """refund.approved"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.REFUND_APPROVED


@dataclass(frozen=True, kw_only=True)
class RejectRefund(_RefundDecision):
    """refund.rejected"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.REFUND_REJECTED


@dataclass(frozen=True, kw_only=True)
class IssueRefund(Command):
    """refund.issued"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.REFUND_ISSUED

    refund_id: str
    processor_ref: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.refund_id, "refund_id")
        _require_text(self.processor_ref, "processor_ref", optional=True)


@dataclass(frozen=True, kw_only=True)
class FailRefund(Command):
    """refund.failed"""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.REFUND_FAILED

    refund_id: str
    reason: str

    def __post_init__(self) -> None:
        super().__post_init__()
        _require_text(self.refund_id, "refund_id")
        _require_text(self.reason, "reason")


COMMAND_TYPES: dict[MessageType, type[Command]] = {
    command_type.MESSAGE_TYPE: command_type
    for command_type in (
        PublishTariff,
        StartSession,
        StopSession,
        AuthorisePayment,
        CapturePayment,
        FailPayment,
        VoidPayment,
        RequestRefund,
        ApproveRefund,
        RejectRefund,
        IssueRefund,
        FailRefund,
    )
}
