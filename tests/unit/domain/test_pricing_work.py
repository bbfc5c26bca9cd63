"""Pricing never hangs: the work is linear in the window boundaries a
session crosses, and a session longer than the maximum is rejected, not priced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.errors import SessionTimelineError
from domain.pricing import price_session
from domain.session import MAX_SESSION_DURATION, ChargingSession
from domain.tariff import EnergyWindow, TariffTerms

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)


def half_hour_windows(count: int) -> tuple[EnergyWindow, ...]:
    """``count`` adjacent 30-minute windows from midnight."""
    return tuple(
        EnergyWindow(
            name=f"w{i}",
            starts_at=f"{i // 2:02d}:{30 * (i % 2):02d}",  # type: ignore[arg-type]
            ends_at=f"{(i + 1) // 2 % 24:02d}:{30 * ((i + 1) % 2):02d}",  # type: ignore[arg-type]
            price_per_kwh=Decimal("0.30") + Decimal(i) / 100,
        )
        for i in range(count)
    )


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    """Counts the per-window checks pricing makes (the operation that grew as windows^2)."""
    calls = {"contains": 0}
    original = EnergyWindow.contains

    def contains(self: EnergyWindow, local: Any) -> bool:
        calls["contains"] += 1
        return original(self, local)

    monkeypatch.setattr(EnergyWindow, "contains", contains)
    yield calls


@pytest.mark.parametrize("windows", [3, 24, 48])
def test_a_long_session_prices_with_work_linear_in_windows_crossed(
    counted: dict[str, int], windows: int
) -> None:
    terms = TariffTerms(
        currency="EUR",
        price_per_kwh=Decimal("0.25"),
        vat_rate=Decimal("0.19"),
        timezone="Europe/Berlin",
        energy_windows=half_hour_windows(windows),
    )
    stop = T0 + MAX_SESSION_DURATION
    priced = price_session(
        terms,
        started_at=T0,
        stopped_at=stop,
        charging_ended_at=None,
        meter_start_wh=0,
        meter_stop_wh=10**9,
    )
    assert sum(item.base_quantity for item in priced.line_items if item.unit == "kWh") == 10**9
    days = MAX_SESSION_DURATION.days + 2
    crossings = days * 2 * windows
    # Each boundary costs a constant number of window checks, not one per window.
    assert counted["contains"] <= 2 * crossings + 2 * windows


def make_session(started_at: datetime) -> ChargingSession:
    terms = TariffTerms(currency="EUR", price_per_kwh=Decimal("0.25"), vat_rate=Decimal("0.19"))
    return ChargingSession.start(
        session_id="S1",
        station_id="ST",
        connector_id="1",
        customer_id="C",
        tariff_id="T",
        tariff_version=1,
        tariff_terms=terms,
        meter_start_wh=0,
        started_at=started_at,
    )


def test_a_session_longer_than_the_maximum_is_rejected_with_a_reason() -> None:
    session = make_session(T0)
    with pytest.raises(SessionTimelineError, match="longer than"):
        session.stop(meter_stop_wh=10, stopped_at=T0 + MAX_SESSION_DURATION + timedelta(seconds=1))
    assert session.priced is None
    session.stop(meter_stop_wh=10, stopped_at=T0 + MAX_SESSION_DURATION)
    assert session.priced is not None
