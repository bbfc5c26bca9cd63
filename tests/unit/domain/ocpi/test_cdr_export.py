"""A session of the operator's own as an OCPI CDR: periods split at the energy windows, the
idle grace free and the idle after it priced, totals the engine's, close to the ledger's."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

from domain.ocpi import codec
from domain.ocpi.cdr_export import SealedSession, export_cdr
from domain.ocpi.engine import price_cdr
from domain.pricing import price_session
from domain.tariff import EnergyWindow, TariffTerms

TERMS = TariffTerms(
    currency="EUR",
    price_per_kwh=Decimal("0.30"),
    vat_rate=Decimal("0.19"),
    price_per_minute=Decimal("0.02"),
    session_fee_minor=50,
    idle_fee_per_minute=Decimal("0.10"),
    idle_grace_minutes=15,
    timezone="Europe/Berlin",
    energy_windows=(EnergyWindow("peak", time(17, 0), time(21, 0), Decimal("0.60")),),
)
# 16:30 to 17:30 Berlin (CEST, UTC+2) charging, then 25 minutes idle.
STARTED = datetime(2024, 6, 3, 14, 30, tzinfo=UTC)
CHARGED = datetime(2024, 6, 3, 15, 30, tzinfo=UTC)
STOPPED = datetime(2024, 6, 3, 15, 55, tzinfo=UTC)


def session() -> SealedSession:
    priced = price_session(
        TERMS,
        started_at=STARTED,
        stopped_at=STOPPED,
        charging_ended_at=CHARGED,
        meter_start_wh=1_000,
        meter_stop_wh=23_001,
    )
    return SealedSession(
        session_id="S-1",
        station_id="ST-1",
        connector_id="1",
        customer_id="C-1",
        tariff_id="T-TOD",
        tariff_version=1,
        terms=TERMS,
        started_at=STARTED,
        stopped_at=STOPPED,
        charging_ended_at=CHARGED,
        meter_start_wh=1_000,
        meter_stop_wh=23_001,
        billed_total_minor=priced.total_minor,
    )


def test_periods_follow_the_windows_and_the_grace() -> None:
    document = export_cdr(session(), "DE", "EVL").document
    periods = [
        (p["start_date_time"], [(d["type"], d["volume"]) for d in p["dimensions"]])
        for p in document["charging_periods"]
    ]
    assert periods == [
        # The ledger's largest-remainder split gives the odd Wh to the earlier window.
        ("2024-06-03T14:30:00Z", [("ENERGY", Decimal("11.001")), ("TIME", Decimal("0.5"))]),
        ("2024-06-03T15:00:00Z", [("ENERGY", Decimal("11.000")), ("TIME", Decimal("0.5"))]),
        ("2024-06-03T15:30:00Z", [("PARKING_TIME", Decimal("0.25"))]),
        ("2024-06-03T15:45:00Z", [("PARKING_TIME", Decimal("0.166667"))]),
    ]
    (tariff,) = document["tariffs"]
    assert tariff["elements"][-1]["restrictions"] == {"min_duration": 3600 + 15 * 60}


def test_totals_are_the_engines_and_match_the_ledger() -> None:
    exported = export_cdr(session(), "DE", "EVL")
    document = exported.document
    again = price_cdr(codec.tariff(document["tariffs"][0]), codec.cdr(document), "Europe/Berlin")
    assert again.total_incl_vat.to_major() == document["total_cost"]["incl_vat"]
    # fee 0.50 + energy 11.001 x 0.30 + 11 x 0.60 + time 60 x 0.02 + idle 10 x 0.10 (excl.)
    expected_excl = Decimal("0.50") + Decimal("3.3003") + Decimal("6.60") + Decimal("1.20") + 1
    assert document["total_cost"]["excl_vat"] == expected_excl.quantize(Decimal("0.01"))
    assert document["total_parking_cost"]["excl_vat"] == Decimal("1.00")
    assert exported.agrees_with_ledger
