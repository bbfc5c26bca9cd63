"""The upstream message contract (version 1): one strict pydantic model per message type.

A message is one JSON object. Amounts are JSON integers in minor units, rates are decimal
strings (a JSON number would pass through a float), timestamps are RFC 3339 with an offset,
ids are non-empty strings. Unknown extra fields are kept on the model but ignored.
`parse_message` turns raw bytes into a model or raises `ContractViolation` with the field
and the reason, which is what the dead-letter record carries.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, get_args

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

SCHEMA_VERSION = 1
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def _decimal_from_string(value: Any) -> Decimal:
    if not isinstance(value, str):
        raise ValueError('rates are decimal strings such as "0.35", not JSON numbers')
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not parsed.is_finite():
        raise ValueError(f"not a finite decimal number: {value!r}")
    return parsed


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


Identifier = Annotated[
    str,
    StringConstraints(strict=True, min_length=1, max_length=200),
    AfterValidator(_not_blank),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"}),
]
Text = Annotated[str, StringConstraints(strict=True, max_length=2000)]
MinorUnits = Annotated[int, Field(strict=True, ge=0)]
WattHours = Annotated[int, Field(strict=True, ge=0)]
Rate = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_PATTERN}),
]
Timestamp = AwareDatetime
Currency = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
HOUR_MINUTE_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
LocalTime = Annotated[str, StringConstraints(strict=True, pattern=HOUR_MINUTE_PATTERN)]


class Message(BaseModel):
    """Fields of every message. `extra="allow"` keeps unknown fields without using them."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)

    schema_version: Literal[1] = 1
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
    type: Literal["tariff.published"]
    tariff_id: Identifier
    currency: Currency
    price_per_kwh: Rate
    price_per_minute: Rate | None = None
    session_fee: MinorUnits | None = None
    idle_fee_per_minute: Rate | None = None
    idle_grace_minutes: Annotated[int, Field(strict=True, ge=0)] | None = None
    vat_rate: Rate
    timezone: Identifier | None = None
    energy_windows: list[EnergyWindow] = []


class SessionStarted(Message):
    type: Literal["session.started"]
    session_id: Identifier
    station_id: Identifier
    connector_id: Identifier
    customer_id: Identifier
    tariff_id: Identifier
    meter_start_wh: WattHours


class SessionStopped(Message):
    type: Literal["session.stopped"]
    session_id: Identifier
    meter_stop_wh: WattHours
    stop_reason: Identifier | None = None
    charging_ended_at: Timestamp | None = None


class PaymentAuthorized(Message):
    type: Literal["payment.authorized"]
    payment_id: Identifier
    session_id: Identifier
    amount_minor: MinorUnits
    currency: Currency
    method: Literal["card", "rfid", "app", "wallet"]


class PaymentCaptured(Message):
    type: Literal["payment.captured"]
    payment_id: Identifier
    amount_minor: MinorUnits


class PaymentFailed(Message):
    type: Literal["payment.failed"]
    payment_id: Identifier
    session_id: Identifier | None = None
    reason: Identifier


class PaymentVoided(Message):
    """Extension of v1: the hold is cancelled without a capture."""

    type: Literal["payment.voided"]
    payment_id: Identifier
    reason: Text | None = None


class RefundRequested(Message):
    type: Literal["refund.requested"]
    refund_id: Identifier
    payment_id: Identifier
    amount_minor: MinorUnits
    reason: Literal["failed_session", "overcharge", "service_quality", "duplicate", "other"]
    note: Text | None = None


class RefundApproved(Message):
    type: Literal["refund.approved"]
    refund_id: Identifier
    decided_by: Identifier
    note: Text | None = None


class RefundRejected(Message):
    type: Literal["refund.rejected"]
    refund_id: Identifier
    decided_by: Identifier
    note: Text | None = None


class RefundIssued(Message):
    type: Literal["refund.issued"]
    refund_id: Identifier
    processor_ref: Identifier | None = None


class RefundFailed(Message):
    type: Literal["refund.failed"]
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

MESSAGE_TYPES: frozenset[str] = frozenset(
    get_args(model.model_fields["type"].annotation)[0]
    for model in (
        TariffPublished,
        SessionStarted,
        SessionStopped,
        PaymentAuthorized,
        PaymentCaptured,
        PaymentFailed,
        PaymentVoided,
        RefundRequested,
        RefundApproved,
        RefundRejected,
        RefundIssued,
        RefundFailed,
    )
)

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
        return _ADAPTER.validate_json(text)
    except ValidationError as error:
        raise _violation(text, error) from None


def _violation(text: str, error: ValidationError) -> ContractViolation:
    """Why a message failed, in words for a person; the JSON is decoded again only here,
    so a valid message (the common case) is parsed once."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as invalid:
        return ContractViolation("", f"invalid JSON: {invalid.msg} at char {invalid.pos}")
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
