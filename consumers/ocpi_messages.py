"""Upstream messages that carry an OCPI 2.2.1 object unchanged: ocpi.tariff/location/cdr.

A message is ``{"type": "ocpi.cdr", "event_id": ..., "occurred_at": ..., "cdr": {...},
"time_zone": "Europe/Amsterdam"}`` (``tariff`` / ``location`` for the other two). The
object inside is exactly what the OCPI party sent. A CDR carries no time zone, so an
``ocpi.cdr`` needs ``time_zone`` (its Location's): evledger never guesses one.

These messages are read with every JSON number as an exact Decimal (pydantic's JSON mode
would pass OCPI's numbers through a float), so they are recognised before the v1
contract's parser. A valid one becomes a domain command carrying the OCPI object's JSON
text (the ledger keeps it, so a CDR can be re-priced from the ledger alone). A CDR without
``time_zone`` is accepted here: the ledger's ocpi.location decides, or the CDR is recorded
as rejected with that reason.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict

from consumers.contract import ContractViolation, Identifier
from consumers.ocpi_contract import (
    Cdr,
    Location,
    Tariff,
    decode,
    encode,
    known_zone,
    rfc3339_text,
    validate,
)
from domain.commands import Command
from domain.ocpi_commands import RecordCdr, RecordOcpiLocation, RecordOcpiTariff

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
    return validate(model, document)


def ocpi_command(raw: bytes) -> Command | None:
    """The domain command of an ocpi.* message (ContractViolation if it is bad); None for
    other messages, which are not ours to judge."""
    if ocpi_type(raw) is None:
        return None
    message = parse_ocpi_message(raw)
    inner = decode(raw)[_PAYLOADS[message.type][0]]
    common: dict[str, Any] = {"event_id": message.event_id, "occurred_at": message.occurred_at}
    if isinstance(message, OcpiTariffMessage):
        return RecordOcpiTariff(**common, document=encode(inner))
    if isinstance(message, OcpiLocationMessage):
        location = message.location
        return RecordOcpiLocation(
            **common,
            country_code=location.country_code,
            party_id=location.party_id,
            location_id=location.id,
            time_zone=location.time_zone,
            last_updated=location.last_updated,
        )
    assert isinstance(message, OcpiCdrMessage)
    return RecordCdr(**common, document=encode(inner), time_zone=message.time_zone)
