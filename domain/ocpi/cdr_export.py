"""The operator's own charging sessions as OCPI 2.2.1 CDRs, priced by the OCPI engine.

A session's sealed tariff (the terms frozen at its start) becomes an OCPI Tariff:

- the session fee is a FLAT component, the energy price an ENERGY component (step 1 Wh),
  the price per minute a TIME component per hour (step 1 s), VAT the tariff's rate;
- each time-of-day energy window is an ENERGY element restricted by start_time/end_time
  (listed last window first: in evledger the later window wins an overlap, in OCPI the
  first element), before the standard energy element;
- the idle fee is a PARKING_TIME component (step 1 s). Its grace period starts when
  charging ends, which a 2.2.1 restriction cannot say; the exported tariff carries it as
  ``min_duration`` = this session's charging seconds + the grace, so each CDR embeds its
  own copy of the tariff in ``tariffs``.

Charging periods split the charging time at the window boundaries (each window's Wh, as
the ledger allocated them, shared over its periods by largest remainder), then the idle
time within the grace and after it. Volumes: kWh exact, hours to 6 decimals (the engine
counts time in whole seconds). The totals per dimension and the total_cost are what the
OCPI engine gives for that tariff and those periods, so a receiver's re-pricing agrees
with them; the ledger's own total (components rounded one by one) is returned beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.money import currency_exponent
from domain.ocpi import codec
from domain.ocpi.engine import CdrPricing, price_cdr
from domain.ocpi.model import ENERGY, FLAT, PARKING_TIME, TIME
from domain.pricing import (
    allocate_largest_remainder,
    split_charging_by_window,
    window_boundaries,
)
from domain.tariff import TariffTerms
from domain.timeutil import whole_seconds

_HOURS = Decimal("0.000001")
_COST_FIELDS = {
    FLAT: "total_fixed_cost",
    ENERGY: "total_energy_cost",
    TIME: "total_time_cost",
    PARKING_TIME: "total_parking_cost",
}


@dataclass(frozen=True)
class SealedSession:
    """A priced session of the operator's own, as the ledger holds it."""

    session_id: str
    station_id: str
    connector_id: str
    customer_id: str
    tariff_id: str
    tariff_version: int
    terms: TariffTerms
    started_at: datetime
    stopped_at: datetime
    charging_ended_at: datetime | None
    meter_start_wh: int
    meter_stop_wh: int
    billed_total_minor: int


@dataclass(frozen=True)
class ExportedCdr:
    document: dict[str, Any]
    pricing: CdrPricing
    billed_total_minor: int

    @property
    def agrees_with_ledger(self) -> bool:
        return self.pricing.total_incl_vat.minor == self.billed_total_minor


def _hours(seconds: int) -> Decimal:
    return (Decimal(seconds) / 3600).quantize(_HOURS)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _whole(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def ocpi_tariff(
    session: SealedSession, country_code: str, party_id: str, charging_seconds: int
) -> dict[str, Any]:
    """The session's sealed terms as an OCPI Tariff (decoded JSON), issued by the party."""
    terms = session.terms
    vat = terms.vat_rate * 100
    fee = Decimal(terms.session_fee_minor).scaleb(-currency_exponent(terms.currency))
    elements: list[dict[str, Any]] = []
    for window in reversed(terms.energy_windows):
        elements.append(
            {
                "price_components": [
                    {"type": ENERGY, "price": window.price_per_kwh, "vat": vat, "step_size": 1}
                ],
                "restrictions": {
                    "start_time": window.starts_at.strftime("%H:%M"),
                    "end_time": window.ends_at.strftime("%H:%M"),
                },
            }
        )
    base: list[dict[str, Any]] = [
        {"type": ENERGY, "price": terms.price_per_kwh, "vat": vat, "step_size": 1}
    ]
    if fee:
        base.insert(0, {"type": FLAT, "price": fee, "vat": vat, "step_size": 0})
    if terms.price_per_minute:
        base.append(
            {"type": TIME, "price": terms.price_per_minute * 60, "vat": vat, "step_size": 1}
        )
    elements.append({"price_components": base})
    if terms.idle_fee_per_minute:
        parking: dict[str, Any] = {
            "price_components": [
                {
                    "type": PARKING_TIME,
                    "price": terms.idle_fee_per_minute * 60,
                    "vat": vat,
                    "step_size": 1,
                }
            ]
        }
        if terms.idle_grace_minutes:
            parking["restrictions"] = {
                "min_duration": charging_seconds + terms.idle_grace_minutes * 60
            }
        elements.append(parking)
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": session.tariff_id,
        "currency": terms.currency,
        "type": "REGULAR",
        "elements": elements,
        "last_updated": _utc(session.started_at),
    }


