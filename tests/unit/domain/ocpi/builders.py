"""Terse builders of OCPI tariffs and CDRs for the engine's tests."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal

from domain.ocpi.model import (
    Cdr,
    CdrDimension,
    ChargingPeriod,
    OcpiPrice,
    PriceComponent,
    Restrictions,
    Tariff,
    TariffElement,
)


def component(kind: str, price: str, step: int = 1, vat: str | None = None) -> PriceComponent:
    return PriceComponent(
        type=kind,  # type: ignore[arg-type]
        price=Decimal(price),
        step_size=step,
        vat=None if vat is None else Decimal(vat),
    )


def element(*components: PriceComponent, **restrictions: object) -> TariffElement:
    for key in ("start_time", "end_time"):
        if isinstance(restrictions.get(key), str):
            restrictions[key] = time.fromisoformat(str(restrictions[key]))
    for key in ("min_kwh", "max_kwh", "min_power", "max_power", "min_current", "max_current"):
        if key in restrictions:
            restrictions[key] = Decimal(str(restrictions[key]))
    if "day_of_week" in restrictions:
        restrictions["day_of_week"] = tuple(restrictions["day_of_week"])  # type: ignore[call-overload]
    return TariffElement(
        price_components=components,
        restrictions=Restrictions(**restrictions) if restrictions else None,  # type: ignore[arg-type]
    )


def tariff(
    *elements: TariffElement,
    min_price: OcpiPrice | None = None,
    max_price: OcpiPrice | None = None,
    currency: str = "EUR",
) -> Tariff:
    return Tariff(
        country_code="DE",
        party_id="ALL",
        id="T1",
        currency=currency,
        elements=elements,
        min_price=min_price,
        max_price=max_price,
    )


def period(start: datetime, **volumes: str) -> ChargingPeriod:
    return ChargingPeriod(
        start_date_time=start,
        dimensions=tuple(CdrDimension(kind, Decimal(v)) for kind, v in volumes.items()),
    )


def cdr(start: datetime, end: datetime, *periods: ChargingPeriod, currency: str = "EUR") -> Cdr:
    return Cdr(
        country_code="DE",
        party_id="ALL",
        id="C1",
        start_date_time=start,
        end_date_time=end,
        currency=currency,
        charging_periods=periods,
        total_cost=OcpiPrice(Decimal(0)),
        total_energy=Decimal(0),
        total_time=Decimal(hours_between(start, end)),
    )


def hours(minutes: int) -> str:
    """Minutes as hours with OCPI's 4 decimals, as a CPO would send them (10 min: 0.1667)."""
    return str((Decimal(minutes) / 60).quantize(Decimal("0.0001")))


def hours_between(start: datetime, end: datetime) -> str:
    return hours((end - start) // timedelta(minutes=1))
