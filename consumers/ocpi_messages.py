"""Upstream messages that carry an OCPI 2.2.1 object unchanged: ocpi.tariff/location/cdr.

A message is ``{"type": "ocpi.cdr", "event_id": ..., "occurred_at": ..., "cdr": {...},
"time_zone": "Europe/Amsterdam"}`` (``tariff`` / ``location`` for the other two). The
object inside is exactly what the OCPI party sent. A CDR carries no time zone, so an
``ocpi.cdr`` needs ``time_zone`` (its Location's): evledger never guesses one.

These messages are read with every JSON number as an exact Decimal (pydantic's JSON mode
would pass OCPI's numbers through a float), so they are recognised before the v1
contract's parser. This ledger version validates them but does not apply them yet: a valid
one becomes a dead letter that says so and can be replayed once it does.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from consumers.contract import ContractViolation, Identifier
from consumers.ocpi_contract import (
    Cdr,
    Location,
    Tariff,
    decode,
    known_zone,
    rfc3339_text,
    validate,
)

OCPI_MESSAGE_TYPES = ("ocpi.cdr", "ocpi.location", "ocpi.tariff")
_MARKER = b'"ocpi.'


class OcpiMessage(BaseModel):
    """Fields of every ocpi.* message, as in the v1 contract."""

    model_config = ConfigDict(extra="allow", frozen=True)

    schema_version: Literal[1] = 1
    type: str
    event_id: Identifier
    occurred_at: Annotated[AwareDatetime, BeforeValidator(rfc3339_text)]


class OcpiTariffMessage(OcpiMessage):
    type: Literal["ocpi.tariff"]
    tariff: Tariff


class OcpiLocationMessage(OcpiMessage):
    type: Literal["ocpi.location"]
    location: Location


class OcpiCdrMessage(OcpiMessage):
    type: Literal["ocpi.cdr"]
    cdr: Cdr
    time_zone: Annotated[str, AfterValidator(known_zone)] | None = None


_PAYLOADS = {
    "ocpi.tariff": ("tariff", "Tariff"),
    "ocpi.location": ("location", "Location"),
    "ocpi.cdr": ("cdr", "CDR"),
}
_MODELS: dict[str, type[OcpiMessage]] = {
    "ocpi.tariff": OcpiTariffMessage,
    "ocpi.location": OcpiLocationMessage,
    "ocpi.cdr": OcpiCdrMessage,
}


def ocpi_type(raw: bytes) -> str | None:
    """The message's type when it is an ``ocpi.*`` message, else None (not ours to judge)."""
    if _MARKER not in raw:  # the common case, decided without decoding
        return None
    try:
        document = decode(raw)
    except ContractViolation:
        return None
    message_type = document.get("type") if isinstance(document, dict) else None
    if isinstance(message_type, str) and message_type.startswith("ocpi."):
        return message_type
    return None


def parse_ocpi_message(raw: bytes) -> OcpiMessage:
    """Validate one ocpi.* message, or raise ContractViolation(field, reason)."""
    document = decode(raw)
    message_type = document.get("type") if isinstance(document, dict) else None
    model = _MODELS.get(str(message_type))
    if model is None:
        known = ", ".join(OCPI_MESSAGE_TYPES)
        raise ContractViolation(
            "type", f"unknown OCPI message type {message_type!r}; known: {known}"
        )
    message = validate(model, document)
    if isinstance(message, OcpiCdrMessage) and message.time_zone is None:
        raise ContractViolation(
            "time_zone",
            "a CDR carries no time zone and evledger never guesses one: send its Location's "
            "time_zone (evledger ocpi import --time-zone ZONE, or import the Location with it)",
        )
    return message


def describe(message: OcpiMessage) -> str:
    """Which OCPI object a message carries, for people: "CDR NL/EVL/CDR-1"."""
    payload, kind = _PAYLOADS[message.type]
    inner: Tariff | Location | Cdr = getattr(message, payload)
    return f"{kind} {inner.country_code}/{inner.party_id}/{inner.id}"


def ocpi_dead_letter(raw: bytes) -> tuple[str, str] | None:
    """For an ocpi.* message, the dead letter's field and reason; None for other messages."""
    if ocpi_type(raw) is None:
        return None
    try:
        message = parse_ocpi_message(raw)
    except ContractViolation as violation:
        return violation.field, violation.reason
    return (
        "type",
        f"valid {describe(message)}; this ledger version validates OCPI objects but does not "
        "apply them yet: replay this dead letter once it does",
    )
