"""Price an OCPI 2.2.1 CDR from its tariff: exact Decimal arithmetic, money rounded once.

Rules (OCPI 2.2.1, release-2.2.1-bugfixes text):

- per charging period and per dimension, the first tariff element (list order) that has a
  price component for the dimension and whose restrictions hold prices it; none: free;
- FLAT is charged once per session, in the first period where a FLAT component is active;
  ENERGY prices the period's kWh, TIME its charging hours, PARKING_TIME its parking hours;
- ``step_size`` applies once per session: once to the total priced energy, and once to
  TIME and PARKING_TIME together. The total is rounded up to a multiple of the step of the
  component that prices the last priced period, and the extra volume is charged in that
  period at its price. Time totals are first taken to the nearest whole second: OCPI's
  4-decimal hours resolve only 0.36 s, so 10 minutes arrives as 0.1667 h (600.12 s) and
  would otherwise bill a whole extra step; the billed time is then exactly whole steps.
  For time, the last period priced for TIME or PARKING_TIME decides which of the two is
  rounded (PARKING_TIME when that period prices both);
- VAT is per component: incl. = excl. x (1 + vat/100); a component without ``vat`` has no
  VAT applicable, so incl. = excl. (reported as "no VAT", unlike an explicit 0 %);
- ``min_price`` / ``max_price`` bound the totals excl. and incl. VAT separately;
- restrictions are read in the location's IANA time zone, which the caller must give:
  a CDR carries no zone and the engine never guesses one.

Rounding policy (OCPI leaves money rounding to the parties): every period amount and
every total is kept exact; money is rounded **once**, at the end, to the currency's minor
unit, half-up (ties away from zero), with the same helper as the rest of evledger
(``Money.from_major``). The session total is the rounded exact sum, so the rounded
per-dimension figures may differ from it by a minor unit each (the spec's complex example:
2.875 + 3.30 + 4.125 = 10.30 incl. VAT, while 2.88 + 3.30 + 4.13 = 10.31).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, localcontext
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import CurrencyMismatchError, InvalidValueError
from domain.money import Money
from domain.ocpi.model import (
    ENERGY,
    FLAT,
    PARKING_TIME,
    RESERVATION_TIME,
    TIME,
    Cdr,
    ChargingPeriod,
    PriceComponent,
    Tariff,
)
from domain.ocpi.restrictions import PeriodContext, holds

# Dimension order in every report: the order of the CDR's total_*_cost fields.
DIMENSION_ORDER = (FLAT, ENERGY, TIME, PARKING_TIME)
UNITS = {FLAT: "session", ENERGY: "kWh", TIME: "h", PARKING_TIME: "h"}
# Step sizes are in Wh for energy (volumes in kWh) and seconds for time (volumes in hours).
_STEP_UNITS_PER_VOLUME = {ENERGY: Decimal(1000), TIME: Decimal(3600), PARKING_TIME: Decimal(3600)}
_HUNDRED = Decimal(100)
_MICROSECOND = timedelta(microseconds=1)
# Exact arithmetic needs headroom: OCPI numbers have 4 decimals, products stay far below this.
_PRECISION = 60


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. Europe/Amsterdam), or InvalidValueError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidValueError(
            f"unknown IANA time zone {name!r} (give the Location's time_zone, e.g. Europe/Berlin)"
        ) from None


@dataclass(frozen=True)
class PeriodLine:
    """One dimension priced in one period: the consumed and the billed volume, and cost."""

    dimension: str
    element_index: int
    volume: Decimal
    billed_volume: Decimal
    price: Decimal
    vat: Decimal | None
    step_size: int
    excl_vat: Decimal
    incl_vat: Decimal


@dataclass(frozen=True)
class PricedPeriod:
    """A charging period with its end and the lines priced in it."""

    index: int
    start: datetime
    end: datetime
    lines: tuple[PeriodLine, ...]


@dataclass(frozen=True)
class DimensionCost:
    """A dimension over the whole session: billed volume, exact and rounded cost."""

    dimension: str
    volume: Decimal
    billed_volume: Decimal
    excl_vat_exact: Decimal
    incl_vat_exact: Decimal
    excl_vat: Money
    incl_vat: Money


@dataclass(frozen=True)
class CdrPricing:
    """The engine's result for one CDR."""

    currency: str
    time_zone: str
    periods: tuple[PricedPeriod, ...]
    dimensions: tuple[DimensionCost, ...]
    total_excl_vat_exact: Decimal
    total_incl_vat_exact: Decimal
    total_excl_vat: Money
    total_incl_vat: Money
    bounded_by: tuple[str, ...]
    notes: tuple[str, ...]

    def dimension(self, name: str) -> DimensionCost | None:
        return next((d for d in self.dimensions if d.dimension == name), None)


