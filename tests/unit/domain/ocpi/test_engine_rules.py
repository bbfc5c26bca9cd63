"""The engine's rules beyond the spec's worked examples: zones, wraps, VAT, bad input."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from domain.errors import CurrencyMismatchError, InvalidValueError
from domain.ocpi.engine import price_cdr
from domain.ocpi.model import Restrictions, TariffElement
from tests.unit.domain.ocpi.builders import cdr, component, element, hours, period, tariff

NIGHT_AND_DAY = tariff(
    element(component("ENERGY", "0.10", 1, "20"), start_time="22:00", end_time="06:00"),
    element(component("ENERGY", "0.30", 1, "20")),
)


@pytest.mark.parametrize(
    ("utc", "zone", "expected_excl"),
    [
        # 21:30 UTC = 23:30 in Amsterdam (summer): inside the 22:00-06:00 wrap -> 0.10
        (datetime(2024, 6, 3, 21, 30, tzinfo=UTC), "Europe/Amsterdam", 100),
        # 03:30 UTC = 05:30 in Amsterdam: still inside the wrap, after midnight -> 0.10
        (datetime(2024, 6, 4, 3, 30, tzinfo=UTC), "Europe/Amsterdam", 100),
        # the same instant is 23:30 in New York (EDT) -> night as well
        (datetime(2024, 6, 4, 3, 30, tzinfo=UTC), "America/New_York", 100),
        # 04:30 UTC = 06:30 in Amsterdam: day -> 0.30
        (datetime(2024, 6, 4, 4, 30, tzinfo=UTC), "Europe/Amsterdam", 300),
        # 21:30 UTC in winter = 22:30 Amsterdam (UTC+1): night
        (datetime(2024, 1, 8, 21, 30, tzinfo=UTC), "Europe/Amsterdam", 100),
        # 20:30 UTC in winter = 21:30 Amsterdam: day, though 22:30 in summer time would not be
        (datetime(2024, 1, 8, 20, 30, tzinfo=UTC), "Europe/Amsterdam", 300),
    ],
)
def test_time_of_day_wraps_midnight_in_the_locations_zone(
    utc: datetime, zone: str, expected_excl: int
) -> None:
    session = cdr(utc, utc + timedelta(hours=1), period(utc, ENERGY="10", TIME="1"))
    assert price_cdr(NIGHT_AND_DAY, session, zone).total_excl_vat.minor == expected_excl


def test_end_time_midnight_means_end_of_day() -> None:
    evening = tariff(
        element(component("TIME", "6", 1), start_time="20:00", end_time="00:00"),
        element(component("TIME", "3", 1)),
    )
    start = datetime(2024, 6, 3, 21, 0, tzinfo=UTC)  # 23:00 local
    session = cdr(start, start + timedelta(hours=1), period(start, TIME="1"))
    assert price_cdr(evening, session, "Europe/Amsterdam").total_excl_vat.minor == 600


def test_day_of_week_and_dates_are_local() -> None:
    # Sunday 23:30 UTC is Monday 01:30 in Amsterdam: the Monday element applies.
    monday_only = tariff(
        element(component("FLAT", "5", 0), day_of_week=["MONDAY"]),
        element(component("FLAT", "1", 0)),
    )
    dated = tariff(
        element(component("FLAT", "5", 0), start_date=date(2024, 6, 3), end_date=date(2024, 6, 4)),
        element(component("FLAT", "1", 0)),
    )
    start = datetime(2024, 6, 2, 23, 30, tzinfo=UTC)
    session = cdr(start, start + timedelta(hours=1), period(start, TIME="1"))
    assert price_cdr(monday_only, session, "Europe/Amsterdam").total_excl_vat.minor == 500
    assert price_cdr(monday_only, session, "UTC").total_excl_vat.minor == 100
    assert price_cdr(dated, session, "Europe/Amsterdam").total_excl_vat.minor == 500
    assert price_cdr(dated, session, "UTC").total_excl_vat.minor == 100


def test_min_kwh_uses_the_energy_before_the_period() -> None:
    # 0.20 for the first 10 kWh, 0.40 from 10 kWh on; the CPO split the period at 10 kWh.
    tiers = tariff(
        element(component("ENERGY", "0.40", 1), min_kwh=10),
        element(component("ENERGY", "0.20", 1)),
    )
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    session = cdr(
        start,
        start + timedelta(hours=2),
        period(start, ENERGY="10", TIME="1"),
        period(start + timedelta(hours=1), ENERGY="5", TIME="1"),
    )
    # 10 x 0.20 + 5 x 0.40 = 4.00
    assert price_cdr(tiers, session, "UTC").total_excl_vat.minor == 400


def test_flat_is_charged_once_per_session() -> None:
    fee = tariff(element(component("FLAT", "1.50", 0, "20"), component("TIME", "1", 1)))
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    session = cdr(
        start,
        start + timedelta(hours=2),
        period(start, TIME="1"),
        period(start + timedelta(hours=1), TIME="1"),
    )
    result = price_cdr(fee, session, "UTC")
    flat = result.dimension("FLAT")
    assert flat is not None and flat.excl_vat.minor == 150
    assert result.total_excl_vat.minor == 350


def test_omitted_vat_is_no_vat_and_differs_from_zero_in_the_report() -> None:
    no_vat = tariff(element(component("ENERGY", "0.25", 1)))
    zero_vat = tariff(element(component("ENERGY", "0.25", 1, "0")))
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    session = cdr(start, start + timedelta(hours=1), period(start, ENERGY="10", TIME="1"))
    without = price_cdr(no_vat, session, "UTC")
    at_zero = price_cdr(zero_vat, session, "UTC")
    assert without.total_incl_vat == without.total_excl_vat == at_zero.total_incl_vat
    assert without.periods[0].lines[0].vat is None
    assert at_zero.periods[0].lines[0].vat == Decimal(0)


def test_half_a_minor_unit_rounds_up_and_jpy_has_none() -> None:
    # 0.125 EUR -> 0.13; 12.5 JPY -> 13 JPY
    eur = tariff(element(component("ENERGY", "0.125", 1)))
    jpy = tariff(element(component("ENERGY", "12.5", 1)), currency="JPY")
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    one_kwh = period(start, ENERGY="1", TIME="1")
    assert price_cdr(eur, cdr(start, start, one_kwh), "UTC").total_excl_vat.minor == 13
    in_yen = cdr(start, start, one_kwh, currency="JPY")
    assert price_cdr(jpy, in_yen, "UTC").total_excl_vat.minor == 13


def test_no_matching_element_means_free() -> None:
    weekend = tariff(element(component("ENERGY", "1", 1), day_of_week=["SATURDAY"]))
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)  # a Monday
    session = cdr(start, start + timedelta(hours=1), period(start, ENERGY="10", TIME="1"))
    result = price_cdr(weekend, session, "UTC")
    assert result.total_excl_vat.minor == 0 and result.dimensions == ()


def test_reservation_elements_are_not_applied_and_noted() -> None:
    reserved = tariff(
        TariffElement(
            price_components=(component("TIME", "5", 60),),
            restrictions=Restrictions(reservation="RESERVATION"),
        ),
        element(component("TIME", "1", 60)),
    )
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    session = cdr(
        start,
        start + timedelta(hours=2),
        period(start, RESERVATION_TIME=hours(15)),
        period(start + timedelta(minutes=15), TIME="1"),
    )
    result = price_cdr(reserved, session, "UTC")
    assert result.total_excl_vat.minor == 100
    assert any("RESERVATION_TIME" in note for note in result.notes)


def test_bad_zone_and_currency_are_refused() -> None:
    start = datetime(2024, 6, 3, 8, 0, tzinfo=UTC)
    session = cdr(start, start, period(start, ENERGY="1"))
    with pytest.raises(InvalidValueError, match="time zone"):
        price_cdr(NIGHT_AND_DAY, session, "Mars/Olympus_Mons")
    with pytest.raises(CurrencyMismatchError):
        price_cdr(tariff(element(component("ENERGY", "1", 1)), currency="USD"), session, "UTC")