def _charging_periods(session: SealedSession, charging_seconds: int) -> list[dict[str, Any]]:
    """Periods start at whole seconds from the session's start, so the engine's elapsed
    times and the ledger's whole seconds agree."""
    terms, base = session.terms, _whole(session.started_at)
    charging_end = session.charging_ended_at or session.stopped_at
    boundaries = window_boundaries(terms, base, charging_end) if terms.energy_windows else []
    offsets = [
        0,
        *(
            whole_seconds(base, b)
            for b in boundaries
            if b - base < timedelta(seconds=charging_seconds)
        ),
    ]
    ends = [*offsets[1:], charging_seconds]
    segments = [
        (offset, end - offset, terms.energy_price_at(base + timedelta(seconds=offset))[0])
        for offset, end in zip(offsets, ends, strict=True)
    ]
    segments = [s for s in segments if s[1] > 0] or segments[:1]
    energy_wh = session.meter_stop_wh - session.meter_start_wh
    if terms.energy_windows:
        ledger = split_charging_by_window(terms, session.started_at, charging_end, energy_wh)
        shares = {share.window: share.energy_wh for share in ledger}
    else:
        shares = {segments[0][2]: energy_wh}
    wh = [0] * len(segments)
    for window, window_wh in shares.items():
        # A window the ledger gave Wh but no whole second lies in keeps them in period 1.
        mine = [i for i, s in enumerate(segments) if s[2] == window] or [0]
        weights = [segments[i][1] for i in mine]
        for index, part in zip(mine, allocate_largest_remainder(window_wh, weights), strict=True):
            wh[index] += part
    return [
        {
            "start_date_time": _utc(base + timedelta(seconds=offset)),
            "dimensions": [
                {"type": ENERGY, "volume": Decimal(wh[i]) / 1000},
                {"type": TIME, "volume": _hours(seconds)},
            ],
        }
        for i, (offset, seconds, _) in enumerate(segments)
    ]


def _idle_periods(
    session: SealedSession, charging_seconds: int, idle_seconds: int
) -> list[dict[str, Any]]:
    terms = session.terms
    grace = min(idle_seconds, terms.idle_grace_minutes * 60) if terms.idle_fee_per_minute else 0
    base = _whole(session.started_at)
    parts = [(charging_seconds, grace), (charging_seconds + grace, idle_seconds - grace)]
    return [
        {
            "start_date_time": _utc(base + timedelta(seconds=offset)),
            "dimensions": [{"type": PARKING_TIME, "volume": _hours(seconds)}],
        }
        for offset, seconds in parts
        if seconds > 0
    ]


def export_cdr(session: SealedSession, country_code: str, party_id: str) -> ExportedCdr:
    """The session as an OCPI 2.2.1 CDR (decoded JSON, Decimal numbers), priced."""
    charging_end = session.charging_ended_at or session.stopped_at
    charging_seconds = whole_seconds(session.started_at, charging_end)
    idle_seconds = whole_seconds(charging_end, session.stopped_at)
    tariff = ocpi_tariff(session, country_code, party_id, charging_seconds)
    periods = _charging_periods(session, charging_seconds) + _idle_periods(
        session, charging_seconds, idle_seconds
    )
    zone = session.terms.timezone or "UTC"
    customer = session.customer_id[:36]
    document: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": session.session_id[:39],
        "start_date_time": _utc(_whole(session.started_at)),
        "end_date_time": _utc(
            _whole(session.started_at) + timedelta(seconds=charging_seconds + idle_seconds)
        ),
        "session_id": session.session_id[:36],
        "cdr_token": {
            "country_code": country_code,
            "party_id": party_id,
            "uid": customer,
            "type": "OTHER",
            "contract_id": customer,
        },
        "auth_method": "WHITELIST",
        "cdr_location": {
            # evledger keeps no addresses: the station and connector ids, placeholders else.
            "id": session.station_id[:36],
            "address": "-",
            "city": "-",
            "country": "ZZZ",
            "coordinates": {"latitude": "0.000000", "longitude": "0.000000"},
            "evse_uid": session.station_id[:36],
            "evse_id": session.station_id[:48],
            "connector_id": session.connector_id[:36],
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "currency": session.terms.currency,
        "tariffs": [tariff],
        "charging_periods": [{**period, "tariff_id": session.tariff_id} for period in periods],
        "total_cost": {"excl_vat": Decimal(0), "incl_vat": Decimal(0)},
        "total_energy": Decimal(session.meter_stop_wh - session.meter_start_wh) / 1000,
        "total_time": _hours(charging_seconds + idle_seconds),
        "total_parking_time": _hours(idle_seconds),
        "last_updated": _utc(session.stopped_at),
    }
    pricing = price_cdr(codec.tariff(tariff), codec.cdr(document), zone)
    for dimension in pricing.dimensions:
        document[_COST_FIELDS[dimension.dimension]] = {
            "excl_vat": dimension.excl_vat.to_major(),
            "incl_vat": dimension.incl_vat.to_major(),
        }
    document["total_cost"] = {
        "excl_vat": pricing.total_excl_vat.to_major(),
        "incl_vat": pricing.total_incl_vat.to_major(),
    }
    return ExportedCdr(document, pricing, session.billed_total_minor)