@dataclass
class _Draft:
    """A line before step sizes are applied (mutable while the session is assembled)."""

    period: int
    dimension: str
    element_index: int
    component: PriceComponent
    volume: Decimal
    billed_volume: Decimal


def _active(
    tariff: Tariff, dimension: str, context: PeriodContext
) -> tuple[int, PriceComponent] | None:
    """The first element with a component for ``dimension`` whose restrictions hold."""
    for index, element in enumerate(tariff.elements):
        component = element.component(dimension)
        if component is not None and holds(element.restrictions, context):
            return index, component
    return None


def _round_up_total(drafts: list[_Draft], last: _Draft) -> None:
    """Round the dimension's priced total up to ``last``'s step; bill the extra in ``last``."""
    step = last.component.step_size
    if step <= 0:
        return
    per_unit = _STEP_UNITS_PER_VOLUME[last.dimension]
    total = sum((d.volume for d in drafts if d.dimension == last.dimension), Decimal(0))
    in_units = total * per_unit
    if last.dimension != ENERGY:
        # Hours with OCPI's 4 decimals resolve 0.36 s: 10 minutes arrives as 0.1667 h =
        # 600.12 s, which must not bill a second 600 s step. Time counts in whole seconds.
        in_units = in_units.to_integral_value(rounding=ROUND_HALF_UP)
    in_steps = (in_units / step).to_integral_value(rounding=ROUND_CEILING)
    billed_total = in_steps * step / per_unit
    last.billed_volume += billed_total - total


def _apply_step_sizes(drafts: list[_Draft]) -> None:
    energy = [d for d in drafts if d.dimension == ENERGY]
    if energy:
        _round_up_total(drafts, energy[-1])
    timed = [d for d in drafts if d.dimension in (TIME, PARKING_TIME)]
    if timed:
        last_period = timed[-1].period
        in_last = [d for d in timed if d.period == last_period]
        parking = [d for d in in_last if d.dimension == PARKING_TIME]
        _round_up_total(drafts, parking[0] if parking else in_last[0])


def _period_ends(cdr: Cdr, periods: list[ChargingPeriod]) -> list[datetime]:
    return [p.start_date_time for p in periods[1:]] + [cdr.end_date_time]


def _line(draft: _Draft) -> PeriodLine:
    component = draft.component
    excl = draft.billed_volume * component.price
    incl = excl if component.vat is None else excl * (1 + component.vat / _HUNDRED)
    return PeriodLine(
        dimension=draft.dimension,
        element_index=draft.element_index,
        volume=draft.volume,
        billed_volume=draft.billed_volume,
        price=component.price,
        vat=component.vat,
        step_size=component.step_size,
        excl_vat=excl,
        incl_vat=incl,
    )


def _bounded(
    tariff: Tariff, excl: Decimal, incl: Decimal
) -> tuple[Decimal, Decimal, tuple[str, ...]]:
    applied: list[str] = []
    if tariff.min_price is not None:
        if excl < tariff.min_price.excl_vat:
            excl = tariff.min_price.excl_vat
            applied.append("min_price excl. VAT")
        if tariff.min_price.incl_vat is not None and incl < tariff.min_price.incl_vat:
            incl = tariff.min_price.incl_vat
            applied.append("min_price incl. VAT")
    if tariff.max_price is not None:
        if excl > tariff.max_price.excl_vat:
            excl = tariff.max_price.excl_vat
            applied.append("max_price excl. VAT")
        if tariff.max_price.incl_vat is not None and incl > tariff.max_price.incl_vat:
            incl = tariff.max_price.incl_vat
            applied.append("max_price incl. VAT")
    return excl, incl, tuple(applied)


