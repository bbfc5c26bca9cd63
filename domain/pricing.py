"""Pricing a charging session from frozen tariff terms: one calculation, used everywhere.

Rules (ARCHITECTURE.md, Money):

- each component (energy, charging time, session fee, idle fee) is quantity x price,
  rounded half-up to the currency's minor unit; the subtotal is their sum;
  VAT = round half-up(subtotal x vat_rate); total = subtotal + VAT;
- energy = meter stop - meter start in Wh (kWh = Wh/1000, exact);
- charging time = session start to ``charging_ended_at`` (or the stop when absent);
  idle time = charging end to stop, minus the grace period, never below zero;
  durations are whole seconds (sub-second remainders dropped) priced per minute as
  seconds/60, kept as an exact fraction so that a tie really rounds up.

Time-of-day windows: the charging time is split at the window boundaries, read in the
tariff's local time (IANA zone, so DST days are 23 or 25 hours long). The meter gives one
reading at each end only, so **we assume constant power**: the integer Wh are allocated to
windows in proportion to the charging seconds in each, by largest remainder so the parts
sum exactly to the metered Wh (ties go to the earlier window). Each window gives one energy
line item, rounded on its own. If charging took zero seconds all energy goes to the window
in force at the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import currency_exponent, round_ratio_half_up
from domain.tariff import TariffTerms
from domain.timeutil import whole_seconds

# The rule every amount below is rounded to the minor unit with; each price records it.
ROUNDING = "half-up"

ENERGY = "energy"
TIME = "time"
SESSION_FEE = "session_fee"
IDLE_FEE = "idle_fee"

# Display precision of minutes in a line item; the amount is computed from exact seconds.
_MINUTES_DISPLAY = Decimal("0.000001")


@dataclass(frozen=True)
class LineItem:
    """One priced component of a session.

    ``base_quantity`` is exact (Wh, seconds or a count); ``quantity`` is its display form
    (kWh, minutes, sessions).
    """

    component: str
    window: str | None
    base_quantity: int
    base_unit: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount_minor: int

    def to_primitive(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "window": self.window,
            "base_quantity": self.base_quantity,
            "base_unit": self.base_unit,
            "quantity": self.quantity,
            "unit": self.unit,
            "unit_price": self.unit_price,
            "amount_minor": self.amount_minor,
        }

    @classmethod
    def from_primitive(cls, data: dict[str, Any]) -> LineItem:
        return cls(
            component=data["component"],
            window=data["window"],
            base_quantity=int(data["base_quantity"]),
            base_unit=data["base_unit"],
            quantity=Decimal(data["quantity"]),
            unit=data["unit"],
            unit_price=Decimal(data["unit_price"]),
            amount_minor=int(data["amount_minor"]),
        )


@dataclass(frozen=True)
class PricedSession:
    """The result of pricing: line items, subtotal, VAT and total in minor units."""

    currency: str
    line_items: tuple[LineItem, ...]
    subtotal_minor: int
    vat_rate: Decimal
    vat_minor: int
    total_minor: int
    energy_wh: int
    charging_seconds: int
    idle_seconds: int
    billable_idle_seconds: int


@dataclass(frozen=True)
class WindowShare:
    """Charging seconds and allocated Wh in one time-of-day window."""

    window: str
    price_per_kwh: Decimal
    seconds: int
    energy_wh: int


def _minor(quantity: int, per: int, price: Decimal, currency: str) -> int:
    """Round (quantity / per) x price, a major-unit amount, to the currency's minor unit,
    half-up. Exact: the price's own integer ratio, integer products, one rounding (as
    round_half_up of the Fractions, without building them: a third of pricing's time)."""
    price_numerator, price_denominator = price.as_integer_ratio()
    return round_ratio_half_up(
        quantity * price_numerator * 10 ** currency_exponent(currency), per * price_denominator
    )


def allocate_largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split the integer ``total`` in proportion to ``weights`` so the parts sum to it.

    Each part gets the floor of its exact quota; the units left over go to the parts with
    the largest remainders, earlier parts first on ties.
    """
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [total] + [0] * (len(weights) - 1) if weights else []
    parts = [total * weight // weight_sum for weight in weights]
    remainders = [total * weight % weight_sum for weight in weights]
    leftover = total - sum(parts)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in by_remainder[:leftover]:
        parts[index] += 1
    return parts


def window_boundaries(terms: TariffTerms, start: datetime, end: datetime) -> list[datetime]:
    """Instants strictly inside (start, end) where a window starts or ends, sorted."""
    zone = terms.zone()
    if start.tzinfo is zone or end.tzinfo is zone or None in (start.utcoffset(), end.utcoffset()):
        # Python compares two datetimes of one tzinfo by their wall clocks, which in a DST
        # gap or fold is not the order of their instants: compared as written. (A naive
        # start or end is refused there, by the comparison's TypeError, as always.)
        return sorted({i for i in window_instants(terms, start, end) if start < i < end})
    # Compared in UTC: a comparison of datetimes in different zones asks each for its
    # offset (the zone's transitions, on every comparison); Python orders such datetimes
    # as their UTC instants, so the result is the same.
    start_utc, end_utc = start.astimezone(UTC), end.astimezone(UTC)
    return sorted(
        {
            instant
            for instant in window_instants(terms, start, end)
            if start_utc < instant.astimezone(UTC) < end_utc
        }
    )


def window_instants(terms: TariffTerms, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every window start and end on the local days from the day before ``start``'s to the
    day after ``end``'s, in the tariff's zone: the candidates for ``window_boundaries``."""
    zone = terms.zone()
    day: date = start.astimezone(zone).date() - timedelta(days=1)
    last_day = end.astimezone(zone).date() + timedelta(days=1)
    while day <= last_day:
        for window in terms.energy_windows:
            for local_time in (window.starts_at, window.ends_at):
                yield datetime.combine(day, local_time, tzinfo=zone)
        day += timedelta(days=1)


