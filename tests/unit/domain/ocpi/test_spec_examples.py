"""The OCPI 2.2.1 tariff examples (release-2.2.1-bugfixes text), priced to the cent.

Each test restates the example's arithmetic in comments. Volumes are given as a CPO sends
them: kWh and hours with 4 decimals (10 minutes is 0.1667 h).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.money import Money
from domain.ocpi.engine import CdrPricing, price_cdr
from domain.ocpi.model import OcpiPrice
from tests.unit.domain.ocpi.builders import cdr, component, element, hours, period, tariff

AMSTERDAM = "Europe/Amsterdam"
# Local times below are Amsterdam summer time (UTC+2) on Monday 2024-06-03.
MONDAY_0930 = datetime(2024, 6, 3, 7, 30, tzinfo=UTC)
SATURDAY_1330 = datetime(2024, 6, 8, 11, 30, tzinfo=UTC)


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def totals(result: CdrPricing) -> tuple[Money, Money]:
    return result.total_excl_vat, result.total_incl_vat


def at(start: datetime, minutes: int) -> datetime:
    return start + timedelta(minutes=minutes)


def test_simple_025_per_kwh() -> None:
    # 20 kWh x 0.25 = 5.00 excl.; x 1.10 = 5.50 incl.
    energy = tariff(element(component("ENERGY", "0.25", 1, "10")))
    session = cdr(MONDAY_0930, at(MONDAY_0930, 120), period(MONDAY_0930, ENERGY="20", TIME="2"))
    assert totals(price_cdr(energy, session, AMSTERDAM)) == (eur(500), eur(550))


def test_025_per_kwh_plus_start_fee() -> None:
    # 0.50 flat (+20% = 0.60) + 20 kWh x 0.25 = 5.00 (+10% = 5.50): 5.50 excl., 6.10 incl.
    fee = tariff(element(component("FLAT", "0.50", 1, "20"), component("ENERGY", "0.25", 1, "10")))
    session = cdr(MONDAY_0930, at(MONDAY_0930, 120), period(MONDAY_0930, ENERGY="20", TIME="2"))
    assert totals(price_cdr(fee, session, AMSTERDAM)) == (eur(550), eur(610))


@pytest.mark.parametrize(
    ("kwh", "expected"),
    [
        ("20", (500, 550)),  # 20 x 0.25 = 5.00, 5.50 incl.: above the minimum
        ("1", (50, 55)),  # 1 x 0.25 = 0.25 < 0.50 min excl.; 0.275 < 0.55 min incl.
    ],
)
def test_min_price(kwh: str, expected: tuple[int, int]) -> None:
    minimum = tariff(
        element(component("ENERGY", "0.25", 1, "10")),
        min_price=OcpiPrice(Decimal("0.50"), Decimal("0.55")),
    )
    session = cdr(MONDAY_0930, at(MONDAY_0930, 60), period(MONDAY_0930, ENERGY=kwh, TIME="1"))
    result = price_cdr(minimum, session, AMSTERDAM)
    assert totals(result) == (eur(expected[0]), eur(expected[1]))
    assert bool(result.bounded_by) == (kwh == "1")


@pytest.mark.parametrize(
    ("kwh", "expected"),
    [
        # 0.50 + 50 x 0.25 = 13.00 > 10.00 max; incl. 0.60 + 13.75 = 14.35 > 11.00 max
        ("50", (1000, 1100)),
        # 0.50 + 30 x 0.25 = 8.00; incl. 0.60 + 8.25 = 8.85: below the maximum
        ("30", (800, 885)),
    ],
)
def test_max_price(kwh: str, expected: tuple[int, int]) -> None:
    maximum = tariff(
        element(component("FLAT", "0.50", 1, "20"), component("ENERGY", "0.25", 1, "10")),
        max_price=OcpiPrice(Decimal("10"), Decimal("11")),
    )
    session = cdr(MONDAY_0930, at(MONDAY_0930, 240), period(MONDAY_0930, ENERGY=kwh, TIME="4"))
    assert totals(price_cdr(maximum, session, AMSTERDAM)) == (eur(expected[0]), eur(expected[1]))


def test_energy_parking_and_start_fee() -> None:
    # 0.50 flat (0.60 incl.) + 20 kWh x 0.25 = 5.00 (5.50 incl.)
    # + parking 40 min rounded up to 3 x 900 s = 45 min x 2.00/h = 1.50 (1.80 incl.)
    # = 7.00 excl., 7.90 incl.
    parking = tariff(
        element(
            component("FLAT", "0.50", 1, "20"),
            component("ENERGY", "0.25", 1, "10"),
            component("PARKING_TIME", "2.00", 900, "20"),
        )
    )
    session = cdr(
        MONDAY_0930,
        at(MONDAY_0930, 160),
        period(MONDAY_0930, ENERGY="20", TIME="2"),
        period(at(MONDAY_0930, 120), PARKING_TIME=hours(40)),
    )
    result = price_cdr(parking, session, AMSTERDAM)
    assert totals(result) == (eur(700), eur(790))
    parked = result.dimension("PARKING_TIME")
    assert parked is not None and parked.billed_volume == Decimal("0.75")


def test_simple_2_per_hour() -> None:
    # 2.5 h charging x 2.00 = 5.00 excl., x 1.10 = 5.50 incl.; 150 min is whole 60 s steps
    per_hour = tariff(element(component("TIME", "2.00", 60, "10")))
    session = cdr(MONDAY_0930, at(MONDAY_0930, 150), period(MONDAY_0930, TIME="2.5"))
    assert totals(price_cdr(per_hour, session, AMSTERDAM)) == (eur(500), eur(550))


def test_3_per_hour_and_5_per_hour_parking() -> None:
    # charging 150 min x 3.00/h = 7.50 (8.25 incl.); parking 42 min -> 45 min (300 s steps)
    # x 5.00/h = 3.75 (4.50 incl.): 11.25 excl., 12.75 incl.
    time_and_parking = tariff(
        element(component("TIME", "3.00", 60, "10"), component("PARKING_TIME", "5.00", 300, "20"))
    )
    session = cdr(
        MONDAY_0930,
        at(MONDAY_0930, 192),
        period(MONDAY_0930, TIME="2.5"),
        period(at(MONDAY_0930, 150), PARKING_TIME=hours(42)),
    )
    assert totals(price_cdr(time_and_parking, session, AMSTERDAM)) == (eur(1125), eur(1275))


def test_alt_text_tariff_1_90_per_hour() -> None:
    # 2.5 h x 1.90 = 4.75 excl.; x 1.052 = 4.997 -> 5.00 incl.
    ad_hoc = tariff(element(component("TIME", "1.90", 300, "5.2")))
    session = cdr(MONDAY_0930, at(MONDAY_0930, 150), period(MONDAY_0930, TIME="2.5"))
    assert totals(price_cdr(ad_hoc, session, AMSTERDAM)) == (eur(475), eur(500))


def test_energy_step_size_100_wh_the_issue_example() -> None:
    # flat 0.50 (x 1.20 = 0.60 incl.); 20.45 kWh billed in 100 Wh steps = 20.5 kWh
    # x 0.25 = 5.125 excl. (x 1.10 = 5.6375 incl.)
    # total 5.625 -> 5.63 excl.; 6.2375 -> 6.24 incl.
    alt_url = tariff(
        element(component("FLAT", "0.50", 1, "20"), component("ENERGY", "0.25", 100, "10"))
    )
    session = cdr(MONDAY_0930, at(MONDAY_0930, 90), period(MONDAY_0930, ENERGY="20.45", TIME="1.5"))
    result = price_cdr(alt_url, session, AMSTERDAM)
    assert result.total_excl_vat_exact == Decimal("5.625")
    assert result.total_incl_vat_exact == Decimal("6.2375")
    assert totals(result) == (eur(563), eur(624))
    energy = result.dimension("ENERGY")
    assert energy is not None
    assert energy.billed_volume == Decimal("20.5")
    assert (energy.excl_vat, energy.incl_vat) == (eur(513), eur(564))


COMPLEX = tariff(
    element(component("FLAT", "2.50", 1, "15")),
    element(component("TIME", "1.00", 900, "20"), max_current=32),
    element(
        component("TIME", "2.00", 600, "20"),
        min_current=32,
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(
        component("TIME", "1.25", 600, "20"), min_current=32, day_of_week=["SATURDAY", "SUNDAY"]
    ),
    element(
        component("PARKING_TIME", "5.00", 300, "10"),
        start_time="09:00",
        end_time="18:00",
        day_of_week=["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
    ),
    element(
        component("PARKING_TIME", "6.00", 300, "10"),
        start_time="10:00",
        end_time="17:00",
        day_of_week=["SATURDAY"],
    ),
)


def test_complex_tariff_monday_morning() -> None:
    # Monday 09:30, charging 165 min at most 16 A, then parking 42 min.
    # flat 2.50 (x 1.15 = 2.875 incl.); charging: max_current 16 < 32, so 1.00/h:
    # 165 min = 2.75 (x 1.20 = 3.30); parking (weekday 09:00-18:00) 5.00/h: 42 min ->
    # 45 min (300 s steps, the last time-based period) = 3.75 (x 1.10 = 4.125).
    # total 9.00 excl.; 2.875 + 3.30 + 4.125 = 10.30 incl.
    session = cdr(
        MONDAY_0930,
        at(MONDAY_0930, 207),
        period(MONDAY_0930, TIME="2.75", MIN_CURRENT="8", MAX_CURRENT="16"),
        period(at(MONDAY_0930, 165), PARKING_TIME=hours(42)),
    )
    result = price_cdr(COMPLEX, session, AMSTERDAM)
    assert result.total_incl_vat_exact == Decimal("10.30")
    assert totals(result) == (eur(900), eur(1030))
    # The rounded parts do not add up to the rounded total: 2.88 + 3.30 + 4.13 = 10.31.
    assert [d.incl_vat.minor for d in result.dimensions] == [288, 330, 413]


def test_complex_tariff_saturday_afternoon() -> None:
    # Saturday 13:30, charging 114 min at 43 A, then parking 71 min.
    # flat 2.50 (x 1.15 = 2.875 incl.); charging: min_current 43 >= 32 on a weekend, so
    # 1.25/h: 114 min = 1.9 h x 1.25 = 2.375 (x 1.20 = 2.85); parking (Saturday
    # 10:00-17:00) 6.00/h: 71 min -> 75 min (300 s steps) = 7.50 (x 1.10 = 8.25).
    # total 12.375 -> 12.38 excl.; 13.975 -> 13.98 incl.
    # The spec's table says 2.28 for the charging line (1.9 h x 1.20, not the tariff's
    # 1.25) and so 12.28 / 13.861: an arithmetic slip that the bug-fix branch still has.
    session = cdr(
        SATURDAY_1330,
        at(SATURDAY_1330, 185),
        period(SATURDAY_1330, TIME="1.9", MIN_CURRENT="43", MAX_CURRENT="43"),
        period(at(SATURDAY_1330, 114), PARKING_TIME=hours(71)),
    )
    result = price_cdr(COMPLEX, session, AMSTERDAM)
    charging = result.dimension("TIME")
    parking = result.dimension("PARKING_TIME")
    assert charging is not None and parking is not None
    assert (charging.excl_vat_exact, charging.incl_vat_exact) == (Decimal("2.375"), Decimal("2.85"))
    assert (parking.excl_vat, parking.incl_vat) == (eur(750), eur(825))
    assert result.total_excl_vat_exact == Decimal("12.375")
    assert result.total_incl_vat_exact == Decimal("13.975")
    assert totals(result) == (eur(1238), eur(1398))


# tariff_14_step_size: no VAT given, so incl. = excl. ("no VAT applicable").
STEP_SIZES = tariff(
    element(
        component("TIME", "1.20", 1800),
        component("PARKING_TIME", "1.00", 900),
        start_time="00:00",
        end_time="17:00",
    ),
    element(
        component("TIME", "2.40", 900),
        component("PARKING_TIME", "1.00", 900),
        start_time="17:00",
        end_time="20:00",
    ),
    element(component("TIME", "2.40", 900), start_time="20:00", end_time="00:00"),
)


def local(hour: int, minute: int) -> datetime:
    """A Monday local time in Amsterdam (UTC+2 in June)."""
    return datetime(2024, 6, 3, hour - 2, minute, tzinfo=UTC)


def test_step_size_switching_element_1() -> None:
    # 16:55-17:00 charging 5 min x 1.20/h = 0.10; 17:00-17:05 charging 5 min x 2.40/h = 0.20;
    # 17:05-17:07 parking 2 min -> 15 min (step of the last time-based period) x 1.00 = 0.25.
    # Charging is not rounded: it is followed by another time-based period. Total 0.55.
    session = cdr(
        local(16, 55),
        local(17, 7),
        period(local(16, 55), TIME=hours(5)),
        period(local(17, 0), TIME=hours(5)),
        period(local(17, 5), PARKING_TIME=hours(2)),
    )
    result = price_cdr(STEP_SIZES, session, AMSTERDAM)
    assert totals(result) == (eur(55), eur(55))


def test_step_size_switching_element_2() -> None:
    # 16:35-17:00 charging 25 min x 1.20/h = 0.50; 17:00-17:10 charging 10 min.
    # Total charging 35 min -> 45 min (900 s, the step of the last period): 20 min are
    # billed after 17:00 x 2.40/h = 0.80. Total 1.30.
    session = cdr(
        local(16, 35),
        local(17, 10),
        period(local(16, 35), TIME=hours(25)),
        period(local(17, 0), TIME=hours(10)),
    )
    result = price_cdr(STEP_SIZES, session, AMSTERDAM)
    assert totals(result) == (eur(130), eur(130))
    assert [line.billed_volume for p in result.periods for line in p.lines] == [
        Decimal(hours(25)),
        Decimal("0.75") - Decimal(hours(25)),
    ]


def test_step_size_switching_to_a_free_element() -> None:
    # 19:40-19:52 charging 12 min x 2.40/h = 0.48; 19:52-20:00 parking 8 min at 1.00/h;
    # after 20:00 parking is free. The billable parking (8 min) -> 15 min = 0.25. Total 0.73.
    # (ocpi-tariffs-cli 0.45.0 rounds all 20 parking minutes, free ones too, to 30 and bills
    # 0.78; the spec text counts the billable time only, and so do we.)
    session = cdr(
        local(19, 40),
        local(20, 12),
        period(local(19, 40), TIME=hours(12)),
        period(local(19, 52), PARKING_TIME=hours(8)),
        period(local(20, 0), PARKING_TIME=hours(12)),
    )
    assert totals(price_cdr(STEP_SIZES, session, AMSTERDAM)) == (eur(73), eur(73))


def test_max_power_restriction() -> None:
    # 1 kWh at 6 kW: 0.20; 40 kWh at 48 kW: fallback 0.50 = 20.00; 0.5 kWh at 4 kW: 0.10.
    # 20.30 excl.; all at 20 % VAT: 24.36 incl.
    by_power = tariff(
        element(component("ENERGY", "0.20", 1, "20"), max_power=16),
        element(component("ENERGY", "0.35", 1, "20"), max_power=32),
        element(component("ENERGY", "0.50", 1, "20")),
    )
    t0 = local(10, 0)
    session = cdr(
        t0,
        at(t0, 70),
        period(t0, ENERGY="1", TIME=hours(10), MIN_POWER="6", MAX_POWER="6"),
        period(at(t0, 10), ENERGY="40", TIME=hours(50), MIN_POWER="48", MAX_POWER="48"),
        period(at(t0, 60), ENERGY="0.5", TIME=hours(10), MIN_POWER="3", MAX_POWER="4"),
    )
    assert totals(price_cdr(by_power, session, AMSTERDAM)) == (eur(2030), eur(2436))


def test_max_duration_restriction() -> None:
    # First 30 min free (5 kWh), then 0.25/kWh until 60 min: 1.2 kWh x 0.25 = 0.30.
    by_duration = tariff(
        element(component("ENERGY", "0.00", 1, "20"), max_duration=1800),
        element(component("ENERGY", "0.25", 1, "20"), max_duration=3600),
        element(component("ENERGY", "0.40", 1, "20")),
    )
    t0 = local(10, 0)
    session = cdr(
        t0,
        at(t0, 40),
        period(t0, ENERGY="5", TIME="0.5"),
        period(at(t0, 30), ENERGY="1.2", TIME=hours(10)),
    )
    assert totals(price_cdr(by_duration, session, AMSTERDAM)) == (eur(30), eur(36))


def test_cdr_example_time_step_300_s() -> None:
    # 1.973 h = 7102.8 s -> 7103 s -> 24 x 300 s = 2 h x 2.00 = 4.00; x 1.10 = 4.40
    per_hour = tariff(element(component("TIME", "2.00", 300, "10")))
    start = datetime(2015, 6, 29, 21, 39, 9, tzinfo=UTC)
    end = datetime(2015, 6, 29, 23, 37, 32, tzinfo=UTC)
    session = cdr(start, end, period(start, TIME="1.973"))
    assert totals(price_cdr(per_hour, session, "Europe/Brussels")) == (eur(400), eur(440))


def test_energy_step_size_over_the_session_total() -> None:
    # 4.3 kWh before 17:00 x 0.20 and 1.1 kWh after x 0.27, both steps of 500 Wh:
    # 5.4 kWh total -> 5.5 kWh; the extra 0.1 kWh is billed after 17:00:
    # 4.3 x 0.20 + 1.2 x 0.27 = 0.86 + 0.324 = 1.184 -> 1.18 (no VAT given).
    peak = tariff(
        element(component("ENERGY", "0.27", 500), start_time="17:00"),
        element(component("ENERGY", "0.20", 500)),
    )
    session = cdr(
        local(16, 0),
        local(18, 0),
        period(local(16, 0), ENERGY="4.3", TIME="1"),
        period(local(17, 0), ENERGY="1.1", TIME="1"),
    )
    result = price_cdr(peak, session, AMSTERDAM)
    assert result.total_excl_vat_exact == Decimal("1.184")
    assert totals(result) == (eur(118), eur(118))


def test_time_step_size_over_the_session_total() -> None:
    # 6 min before 17:00 x 5/h and 22 min after x 7/h, steps of 10 min: 28 -> 30 min,
    # so 24 min after 17:00: 0.50 + 2.80 = 3.30.
    peak = tariff(
        element(component("TIME", "7", 600), start_time="17:00"),
        element(component("TIME", "5", 600)),
    )
    session = cdr(
        local(16, 54),
        local(17, 22),
        period(local(16, 54), TIME=hours(6)),
        period(local(17, 0), TIME=hours(22)),
    )
    assert totals(price_cdr(peak, session, AMSTERDAM)) == (eur(330), eur(330))


@pytest.mark.parametrize(
    ("charging", "parking", "expected"),
    [
        # 1.00/h charging, 2.00/h parking, steps of 10 min: 21 min charging stays 21 min
        # (0.35); 16 min parking -> 20 min (0.6667): 1.0167 -> 1.02
        (21, 16, 102),
        # both steps 5 min... here 10 min: 21 min charging (0.35) + 7 min parking -> 10 min
        # (0.3333): 0.6833 -> 0.68
        (21, 7, 68),
    ],
)
def test_time_and_parking_step_only_on_parking(charging: int, parking: int, expected: int) -> None:
    split = tariff(element(component("TIME", "1.00", 600), component("PARKING_TIME", "2.00", 600)))
    t0 = local(10, 0)
    session = cdr(
        t0,
        at(t0, charging + parking),
        period(t0, TIME=hours(charging)),
        period(at(t0, charging), PARKING_TIME=hours(parking)),
    )
    assert price_cdr(split, session, AMSTERDAM).total_excl_vat == eur(expected)