def _notes(tariff: Tariff, cdr: Cdr, periods: list[ChargingPeriod]) -> list[str]:
    notes: list[str] = []
    start = cdr.start_date_time
    if tariff.start_date_time is not None and start < tariff.start_date_time:
        notes.append(f"tariff {tariff.id} is only valid from {tariff.start_date_time}")
    if tariff.end_date_time is not None and start >= tariff.end_date_time:
        notes.append(f"tariff {tariff.id} expired at {tariff.end_date_time}")
    if any(p.volume(RESERVATION_TIME) for p in periods):
        notes.append("RESERVATION_TIME is not priced (reservations are not supported)")
    return notes


def price_cdr(tariff: Tariff, cdr: Cdr, time_zone: str) -> CdrPricing:
    """Price ``cdr`` with ``tariff``, reading local times in ``time_zone`` (IANA name)."""
    zone = load_zone(time_zone)
    if tariff.currency != cdr.currency:
        raise CurrencyMismatchError(
            f"tariff {tariff.id} is in {tariff.currency} but CDR {cdr.id} is in {cdr.currency}"
        )
    periods = sorted(cdr.charging_periods, key=lambda p: p.start_date_time)
    ends = _period_ends(cdr, periods)
    with localcontext() as context:
        context.prec = _PRECISION
        drafts: list[_Draft] = []
        flat_charged = False
        energy_before = Decimal(0)
        first_start = periods[0].start_date_time
        for index, period in enumerate(periods):
            elapsed = Decimal((period.start_date_time - first_start) // _MICROSECOND) / 10**6
            situation = PeriodContext(
                local_start=period.start_date_time.astimezone(zone),
                energy_before_kwh=energy_before,
                elapsed_before_seconds=elapsed,
                period=period,
            )
            for dimension in DIMENSION_ORDER:
                active = _active(tariff, dimension, situation)
                if active is None:
                    continue
                element_index, component = active
                if dimension == FLAT:
                    if flat_charged:
                        continue
                    flat_charged = True
                    volume: Decimal | None = Decimal(1)
                else:
                    volume = period.volume(dimension)
                if volume is None:
                    continue
                drafts.append(_Draft(index, dimension, element_index, component, volume, volume))
            energy_before += period.volume(ENERGY) or Decimal(0)
        _apply_step_sizes(drafts)
        lines = [_line(draft) for draft in drafts]
        priced_periods = tuple(
            PricedPeriod(
                index=index,
                start=period.start_date_time,
                end=ends[index],
                lines=tuple(
                    line for line, d in zip(lines, drafts, strict=True) if d.period == index
                ),
            )
            for index, period in enumerate(periods)
        )
        dimensions: list[DimensionCost] = []
        for dimension in DIMENSION_ORDER:
            mine = [line for line in lines if line.dimension == dimension]
            if not mine:
                continue
            excl = sum((line.excl_vat for line in mine), Decimal(0))
            incl = sum((line.incl_vat for line in mine), Decimal(0))
            dimensions.append(
                DimensionCost(
                    dimension=dimension,
                    volume=sum((line.volume for line in mine), Decimal(0)),
                    billed_volume=sum((line.billed_volume for line in mine), Decimal(0)),
                    excl_vat_exact=excl,
                    incl_vat_exact=incl,
                    excl_vat=Money.from_major(excl, cdr.currency),
                    incl_vat=Money.from_major(incl, cdr.currency),
                )
            )
        total_excl = sum((d.excl_vat_exact for d in dimensions), Decimal(0))
        total_incl = sum((d.incl_vat_exact for d in dimensions), Decimal(0))
        total_excl, total_incl, bounded_by = _bounded(tariff, total_excl, total_incl)
    return CdrPricing(
        currency=cdr.currency,
        time_zone=time_zone,
        periods=priced_periods,
        dimensions=tuple(dimensions),
        total_excl_vat_exact=total_excl,
        total_incl_vat_exact=total_incl,
        total_excl_vat=Money.from_major(total_excl, cdr.currency),
        total_incl_vat=Money.from_major(total_incl, cdr.currency),
        bounded_by=bounded_by,
        notes=tuple(_notes(tariff, cdr, periods)),
    )