def split_charging_by_window(
    terms: TariffTerms, start: datetime, end: datetime, energy_wh: int
) -> list[WindowShare]:
    """Charging seconds and Wh per energy window, in order of first use."""
    total_seconds = whole_seconds(start, end)
    seconds_by_window: dict[str, int] = {}
    prices: dict[str, Decimal] = {}
    segment_starts = [start, *window_boundaries(terms, start, end)]
    for index, segment_start in enumerate(segment_starts):
        # Offsets from the start (floored) make the segment seconds sum to the total.
        if index + 1 < len(segment_starts):
            segment_end_offset = whole_seconds(start, segment_starts[index + 1])
        else:
            segment_end_offset = total_seconds
        seconds = segment_end_offset - whole_seconds(start, segment_start)
        window, price = terms.energy_price_at(segment_start)
        # A segment shorter than a second holds no charging; keep one only when the whole
        # charge took zero seconds, so its energy still has a window to land in.
        if seconds == 0 and (seconds_by_window or total_seconds > 0):
            continue
        prices[window] = price
        seconds_by_window[window] = seconds_by_window.get(window, 0) + seconds
    windows = list(seconds_by_window)
    energy_parts = allocate_largest_remainder(
        energy_wh, [seconds_by_window[window] for window in windows]
    )
    return [
        WindowShare(window, prices[window], seconds_by_window[window], energy)
        for window, energy in zip(windows, energy_parts, strict=True)
    ]


def _minutes(seconds: int) -> Decimal:
    return (Decimal(seconds) / 60).quantize(_MINUTES_DISPLAY)


def price_session(
    terms: TariffTerms,
    *,
    started_at: datetime,
    stopped_at: datetime,
    charging_ended_at: datetime | None,
    meter_start_wh: int,
    meter_stop_wh: int,
) -> PricedSession:
    """Price one session. Inputs are assumed checked by the session (stop after start...)."""
    currency = terms.currency
    charging_end = charging_ended_at or stopped_at
    energy_wh = meter_stop_wh - meter_start_wh
    charging_seconds = whole_seconds(started_at, charging_end)
    idle_seconds = whole_seconds(charging_end, stopped_at)
    billable_idle_seconds = max(0, idle_seconds - terms.idle_grace_minutes * 60)

    items: list[LineItem] = []
    if terms.energy_windows:
        shares = split_charging_by_window(terms, started_at, charging_end, energy_wh)
    else:
        shares = [WindowShare("standard", terms.price_per_kwh, charging_seconds, energy_wh)]
    for share in shares:
        items.append(
            LineItem(
                component=ENERGY,
                window=share.window if terms.energy_windows else None,
                base_quantity=share.energy_wh,
                base_unit="Wh",
                quantity=Decimal(share.energy_wh) / 1000,
                unit="kWh",
                unit_price=share.price_per_kwh,
                amount_minor=_minor(share.energy_wh, 1000, share.price_per_kwh, currency),
            )
        )
    items.append(
        LineItem(
            component=TIME,
            window=None,
            base_quantity=charging_seconds,
            base_unit="s",
            quantity=_minutes(charging_seconds),
            unit="min",
            unit_price=terms.price_per_minute,
            amount_minor=_minor(charging_seconds, 60, terms.price_per_minute, currency),
        )
    )
    items.append(
        LineItem(
            component=SESSION_FEE,
            window=None,
            base_quantity=1,
            base_unit="session",
            quantity=Decimal(1),
            unit="session",
            # The fee is given in minor units; as a unit price it is shown in major units.
            unit_price=Decimal(terms.session_fee_minor).scaleb(-currency_exponent(currency)),
            amount_minor=terms.session_fee_minor,
        )
    )
    items.append(
        LineItem(
            component=IDLE_FEE,
            window=None,
            base_quantity=billable_idle_seconds,
            base_unit="s",
            quantity=_minutes(billable_idle_seconds),
            unit="min",
            unit_price=terms.idle_fee_per_minute,
            amount_minor=_minor(billable_idle_seconds, 60, terms.idle_fee_per_minute, currency),
        )
    )
    subtotal = sum(item.amount_minor for item in items)
    vat_numerator, vat_denominator = terms.vat_rate.as_integer_ratio()
    vat = round_ratio_half_up(subtotal * vat_numerator, vat_denominator)
    return PricedSession(
        currency=currency,
        line_items=tuple(items),
        subtotal_minor=subtotal,
        vat_rate=terms.vat_rate,
        vat_minor=vat,
        total_minor=subtotal + vat,
        energy_wh=energy_wh,
        charging_seconds=charging_seconds,
        idle_seconds=idle_seconds,
        billable_idle_seconds=billable_idle_seconds,
    )
