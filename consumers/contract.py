"""The upstream message contract (version 1): one strict pydantic model per message type.

A message is one strict JSON object (consumers/strict_json.py: no duplicate keys, no NaN or
Infinity, nested at most MAX_DEPTH deep). Amounts are JSON integers in minor units, rates
are plain decimal strings (a JSON number would pass through a float), timestamps are RFC
3339 with an offset, ids are printable strings. Unknown extra fields are kept on the model
but ignored. `parse_message` turns raw bytes into a model or raises `ContractViolation`
with the field and the reason, which is what the dead-letter record carries.

Every value has a bound, so that whatever the contract accepts the domain prices quickly
and every read model can store (PostgreSQL BIGINT and NUMERIC(14,3)/(20,6), SQLite int64,
DuckDB BIGINT, DECIMAL(14,3) and DECIMAL(18,6); the tightest of them decides): see the
constants below, which the published JSON Schema states too.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
)

from consumers import strict_json
from domain.vocabulary import MessageType, PaymentMethod, RefundReason

SCHEMA_VERSION = 1

# The bounds (README, "The upstream message contract"). Amounts: a session fee of the
# largest amount in a currency without minor unit still fits DECIMAL(18,6) as a unit price,
# and millions of them still sum within int64. Meter readings: a whole meter's Wh fits the
# energy columns (DECIMAL(14,3) kWh). Rates: at most 4 integer and 6 fraction digits fit
# DECIMAL(18,6) exactly, and a hundred of the largest possible sessions still sum in int64.
MAX_AMOUNT_MINOR = 999_999_999_999
MAX_METER_WH = 999_999_999_999
MAX_MINUTES = 44_640  # 31 days: idle grace minutes (a session is no longer, domain/session)
RATE_INTEGER_DIGITS = 4
RATE_FRACTION_DIGITS = 6
DECIMAL_PATTERN = rf"^[0-9]{{1,{RATE_INTEGER_DIGITS}}}(\.[0-9]{{1,{RATE_FRACTION_DIGITS}}})?$"
MAX_ID_LENGTH = 200
MAX_TEXT_LENGTH = 2000
MAX_ENERGY_WINDOWS = 48
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)  # exclusive
# RFC 3339 date-time with a numeric offset or Z (no Unix numbers, no week dates, no
# missing seconds); pydantic then reads it, keeping microseconds.
RFC3339_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
_RATE = re.compile(DECIMAL_PATTERN.strip("^$"))
_RFC3339 = re.compile(RFC3339_PATTERN.strip("^$"))


def _decimal_from_string(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError('rates are decimal strings such as "0.35", not JSON numbers')
    # fullmatch and [0-9]: no sign, exponent, blank, underscore or non-ASCII digit, and
    # a bounded number of digits (an exponent would let pricing build huge integers).
    if not _RATE.fullmatch(value):
        raise ValueError(
            f"not a plain decimal string of at most {RATE_INTEGER_DIGITS} integer and "
            f"{RATE_FRACTION_DIGITS} fraction digits (pattern {DECIMAL_PATTERN}): {value!r}"
        )
    return Decimal(value)


def _identifier(value: str) -> str:
    if not value.isprintable():
        bad = next(char for char in value if not char.isprintable())
        raise ValueError(
            f"must be printable: holds {bad!a} (a control, format, separator, "
            "surrogate or unassigned character)"
        )
    if not value.strip():
        raise ValueError("must not be blank")
    return value


def _text(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs") and char not in "\t\n\r":
            raise ValueError(f"must not hold control characters: holds {char!a}")
    return value


def _rfc3339(value: Any) -> Any:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise ValueError(
            "must be an RFC 3339 timestamp with an offset, e.g. 2026-03-01T10:00:00+01:00, "
            f"got {value!r}"
        )
    # Python 3.11 reads RFC 3339 (Z, any fraction digits, kept to microseconds).
    return datetime.fromisoformat(value.upper())


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise ValueError(
            f"must be from {EARLIEST.isoformat()} and before {LATEST.isoformat()}, got {value}"
        )
    return value


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be the integer 1, not a boolean")
    return value


Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=MAX_ID_LENGTH),
    AfterValidator(_identifier),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "pattern": r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u200b-\u200f\u2060\ufeff]",
            "description": "printable (no control, format, separator, surrogate or "
            "unassigned character; spaces allowed) and not blank",
        }
    ),
]
Text = Annotated[
    str,
    StringConstraints(strict=True, max_length=MAX_TEXT_LENGTH),
    AfterValidator(_text),
    WithJsonSchema(
        {
            "type": "string",
            "maxLength": MAX_TEXT_LENGTH,
            "pattern": r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$",
        }
    ),
]
MinorUnits = Annotated[int, Field(strict=True, ge=0, le=MAX_AMOUNT_MINOR)]
WattHours = Annotated[int, Field(strict=True, ge=0, le=MAX_METER_WH)]
Minutes = Annotated[int, Field(strict=True, ge=0, le=MAX_MINUTES)]
Rate = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_in_range),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": RFC3339_PATTERN,
            "formatMinimum": EARLIEST.isoformat(),
            "formatExclusiveMaximum": LATEST.isoformat(),
        }
    ),
]
SchemaVersion = Annotated[
    Literal[1], BeforeValidator(_not_bool), WithJsonSchema({"type": "integer", "const": 1})
]
Currency = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
HOUR_MINUTE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
LocalTime = Annotated[str, StringConstraints(strict=True, pattern=HOUR_MINUTE_PATTERN)]


class Message(BaseModel):
    """Fields of every message. `extra="allow"` keeps unknown fields without using them."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    schema_version: SchemaVersion = 1
    event_id: Identifier
    occurred_at: Timestamp


