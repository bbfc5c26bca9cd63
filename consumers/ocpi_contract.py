"""OCPI 2.2.1 Tariff, Location and CDR objects: validated from JSON, turned into domain values.

Numbers are JSON numbers (never strings) and are read as Decimal, never through a float;
DateTimes without a zone designator are UTC, as OCPI says. Strings are checked against the
lengths and patterns of the 2.2.1 definitions; unknown fields are kept but ignored. A bad
object raises `ContractViolation` with the field's dotted path and the reason, which is
what a dead-letter record carries.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from consumers.contract import ContractViolation
from domain.errors import InvalidValueError
from domain.money import CURRENCY_EXPONENTS
from domain.ocpi import codec
from domain.ocpi import model as ocpi

OCPI_VERSION = "2.2.1"


def _number(value: Any) -> Decimal:
    # bool is an int subclass; a string or float here means the JSON was not read as OCPI.
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"must be a JSON number, got {type(value).__name__}")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(f"must be a finite number, got {value}")
    return number


def rfc3339_text(value: Any) -> Any:
    # In lax mode a bare number would pass as a Unix timestamp; OCPI DateTimes are strings.
    if not isinstance(value, str):
        raise ValueError(f"must be an RFC 3339 string, got {type(value).__name__}")
    return value


def _utc(value: datetime) -> datetime:
    # "The absence of the timezone designator implies a UTC timestamp."
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _known_currency(value: str) -> str:
    if value not in CURRENCY_EXPONENTS:
        raise ValueError(f"unknown ISO 4217 currency {value!r}")
    return value


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. Europe/Berlin)") from None
    return value


# OCPI CiString(n) / string(n): case-insensitive or plain text of at most n characters.
CiString36 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=36)]
CiString39 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=39)]
CiString40 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=40)]
CiString48 = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=48)]
String10 = Annotated[str, StringConstraints(strict=True, max_length=10)]
String20 = Annotated[str, StringConstraints(strict=True, max_length=20)]
String45 = Annotated[str, StringConstraints(strict=True, max_length=45)]
String255 = Annotated[str, StringConstraints(strict=True, max_length=255)]
String512 = Annotated[str, StringConstraints(strict=True, max_length=512)]
Number = Annotated[Decimal, BeforeValidator(_number)]
NonNegative = Annotated[Decimal, BeforeValidator(_number), Field(ge=0)]
WholeNumber = Annotated[int, Field(strict=True, ge=0)]
DateTime = Annotated[datetime, BeforeValidator(rfc3339_text), AfterValidator(_utc)]
CountryCode = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z]{2}$")]
PartyId = Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Za-z0-9]{3}$")]
Currency = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$"), AfterValidator(_known_currency)
]
HourMinute = Annotated[
    str, StringConstraints(strict=True, pattern=r"^([0-1][0-9]|2[0-3]):[0-5][0-9]$")
]
IsoDate = Annotated[
    str,
    StringConstraints(
        strict=True, pattern=r"^([12][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
    ),
]
DayOfWeek = Literal["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
CdrDimensionType = Literal[
    "ENERGY",
    "MAX_CURRENT",
    "MIN_CURRENT",
    "MAX_POWER",
    "MIN_POWER",
    "PARKING_TIME",
    "RESERVATION_TIME",
    "TIME",
]
SESSION_ONLY_DIMENSIONS = ("CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE")


class OcpiObject(BaseModel):
    """Unknown fields are kept, not used: OCPI parties add their own."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Price(OcpiObject):
    excl_vat: Number
    incl_vat: Number | None = None


class DisplayText(OcpiObject):
    language: Annotated[str, StringConstraints(strict=True, min_length=2, max_length=2)]
    text: String512


class PriceComponent(OcpiObject):
    type: Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]
    price: Number
    vat: NonNegative | None = None
    step_size: WholeNumber


class TariffRestrictions(OcpiObject):
    start_time: HourMinute | None = None
    end_time: HourMinute | None = None
    start_date: IsoDate | None = None
    end_date: IsoDate | None = None
    min_kwh: NonNegative | None = None
    max_kwh: NonNegative | None = None
    min_current: Number | None = None
    max_current: Number | None = None
    min_power: Number | None = None
    max_power: Number | None = None
    min_duration: WholeNumber | None = None
    max_duration: WholeNumber | None = None
    day_of_week: list[DayOfWeek] = []
    reservation: Literal["RESERVATION", "RESERVATION_EXPIRES"] | None = None


class TariffElement(OcpiObject):
    price_components: Annotated[list[PriceComponent], Field(min_length=1)]
    restrictions: TariffRestrictions | None = None


class Tariff(OcpiObject):
    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    currency: Currency
    type: (
        Literal["AD_HOC_PAYMENT", "PROFILE_CHEAP", "PROFILE_FAST", "PROFILE_GREEN", "REGULAR"]
        | None
    ) = None
    tariff_alt_text: list[DisplayText] = []
    tariff_alt_url: str | None = None
    min_price: Price | None = None
    max_price: Price | None = None
    elements: Annotated[list[TariffElement], Field(min_length=1)]
    start_date_time: DateTime | None = None
    end_date_time: DateTime | None = None
    energy_mix: dict[str, Any] | None = None
    last_updated: DateTime


class GeoLocation(OcpiObject):
    latitude: Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,2}\.[0-9]{5,7}$")]
    longitude: Annotated[str, StringConstraints(strict=True, pattern=r"^-?[0-9]{1,3}\.[0-9]{5,7}$")]


