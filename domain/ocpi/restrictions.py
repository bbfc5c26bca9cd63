"""Whether a tariff element's restrictions hold for one charging period of a CDR.

A restriction is read at the start of the period (the CPO starts a new period whenever
another price component becomes active): local time, date and weekday in the location's
time zone, the energy charged and the time elapsed before the period, and the period's
own MIN/MAX_POWER and MIN/MAX_CURRENT. A power or current restriction that the period
does not measure cannot be refuted and holds, as in the reference engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from domain.ocpi.model import (
    MAX_CURRENT,
    MAX_POWER,
    MIN_CURRENT,
    MIN_POWER,
    WEEKDAYS,
    ChargingPeriod,
    Restrictions,
)

_MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class PeriodContext:
    """What restrictions are checked against, at the start of one charging period."""

    local_start: datetime
    energy_before_kwh: Decimal
    elapsed_before_seconds: Decimal
    period: ChargingPeriod


def _time_of_day_holds(restrictions: Restrictions, moment: time) -> bool:
    start, end = restrictions.start_time, restrictions.end_time
    # "To stop at end of the day use 00:00": an end of 00:00 is the end of the day.
    end_of_day = end == _MIDNIGHT
    if start is not None and end is not None and end < start:
        return moment >= start or moment < end
    if start is not None and moment < start:
        return False
    return end is None or end_of_day or moment < end


def _at_least(measured: Decimal | None, bound: Decimal | None) -> bool:
    return bound is None or measured is None or measured >= bound


def _below(measured: Decimal | None, bound: Decimal | None) -> bool:
    return bound is None or measured is None or measured < bound


def holds(restrictions: Restrictions | None, context: PeriodContext) -> bool:
    """True when every restriction that is set holds for the period (no restrictions: True)."""
    if restrictions is None:
        return True
    if restrictions.reservation is not None:
        # Reservation elements price reservations only, which this engine does not price.
        return False
    local = context.local_start
    if not _time_of_day_holds(restrictions, local.time().replace(tzinfo=None)):
        return False
    if restrictions.start_date is not None and local.date() < restrictions.start_date:
        return False
    if restrictions.end_date is not None and local.date() >= restrictions.end_date:
        return False
    if restrictions.day_of_week and WEEKDAYS[local.weekday()] not in restrictions.day_of_week:
        return False
    energy, elapsed = context.energy_before_kwh, context.elapsed_before_seconds
    period = context.period
    return (
        _at_least(energy, restrictions.min_kwh)
        and _below(energy, restrictions.max_kwh)
        and _at_least(elapsed, _decimal(restrictions.min_duration))
        and _below(elapsed, _decimal(restrictions.max_duration))
        and _at_least(period.volume(MIN_POWER), restrictions.min_power)
        and _below(period.volume(MAX_POWER), restrictions.max_power)
        and _at_least(period.volume(MIN_CURRENT), restrictions.min_current)
        and _below(period.volume(MAX_CURRENT), restrictions.max_current)
    )


def _decimal(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)
