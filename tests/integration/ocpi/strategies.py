"""Hypothesis strategies for OCPI 2.2.1 tariffs and CDRs, as the JSON a CPO would send.

The shapes stay inside what both engines define the same way, so that a disagreement is a
bug and not a reading of the spec: durations are multiples of 36 s (0.01 h, exact with
OCPI's 4 decimals) and time step sizes too; energy is whole Wh; prices have 2 decimals;
every tariff ends with an unrestricted element holding every dimension it prices (so a
dimension is either priced in every period or in none: the engines count the step-size
total differently over unpriced periods); parking comes after charging; no reservation,
no min_price/max_price (the reference engine does not apply them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

ZONES = ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
DIMENSIONS = ["FLAT", "ENERGY", "TIME", "PARKING_TIME"]
POWERS = [7, 11, 22, 50]
CURRENTS = [16, 32, 63]

prices = st.decimals(min_value=0, max_value=5, places=2)
vats = st.none() | st.decimals(min_value=0, max_value=25, places=1)
time_steps = st.sampled_from([0, 1, 36, 180, 360, 900, 1800, 3600])
energy_steps = st.sampled_from([0, 1, 10, 100, 250, 500, 1000])
hhmm = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30]))


@st.composite
def components(draw: st.DrawFn, dimensions: list[str]) -> list[dict[str, Any]]:
    found = []
    for dimension in dimensions:
        step = {"ENERGY": energy_steps, "FLAT": st.just(1)}.get(dimension, time_steps)
        component: dict[str, Any] = {
            "type": dimension,
            "price": draw(prices),
            "step_size": draw(step),
        }
        vat = draw(vats)
        if vat is not None:
            component["vat"] = vat
        found.append(component)
    return found


@st.composite
def restrictions(draw: st.DrawFn) -> dict[str, Any]:
    found: dict[str, Any] = {}
    kinds = draw(
        st.sets(
            st.sampled_from(["time", "days", "kwh", "duration", "power", "current", "dates"]),
            min_size=1,
            max_size=3,
        )
    )
    if "time" in kinds:
        start, end = draw(hhmm), draw(hhmm)
        # An end of 00:00 means end of day in the spec; equal ends are ambiguous: avoided.
        if end not in (start, "00:00"):
            found["start_time"], found["end_time"] = start, end
    if "days" in kinds:
        found["day_of_week"] = sorted(draw(st.sets(st.sampled_from(DAYS), min_size=1)))
    if "kwh" in kinds:
        bound = draw(st.integers(1, 40))
        found["min_kwh" if draw(st.booleans()) else "max_kwh"] = Decimal(bound)
    if "duration" in kinds:
        bound = draw(st.integers(1, 12)) * 900
        found["min_duration" if draw(st.booleans()) else "max_duration"] = bound
    if "power" in kinds:
        found["min_power" if draw(st.booleans()) else "max_power"] = Decimal(
            draw(st.sampled_from(POWERS))
        )
    if "current" in kinds:
        found["min_current" if draw(st.booleans()) else "max_current"] = Decimal(
            draw(st.sampled_from(CURRENTS))
        )
    if "dates" in kinds:
        day = draw(st.integers(1, 20))
        found["start_date"] = f"2024-03-{day:02d}"
        found["end_date"] = f"2024-03-{day + draw(st.integers(1, 5)):02d}"
    return found


@st.composite
def tariffs(draw: st.DrawFn) -> dict[str, Any]:
    priced = draw(st.lists(st.sampled_from(DIMENSIONS), min_size=1, max_size=4, unique=True))
    elements = []
    for _ in range(draw(st.integers(0, 4))):
        mine = draw(st.lists(st.sampled_from(priced), min_size=1, max_size=3, unique=True))
        elements.append(
            {"price_components": draw(components(mine)), "restrictions": draw(restrictions())}
        )
    elements.append({"price_components": draw(components(priced))})
    return {
        "country_code": "NL",
        "party_id": "EVL",
        "id": "T-1",
        "currency": "EUR",
        "elements": elements,
        "last_updated": "2024-01-01T00:00:00Z",
    }


def _hours(units_of_36_s: int) -> Decimal:
    return Decimal(units_of_36_s) / 100


@st.composite
def cdrs(draw: st.DrawFn) -> dict[str, Any]:
    # March 2024 holds the European and US DST changes; minutes are whole in UTC.
    start = datetime(2024, 3, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 30 * 24 * 60)))
    periods = []
    moment = start
    energy_total = Decimal(0)
    for _ in range(draw(st.integers(1, 4))):
        # Whole quarters of an hour and whole kWh often, so restriction bounds are hit exactly.
        units = draw(st.integers(1, 150) | st.integers(1, 6).map(lambda q: q * 25))
        wh = draw(st.integers(0, 30000) | st.integers(0, 30).map(lambda kwh: kwh * 1000))
        energy_total += Decimal(wh) / 1000
        dimensions: list[dict[str, Any]] = [
            {"type": "ENERGY", "volume": Decimal(wh) / 1000},
            {"type": "TIME", "volume": _hours(units)},
        ]
        if draw(st.booleans()):
            low = draw(st.sampled_from(POWERS) | st.integers(1, 60))
            high = draw(st.sampled_from([low] + [p for p in POWERS if p > low]) | st.just(low + 5))
            dimensions += [
                {"type": "MIN_POWER", "volume": Decimal(low)},
                {"type": "MAX_POWER", "volume": Decimal(high)},
            ]
        if draw(st.booleans()):
            low = draw(st.sampled_from(CURRENTS) | st.integers(6, 60))
            high = draw(
                st.sampled_from([low] + [c for c in CURRENTS if c > low]) | st.just(low + 3)
            )
            dimensions += [
                {"type": "MIN_CURRENT", "volume": Decimal(low)},
                {"type": "MAX_CURRENT", "volume": Decimal(high)},
            ]
        periods.append({"start_date_time": _rfc3339(moment), "dimensions": dimensions})
        moment += timedelta(seconds=36 * units)
    parking_hours = Decimal(0)
    for _ in range(draw(st.integers(0, 2))):
        units = draw(st.integers(1, 150))
        parking_hours += _hours(units)
        periods.append(
            {
                "start_date_time": _rfc3339(moment),
                "dimensions": [{"type": "PARKING_TIME", "volume": _hours(units)}],
            }
        )
        moment += timedelta(seconds=36 * units)
    return {
        "country_code": "NL",
        "party_id": "EVL",
        "id": "CDR-1",
        "start_date_time": _rfc3339(start),
        "end_date_time": _rfc3339(moment),
        "cdr_token": {
            "country_code": "DE",
            "party_id": "MSP",
            "uid": "0123456789",
            "type": "RFID",
            "contract_id": "DE-MSP-C12345",
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            "id": "LOC-1",
            "address": "Stationsplein 1",
            "city": "Utrecht",
            "country": "NLD",
            "coordinates": {"latitude": "52.089440", "longitude": "5.110000"},
            "evse_uid": "EVSE-1",
            "evse_id": "NL*EVL*E1",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": "EUR",
        "charging_periods": periods,
        "total_cost": {"excl_vat": Decimal(0), "incl_vat": Decimal(0)},
        "total_energy": energy_total,
        "total_time": Decimal((moment - start) // timedelta(seconds=36)) / 100,
        "total_parking_time": parking_hours,
        "last_updated": _rfc3339(moment),
    }


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
