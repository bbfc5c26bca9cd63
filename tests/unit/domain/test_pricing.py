"""Worked pricing examples, each with its arithmetic, matching to the minor unit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.money import currency_exponent, round_half_up
from domain.pricing import (
    ENERGY,
    IDLE_FEE,
    SESSION_FEE,
    TIME,
    PricedSession,
    _minor,
    allocate_largest_remainder,
    price_session,
)
from domain.tariff import EnergyWindow, TariffTerms

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def amounts(priced: PricedSession) -> dict[str, int]:
    """Line item amounts by component (energy lines keyed energy:<window> when windowed)."""
    result: dict[str, int] = {}
    for item in priced.line_items:
        key = f"{item.component}:{item.window}" if item.window else item.component
        result[key] = item.amount_minor
    return result


def terms(**overrides: object) -> TariffTerms:
    values: dict[str, object] = {
        "currency": "EUR",
        "price_per_kwh": Decimal("0"),
        "vat_rate": Decimal("0"),
    }
    values.update(overrides)
    return TariffTerms(**values)


def price(
    tariff: TariffTerms,
    *,
    wh: int,
    start: datetime = T0,
    stop: datetime | None = None,
    charging_ended_at: datetime | None = None,
) -> PricedSession:
    return price_session(
        tariff,
        started_at=start,
        stopped_at=stop or start + timedelta(hours=1),
        charging_ended_at=charging_ended_at,
        meter_start_wh=100_000,
        meter_stop_wh=100_000 + wh,
    )


def test_1_energy_only() -> None:
    # 20 kWh x 0.39 = 7.80; VAT 19% of 7.80 = 1.482 -> 1.48; total 9.28
    priced = price(terms(price_per_kwh=Decimal("0.39"), vat_rate=Decimal("0.19")), wh=20_000)
    assert amounts(priced) == {ENERGY: 780, TIME: 0, SESSION_FEE: 0, IDLE_FEE: 0}
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (780, 148, 928)


def test_2_energy_and_session_fee() -> None:
    # 20 kWh x 0.39 = 7.80; + fee 0.50 = 8.30; VAT 19% = 1.577 -> 1.58; total 9.88
    tariff = terms(price_per_kwh=Decimal("0.39"), vat_rate=Decimal("0.19"), session_fee_minor=50)
    priced = price(tariff, wh=20_000)
    assert amounts(priced)[SESSION_FEE] == 50
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (830, 158, 988)


def test_3_energy_and_charging_time_rounded_per_component() -> None:
    # energy 12.345 kWh x 0.42 = 5.1849 -> 5.18
    # time 45 min 30 s = 2730 s = 45.5 min x 0.05 = 2.275 -> 2.28 (half-up)
    # subtotal 7.46; VAT 20% = 1.492 -> 1.49; total 8.95
    tariff = terms(
        price_per_kwh=Decimal("0.42"), price_per_minute=Decimal("0.05"), vat_rate=Decimal("0.20")
    )
    priced = price(tariff, wh=12_345, stop=T0 + timedelta(minutes=45, seconds=30))
    assert amounts(priced) == {ENERGY: 518, TIME: 228, SESSION_FEE: 0, IDLE_FEE: 0}
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (746, 149, 895)
    assert priced.charging_seconds == 2730


def test_4_idle_fee_after_grace() -> None:
    # charging 10:00-10:40, stop 11:10:30: idle 30 min 30 s = 1830 s, grace 15 min = 900 s
    # billable idle 930 s = 15.5 min x 0.10 = 1.55
    # energy 30 kWh x 0.30 = 9.00; subtotal 10.55; VAT 19% = 2.0045 -> 2.00; total 12.55
    tariff = terms(
        price_per_kwh=Decimal("0.30"),
        idle_fee_per_minute=Decimal("0.10"),
        idle_grace_minutes=15,
        vat_rate=Decimal("0.19"),
    )
    priced = price(
        tariff,
        wh=30_000,
        charging_ended_at=T0 + timedelta(minutes=40),
        stop=T0 + timedelta(hours=1, minutes=10, seconds=30),
    )
    assert amounts(priced) == {ENERGY: 900, TIME: 0, SESSION_FEE: 0, IDLE_FEE: 155}
    assert (priced.idle_seconds, priced.billable_idle_seconds) == (1830, 930)
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (1055, 200, 1255)


def test_5_idle_within_grace_costs_nothing() -> None:
    # charging 10:00-10:50, stop 11:00: idle 600 s < grace 900 s -> 0 billable, never negative
    # energy 10 kWh x 0.30 = 3.00; VAT 0; total 3.00
    tariff = terms(
        price_per_kwh=Decimal("0.30"), idle_fee_per_minute=Decimal("0.10"), idle_grace_minutes=15
    )
    priced = price(tariff, wh=10_000, charging_ended_at=T0 + timedelta(minutes=50))
    assert amounts(priced)[IDLE_FEE] == 0
    assert priced.billable_idle_seconds == 0
    assert priced.total_minor == 300


def test_6_jpy_has_no_minor_digits() -> None:
    # energy 18.5 kWh x 55 = 1017.5 -> 1018 JPY; time 2010 s = 33.5 min x 2 = 67 JPY
    # fee 100 JPY; subtotal 1185; VAT 10% = 118.5 -> 119; total 1304 JPY
    tariff = terms(
        currency="JPY",
        price_per_kwh=Decimal("55"),
        price_per_minute=Decimal("2"),
        session_fee_minor=100,
        vat_rate=Decimal("0.10"),
    )
    priced = price(tariff, wh=18_500, stop=T0 + timedelta(seconds=2010))
    assert amounts(priced) == {ENERGY: 1018, TIME: 67, SESSION_FEE: 100, IDLE_FEE: 0}
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (1185, 119, 1304)


def test_7_free_tariff_costs_zero() -> None:
    # every price 0.00: every line 0, subtotal 0, VAT 19% of 0 = 0, total 0.00
    priced = price(terms(vat_rate=Decimal("0.19")), wh=42_000)
    assert set(amounts(priced).values()) == {0}
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (0, 0, 0)
    assert priced.energy_wh == 42_000


def test_8_bhd_has_three_minor_digits() -> None:
    # 22.222 kWh x 0.045 BHD = 0.99999 -> 1.000 BHD (1000 fils); VAT 10% = 0.100; total 1.100
    tariff = terms(currency="BHD", price_per_kwh=Decimal("0.045"), vat_rate=Decimal("0.10"))
    priced = price(tariff, wh=22_222)
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (1000, 100, 1100)


def test_9_exact_half_cent_rounds_up() -> None:
    # 2 s = 1/30 min x 0.15 = 0.005 exactly -> 0.01 (half-up); VAT 19% of 0.01 = 0.0019 -> 0
    tariff = terms(price_per_minute=Decimal("0.15"), vat_rate=Decimal("0.19"))
    priced = price(tariff, wh=0, stop=T0 + timedelta(seconds=2))
    assert amounts(priced)[TIME] == 1
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (1, 0, 1)


def test_10_time_of_day_switch_during_a_session() -> None:
    # Berlin in May is UTC+2. Peak 17:00-21:00 at 0.60, otherwise 0.40.
    # charging 16:30-17:30 local: 1800 s standard, 1800 s peak.
    # 11,001 Wh split 5500.5 / 5500.5 -> 5500 each, the left-over 1 Wh to the earlier window:
    # standard 5.501 kWh x 0.40 = 2.2004 -> 2.20; peak 5.500 kWh x 0.60 = 3.30
    # subtotal 5.50; VAT 19% = 1.045 -> 1.05 (half-up); total 6.55
    tariff = terms(
        price_per_kwh=Decimal("0.40"),
        vat_rate=Decimal("0.19"),
        timezone="Europe/Berlin",
        energy_windows=(EnergyWindow("peak", "17:00", "21:00", Decimal("0.60")),),
    )
    start = datetime(2024, 5, 1, 16, 30, tzinfo=BERLIN)
    priced = price(tariff, wh=11_001, start=start, stop=start + timedelta(hours=1))
    energy = [item for item in priced.line_items if item.component == ENERGY]
    assert [(i.window, i.base_quantity, i.amount_minor) for i in energy] == [
        ("standard", 5501, 220),
        ("peak", 5500, 330),
    ]
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (550, 105, 655)


def test_11_night_window_wrapping_midnight() -> None:
    # London in January is UTC+0. Night 22:00-06:00 at 0.25, otherwise 0.45.
    # charging 21:00-23:00: 1 h standard, 1 h night; 20 kWh -> 10 kWh each
    # standard 10 x 0.45 = 4.50; night 10 x 0.25 = 2.50; subtotal 7.00; VAT 20% 1.40; total 8.40
    tariff = terms(
        price_per_kwh=Decimal("0.45"),
        vat_rate=Decimal("0.20"),
        timezone="Europe/London",
        energy_windows=(EnergyWindow("night", "22:00", "06:00", Decimal("0.25")),),
    )
    start = datetime(2024, 1, 10, 21, 0, tzinfo=UTC)
    priced = price(tariff, wh=20_000, start=start, stop=start + timedelta(hours=2))
    assert amounts(priced) == {
        "energy:standard": 450,
        "energy:night": 250,
        TIME: 0,
        SESSION_FEE: 0,
        IDLE_FEE: 0,
    }
    assert (priced.subtotal_minor, priced.vat_minor, priced.total_minor) == (700, 140, 840)


def test_12_window_on_the_25_hour_dst_day() -> None:
    # Berlin, night 2024-10-26 -> 27: clocks go back 03:00 CEST -> 02:00 CET.
    # charging 23:00 CEST (21:00Z) to 07:00 CET (06:00Z) = 9 real hours.
    # night 00:00 CEST (22:00Z) - 06:00 CET (05:00Z) = 7 real hours; standard 1 h + 1 h.
    # 9000 Wh -> standard 2000 (1000 + 1000), night 7000.
    # standard 2 kWh x 0.50 = 1.00; night 7 kWh x 0.20 = 1.40; VAT 0; total 2.40
    tariff = terms(
        price_per_kwh=Decimal("0.50"),
        timezone="Europe/Berlin",
        energy_windows=(EnergyWindow("night", "00:00", "06:00", Decimal("0.20")),),
    )
    start = datetime(2024, 10, 26, 21, 0, tzinfo=UTC)
    priced = price(tariff, wh=9_000, start=start, stop=start + timedelta(hours=9))
    energy = {i.window: (i.base_quantity, i.amount_minor) for i in priced.line_items if i.window}
    assert energy == {"standard": (2000, 100), "night": (7000, 140)}
    assert priced.total_minor == 240


def test_sub_second_timestamps_are_floored_to_whole_seconds() -> None:
    # 59.9 s of charging is 59 whole seconds: 59/60 min x 0.60 = 0.59
    tariff = terms(price_per_minute=Decimal("0.60"))
    priced = price(tariff, wh=0, stop=T0 + timedelta(seconds=59, milliseconds=900))
    assert priced.charging_seconds == 59
    assert amounts(priced)[TIME] == 59


def test_zero_length_charge_puts_its_energy_in_the_window_at_the_start() -> None:
    tariff = terms(
        price_per_kwh=Decimal("0.40"),
        timezone="Europe/Berlin",
        energy_windows=(EnergyWindow("peak", "17:00", "21:00", Decimal("0.60")),),
    )
    start = datetime(2024, 5, 1, 17, 0, tzinfo=BERLIN)
    priced = price(tariff, wh=1000, start=start, stop=start, charging_ended_at=start)
    energy = [(i.window, i.base_quantity) for i in priced.line_items if i.component == ENERGY]
    assert energy == [("peak", 1000)]


def test_largest_remainder_allocation() -> None:
    assert allocate_largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate_largest_remainder(7, [0, 0]) == [7, 0]
    assert allocate_largest_remainder(100, [3, 1]) == [75, 25]
    assert allocate_largest_remainder(0, []) == []


def test_overlapping_windows_are_refused() -> None:
    with pytest.raises(InvalidValueError, match="overlaps"):
        terms(
            timezone="Europe/Berlin",
            energy_windows=(
                EnergyWindow("peak", "17:00", "21:00", Decimal("0.6")),
                EnergyWindow("evening", "20:00", "23:00", Decimal("0.5")),
            ),
        )


def test_windows_need_a_known_timezone() -> None:
    window = EnergyWindow("peak", "17:00", "21:00", Decimal("0.6"))
    with pytest.raises(InvalidValueError, match="timezone"):
        terms(energy_windows=(window,))
    with pytest.raises(InvalidValueError, match="IANA"):
        terms(timezone="Mars/Olympus", energy_windows=(window,))


def test_vat_rate_is_a_fraction() -> None:
    with pytest.raises(InvalidValueError, match="fraction"):
        terms(vat_rate=Decimal("19"))


@given(
    quantity=st.integers(0, 10**9),
    per=st.sampled_from([1, 60, 1000]),
    price=st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False),
    currency=st.sampled_from(["EUR", "JPY", "BHD"]),
)
def test_a_line_amount_is_the_exact_product_rounded_once(
    quantity: int, per: int, price: Decimal, currency: str
) -> None:
    exact = Fraction(quantity, per) * Fraction(price) * 10 ** currency_exponent(currency)
    assert _minor(quantity, per, price, currency) == round_half_up(exact)
