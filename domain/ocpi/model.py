"""OCPI 2.2.1 Tariff and CDR as plain frozen values: what the tariff engine reads, nothing more.

Quantities are Decimal in OCPI's own units (kWh, hours, kW, A, percent); instants are
timezone-aware datetimes. Parsing and validating OCPI JSON into these lives outside the
domain (consumers/ocpi_contract.py); the constructors here only check what the engine's
arithmetic relies on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Literal

from domain.errors import InvalidValueError
from domain.money import currency_exponent, require_decimal
from domain.timeutil import require_aware

# Tariff dimensions a price component can price (TariffDimensionType).
ENERGY = "ENERGY"
FLAT = "FLAT"
PARKING_TIME = "PARKING_TIME"
TIME = "TIME"
TARIFF_DIMENSIONS = (FLAT, ENERGY, TIME, PARKING_TIME)
TariffDimension = Literal["ENERGY", "FLAT", "PARKING_TIME", "TIME"]

# CDR dimensions (CdrDimensionType without the session-only values).
RESERVATION_TIME = "RESERVATION_TIME"
MIN_CURRENT = "MIN_CURRENT"
MAX_CURRENT = "MAX_CURRENT"
MIN_POWER = "MIN_POWER"
MAX_POWER = "MAX_POWER"
CDR_DIMENSIONS = (
    ENERGY,
    TIME,
    PARKING_TIME,
    RESERVATION_TIME,
    MIN_CURRENT,
    MAX_CURRENT,
    MIN_POWER,
    MAX_POWER,
)

WEEKDAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


@dataclass(frozen=True)
class OcpiPrice:
    """An OCPI Price: an amount excluding VAT and, when known, including VAT (major units)."""

    excl_vat: Decimal
    incl_vat: Decimal | None = None

    def __post_init__(self) -> None:
        require_decimal(self.excl_vat, "excl_vat", allow_negative=True)
        if self.incl_vat is not None:
            require_decimal(self.incl_vat, "incl_vat", allow_negative=True)


@dataclass(frozen=True)
class PriceComponent:
    """How one dimension is priced: ``price`` per unit excl. VAT, VAT percent, step size.

    ``vat`` None means "no VAT applicable", which OCPI distinguishes from 0 %.
    ``step_size`` is in Wh for ENERGY, seconds for TIME and PARKING_TIME, unused for FLAT.
    """

    type: TariffDimension
    price: Decimal
    step_size: int
    vat: Decimal | None = None

    def __post_init__(self) -> None:
        if self.type not in TARIFF_DIMENSIONS:
            raise InvalidValueError(f"price component type must be one of {TARIFF_DIMENSIONS}")
        require_decimal(self.price, "price component price")
        if self.vat is not None:
            require_decimal(self.vat, "price component vat")
        if isinstance(self.step_size, bool) or not isinstance(self.step_size, int):
            raise InvalidValueError("step_size must be an integer")
        if self.step_size < 0:
            raise InvalidValueError(f"step_size must not be negative, got {self.step_size}")


@dataclass(frozen=True)
class Restrictions:
    """When a tariff element is active; every field set must hold (logical AND).

    Times and dates are local to the location's time zone; ``end_time`` before
    ``start_time`` wraps past midnight; ``end_date``, ``max_*`` are exclusive.
    """

    start_time: time | None = None
    end_time: time | None = None
    start_date: date | None = None
    end_date: date | None = None
    min_kwh: Decimal | None = None
    max_kwh: Decimal | None = None
    min_current: Decimal | None = None
    max_current: Decimal | None = None
    min_power: Decimal | None = None
    max_power: Decimal | None = None
    min_duration: int | None = None
    max_duration: int | None = None
    day_of_week: tuple[str, ...] = ()
    reservation: str | None = None

    def __post_init__(self) -> None:
        for day in self.day_of_week:
            if day not in WEEKDAYS:
                raise InvalidValueError(f"day_of_week must be one of {WEEKDAYS}, got {day!r}")


@dataclass(frozen=True)
class TariffElement:
    """Price components sharing one set of restrictions (none: always active)."""

    price_components: tuple[PriceComponent, ...]
    restrictions: Restrictions | None = None

    def __post_init__(self) -> None:
        if not self.price_components:
            raise InvalidValueError("a tariff element needs at least one price component")

    def component(self, dimension: str) -> PriceComponent | None:
        """This element's first component for ``dimension``, if it has one."""
        return next((c for c in self.price_components if c.type == dimension), None)