class Location(OcpiObject):
    """The Location fields evledger reads; its `time_zone` is what tariffs need."""

    country_code: CountryCode
    party_id: PartyId
    id: CiString36
    publish: Annotated[bool, Field(strict=True)]
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10 | None = None
    state: String20 | None = None
    country: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
    coordinates: GeoLocation
    time_zone: Annotated[
        str, StringConstraints(strict=True, max_length=255), AfterValidator(known_zone)
    ]
    evses: list[dict[str, Any]] = []
    last_updated: DateTime


class CdrToken(OcpiObject):
    country_code: CountryCode
    party_id: PartyId
    uid: CiString36
    type: Literal["AD_HOC_USER", "APP_USER", "OTHER", "RFID"]
    contract_id: CiString36


class CdrLocation(OcpiObject):
    id: CiString36
    name: String255 | None = None
    address: String45
    city: String45
    postal_code: String10 | None = None
    state: String20 | None = None
    country: Annotated[str, StringConstraints(strict=True, pattern=r"^[A-Z]{3}$")]
    coordinates: GeoLocation
    evse_uid: CiString36
    evse_id: CiString48
    connector_id: CiString36
    connector_standard: CiString40
    connector_format: Literal["SOCKET", "CABLE"]
    connector_power_type: Literal[
        "AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC"
    ]


def _cdr_dimension_type(value: Any) -> Any:
    if value in SESSION_ONLY_DIMENSIONS:
        raise ValueError(f"{value} is a Session-only dimension, not allowed in a CDR")
    return value


class CdrDimension(OcpiObject):
    type: Annotated[CdrDimensionType, BeforeValidator(_cdr_dimension_type)]
    volume: Number


class ChargingPeriod(OcpiObject):
    start_date_time: DateTime
    dimensions: Annotated[list[CdrDimension], Field(min_length=1)]
    tariff_id: CiString36 | None = None


class Cdr(OcpiObject):
    country_code: CountryCode
    party_id: PartyId
    id: CiString39
    start_date_time: DateTime
    end_date_time: DateTime
    session_id: CiString36 | None = None
    cdr_token: CdrToken
    auth_method: Literal["AUTH_REQUEST", "COMMAND", "WHITELIST"]
    authorization_reference: CiString36 | None = None
    cdr_location: CdrLocation
    meter_id: String255 | None = None
    currency: Currency
    tariffs: list[Tariff] = []
    charging_periods: Annotated[list[ChargingPeriod], Field(min_length=1)]
    signed_data: dict[str, Any] | None = None
    total_cost: Price
    total_fixed_cost: Price | None = None
    total_energy: Number
    total_energy_cost: Price | None = None
    total_time: NonNegative
    total_time_cost: Price | None = None
    total_parking_time: NonNegative | None = None
    total_parking_cost: Price | None = None
    total_reservation_cost: Price | None = None
    remark: String255 | None = None
    invoice_reference_id: CiString39 | None = None
    credit: Annotated[bool, Field(strict=True)] | None = None
    credit_reference_id: CiString39 | None = None
    home_charging_compensation: Annotated[bool, Field(strict=True)] | None = None
    last_updated: DateTime

    @model_validator(mode="after")
    def _consistent(self) -> Cdr:
        if self.end_date_time < self.start_date_time:
            raise ValueError("end_date_time is before start_date_time")
        if self.credit and not self.credit_reference_id:
            raise ValueError("a credit CDR (credit: true) needs credit_reference_id")
        return self


Model = TypeVar("Model", bound=BaseModel)


def decode(text: str | bytes) -> Any:
    """OCPI JSON with every number read exactly (Decimal), never through a float."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as invalid:
        raise ContractViolation("", f"invalid JSON: {invalid.msg} at char {invalid.pos}") from None
    except UnicodeDecodeError as error:
        raise ContractViolation("", f"not UTF-8 text: {error.reason}") from None


def validate(model: type[Model], document: Any, prefix: str = "") -> Model:
    """``document`` (decoded JSON) as ``model``, or ContractViolation(field, reason)."""
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in (prefix, *first["loc"]) if part != "")
        raise ContractViolation(field, str(first["msg"]).removeprefix("Value error, ")) from None


Built = TypeVar("Built")


def _domain(build: Callable[[dict[str, Any]], Built], model: BaseModel) -> Built:
    """Build a domain value; a rule it enforces becomes a contract violation."""
    try:
        return build(model.model_dump(mode="json", exclude_none=True))
    except InvalidValueError as error:
        raise ContractViolation("", error.reason) from None


def tariff_to_domain(tariff: Tariff) -> ocpi.Tariff:
    """The engine's view of a validated Tariff."""
    return _domain(codec.tariff, tariff)


def cdr_to_domain(cdr: Cdr) -> ocpi.Cdr:
    """The engine's view of a validated CDR."""
    return _domain(codec.cdr, cdr)


def objects_in(document: Any) -> list[Any]:
    """The OCPI objects in a file: one object, an array, or an OCPI response's ``data``."""
    if isinstance(document, dict) and "data" in document and "status_code" in document:
        document = document["data"]
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        return [document]
    raise ContractViolation("", f"expected an OCPI object or array, got {type(document).__name__}")


def encode(document: Any) -> str:
    """JSON text of decoded OCPI JSON, each number written as it was read (Decimal text)."""
    return codec.dumps(document)