class EnergyWindow(BaseModel):
    """Extension of v1: a daily local-time window with its own energy price (peak hours)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: Identifier
    starts_at: LocalTime
    ends_at: LocalTime
    price_per_kwh: Rate


class TariffPublished(Message):
    type: Literal[MessageType.TARIFF_PUBLISHED]
    tariff_id: Identifier
    currency: Currency
    price_per_kwh: Rate
    price_per_minute: Rate | None = None
    session_fee: MinorUnits | None = None
    idle_fee_per_minute: Rate | None = None
    idle_grace_minutes: Minutes | None = None
    vat_rate: Rate
    timezone: Identifier | None = None
    energy_windows: Annotated[list[EnergyWindow], Field(max_length=MAX_ENERGY_WINDOWS)] = []


class SessionStarted(Message):
    type: Literal[MessageType.SESSION_STARTED]
    session_id: Identifier
    station_id: Identifier
    connector_id: Identifier
    customer_id: Identifier
    tariff_id: Identifier
    meter_start_wh: WattHours


class SessionStopped(Message):
    type: Literal[MessageType.SESSION_STOPPED]
    session_id: Identifier
    meter_stop_wh: WattHours
    stop_reason: Identifier | None = None
    charging_ended_at: Timestamp | None = None


class PaymentAuthorized(Message):
    type: Literal[MessageType.PAYMENT_AUTHORIZED]
    payment_id: Identifier
    session_id: Identifier
    amount_minor: MinorUnits
    currency: Currency
    method: PaymentMethod


class PaymentCaptured(Message):
    type: Literal[MessageType.PAYMENT_CAPTURED]
    payment_id: Identifier
    amount_minor: MinorUnits


class PaymentFailed(Message):
    type: Literal[MessageType.PAYMENT_FAILED]
    payment_id: Identifier
    session_id: Identifier | None = None
    reason: Identifier


class PaymentVoided(Message):
    """Extension of v1: the hold is cancelled without a capture."""

    type: Literal[MessageType.PAYMENT_VOIDED]
    payment_id: Identifier
    reason: Text | None = None


class RefundRequested(Message):
    type: Literal[MessageType.REFUND_REQUESTED]
    refund_id: Identifier
    payment_id: Identifier
    amount_minor: MinorUnits
    reason: RefundReason
    note: Text | None = None


class RefundApproved(Message):
    type: Literal[MessageType.REFUND_APPROVED]
    refund_id: Identifier
    decided_by: Identifier
    note: Text | None = None


class RefundRejected(Message):
    type: Literal[MessageType.REFUND_REJECTED]
    refund_id: Identifier
    decided_by: Identifier
    note: Text | None = None


class RefundIssued(Message):
    type: Literal[MessageType.REFUND_ISSUED]
    refund_id: Identifier
    processor_ref: Identifier | None = None


class RefundFailed(Message):
    type: Literal[MessageType.REFUND_FAILED]
    refund_id: Identifier
    reason: Identifier


UpstreamMessage = Annotated[
    TariffPublished
    | SessionStarted
    | SessionStopped
    | PaymentAuthorized
    | PaymentCaptured
    | PaymentFailed
    | PaymentVoided
    | RefundRequested
    | RefundApproved
    | RefundRejected
    | RefundIssued
    | RefundFailed,
    Field(discriminator="type"),
]

MESSAGE_TYPES: frozenset[str] = frozenset(message_type.value for message_type in MessageType)

_ADAPTER: TypeAdapter[UpstreamMessage] = TypeAdapter(UpstreamMessage)


class ContractViolation(ValueError):
    """Bytes that are not a valid v1 message; `field` is a dotted path or "" for the whole."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


def parse_message(raw: bytes) -> UpstreamMessage:
    """Decode and validate one upstream record's value."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text: {error.reason} at byte {error.start}"
        raise ContractViolation("", reason) from None
    try:
        # Decoded strictly first: what pydantic's parser lets through (duplicate keys,
        # NaN, any depth) never reaches it.
        document = strict_json.loads(text)
    except strict_json.JsonRefused as refused:
        raise ContractViolation("", refused.reason) from None
    try:
        return _ADAPTER.validate_json(text)
    except ValidationError as error:
        raise _violation(document, error) from None


def _violation(document: Any, error: ValidationError) -> ContractViolation:
    """Why a message failed, in words for a person."""
    if not isinstance(document, dict):
        return ContractViolation("", f"a message is a JSON object, got {type(document).__name__}")
    message_type = document.get("type")
    if not isinstance(message_type, str) or message_type not in MESSAGE_TYPES:
        known = ", ".join(sorted(MESSAGE_TYPES))
        return ContractViolation("type", f"unknown message type {message_type!r}; known: {known}")
    first = error.errors(include_url=False)[0]
    # The first part of the location is the discriminator's tag: the type we know already.
    field = ".".join(str(part) for part in first["loc"][1:])
    return ContractViolation(field, str(first["msg"]).removeprefix("Value error, "))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the contract, as published in schemas/upstream-v1.schema.json."""
    schema = _ADAPTER.json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"evledger upstream message, contract version {SCHEMA_VERSION}"
    return schema