@dataclass(frozen=True)
class Tariff:
    """An OCPI 2.2.1 Tariff: ordered elements plus optional bounds on a session's cost."""

    country_code: str
    party_id: str
    id: str
    currency: str
    elements: tuple[TariffElement, ...]
    min_price: OcpiPrice | None = None
    max_price: OcpiPrice | None = None
    start_date_time: datetime | None = None
    end_date_time: datetime | None = None

    def __post_init__(self) -> None:
        currency_exponent(self.currency)
        if not self.elements:
            raise InvalidValueError("a tariff needs at least one element")
        for moment, what in (
            (self.start_date_time, "start_date_time"),
            (self.end_date_time, "end_date_time"),
        ):
            if moment is not None:
                require_aware(moment, f"tariff {what}")


@dataclass(frozen=True)
class CdrDimension:
    """One measured quantity of a charging period (kWh, hours, A or kW)."""

    type: str
    volume: Decimal

    def __post_init__(self) -> None:
        if self.type not in CDR_DIMENSIONS:
            raise InvalidValueError(f"CDR dimension type must be one of {CDR_DIMENSIONS}")
        require_decimal(self.volume, f"{self.type} volume", allow_negative=True)


@dataclass(frozen=True)
class ChargingPeriod:
    """A stretch of the session from ``start_date_time`` to the next period's start."""

    start_date_time: datetime
    dimensions: tuple[CdrDimension, ...]
    tariff_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.start_date_time, "charging period start_date_time")
        if not self.dimensions:
            raise InvalidValueError("a charging period needs at least one dimension")

    def volume(self, dimension: str) -> Decimal | None:
        """The period's volume of ``dimension``, or None when the CDR does not give it."""
        found = [d.volume for d in self.dimensions if d.type == dimension]
        return sum(found, Decimal(0)) if found else None


@dataclass(frozen=True)
class Cdr:
    """The parts of an OCPI 2.2.1 CDR that pricing and reconciliation need."""

    country_code: str
    party_id: str
    id: str
    start_date_time: datetime
    end_date_time: datetime
    currency: str
    charging_periods: tuple[ChargingPeriod, ...]
    total_cost: OcpiPrice
    total_energy: Decimal
    total_time: Decimal
    total_fixed_cost: OcpiPrice | None = None
    total_energy_cost: OcpiPrice | None = None
    total_time_cost: OcpiPrice | None = None
    total_parking_time: Decimal | None = None
    total_parking_cost: OcpiPrice | None = None
    total_reservation_cost: OcpiPrice | None = None
    tariff_ids: tuple[str, ...] = field(default=())
    credit: bool = False
    credit_reference_id: str | None = None

    def __post_init__(self) -> None:
        require_aware(self.start_date_time, "CDR start_date_time")
        require_aware(self.end_date_time, "CDR end_date_time")
        currency_exponent(self.currency)
        if self.end_date_time < self.start_date_time:
            raise InvalidValueError("CDR end_date_time is before its start_date_time")
        if not self.charging_periods:
            raise InvalidValueError("a CDR needs at least one charging period")
        if self.credit and not self.credit_reference_id:
            raise InvalidValueError("a credit CDR needs credit_reference_id")

    def reported_cost(self, dimension: str | None) -> OcpiPrice | None:
        """The CDR's own cost for a tariff dimension (None: its total_cost), if it gives one."""
        by_dimension = {
            None: self.total_cost,
            FLAT: self.total_fixed_cost,
            ENERGY: self.total_energy_cost,
            TIME: self.total_time_cost,
            PARKING_TIME: self.total_parking_cost,
        }
        return by_dimension.get(dimension)
