"""Commands for the OCPI 2.2.1 messages: a Tariff, a Location's time zone, a CDR.

Each keeps the OCPI object as its JSON text (exact numbers), which is what the ledger
stores; the engine's values are read from it on demand. A value the engine cannot hold
raises InvalidValueError on construction, so the message is dead-lettered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from domain.commands import Command
from domain.errors import InvalidValueError
from domain.ocpi import codec
from domain.ocpi import model as ocpi
from domain.ocpi.engine import load_zone
from domain.vocabulary import MessageType


def _document(text: str, what: str) -> dict[str, Any]:
    try:
        document = codec.loads(text)
    except ValueError as error:
        raise InvalidValueError(f"the {what} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidValueError(f"the {what} must be a JSON object")
    return document


def _read(text: str, what: str, build: Any) -> Any:
    try:
        return build(_document(text, what))
    except (KeyError, TypeError, ValueError) as error:
        if isinstance(error, InvalidValueError):
            raise
        raise InvalidValueError(f"the {what} cannot be read: {error!r}") from None


@dataclass(frozen=True, kw_only=True)
class RecordOcpiTariff(Command):
    """ocpi.tariff: ``document`` is the OCPI Tariff's JSON text."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.OCPI_TARIFF

    document: str

    def __post_init__(self) -> None:
        super().__post_init__()
        self.tariff()
        self.last_updated()

    def tariff(self) -> ocpi.Tariff:
        built: ocpi.Tariff = _read(self.document, "OCPI Tariff", codec.tariff)
        return built

    def last_updated(self) -> datetime:
        stamp: datetime = _read(
            self.document, "OCPI Tariff", lambda d: codec.moment(d["last_updated"])
        )
        return stamp


@dataclass(frozen=True, kw_only=True)
class RecordOcpiLocation(Command):
    """ocpi.location: what re-pricing needs of a Location, its time zone."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.OCPI_LOCATION

    country_code: str
    party_id: str
    location_id: str
    time_zone: str
    last_updated: datetime

    def __post_init__(self) -> None:
        super().__post_init__()
        load_zone(self.time_zone)


@dataclass(frozen=True, kw_only=True)
class RecordCdr(Command):
    """ocpi.cdr: ``document`` is the OCPI CDR's JSON text; ``time_zone`` its Location's,
    when the message gives it (else the ledger's ocpi.location decides)."""

    MESSAGE_TYPE: ClassVar[MessageType] = MessageType.OCPI_CDR

    document: str
    time_zone: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.cdr()
        if self.time_zone is not None:
            load_zone(self.time_zone)

    def cdr(self) -> ocpi.Cdr:
        built: ocpi.Cdr = _read(self.document, "OCPI CDR", codec.cdr)
        return built

    def raw(self) -> dict[str, Any]:
        """The CDR as decoded JSON (for the fields the engine does not read)."""
        return _document(self.document, "OCPI CDR")
