"""window_boundaries compares its candidate instants in UTC: the same boundaries, in the same
order, as comparing them in their own zone, across DST transitions, gaps and folds, and for
a session given in the tariff's own zone too (compared by wall clock: Python's rule)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.errors import InvalidValueError
from domain.pricing import window_boundaries, window_instants
from domain.tariff import EnergyWindow, TariffTerms


def in_its_own_zone(terms: TariffTerms, start: datetime, end: datetime) -> list[datetime]:
    """window_boundaries as it compared before: each candidate in the tariff's zone."""
    return sorted({i for i in window_instants(terms, start, end) if start < i < end})


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
# Around the DST changes of 2026 in Berlin and New York (gaps at 02:00-03:00, folds at
# 01:00-02:00 or 02:00-03:00) and Lord Howe's half-hour ones.
STARTS = st.sampled_from(
    [
        datetime(2026, 3, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 28, 22, tzinfo=UTC),
        datetime(2026, 4, 4, 13, tzinfo=UTC),
        datetime(2026, 10, 3, 14, tzinfo=UTC),
        datetime(2026, 10, 24, 23, tzinfo=UTC),
        datetime(2026, 11, 1, 4, tzinfo=UTC),
        datetime(2026, 6, 1, 12, tzinfo=UTC),
    ]
)
TIMES = st.sampled_from(["00:00", "01:30", "02:00", "02:30", "03:00", "06:00", "17:00", "22:00"])


@settings(max_examples=1000, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=STARTS,
    offset_min=st.integers(-720, 720),
    minutes=st.integers(0, 3 * 24 * 60),
    windows=st.lists(st.tuples(TIMES, TIMES).filter(lambda w: w[0] != w[1]), max_size=3),
    start_zone=st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")]),
    on_a_boundary=st.booleans(),
)
def test_the_same_boundaries_as_compared_in_the_tariffs_zone(
    *,
    zone: str,
    start: datetime,
    offset_min: int,
    minutes: int,
    windows: list[tuple[str, str]],
    start_zone: ZoneInfo,
    on_a_boundary: bool,
) -> None:
    try:
        terms = TariffTerms(
            currency="EUR",
            price_per_kwh=Decimal("0.30"),
            vat_rate=Decimal("0.19"),
            timezone=zone,
            energy_windows=tuple(
                EnergyWindow(f"w{index}", starts, ends, Decimal("0.40"))
                for index, (starts, ends) in enumerate(windows)
            ),
        )
    except InvalidValueError:  # overlapping windows
        assume(False)
    begin = (start + timedelta(minutes=offset_min)).astimezone(start_zone)
    if on_a_boundary and windows:  # starts and ends exactly on window times
        local = begin.astimezone(ZoneInfo(zone))
        begin = datetime.combine(local.date(), terms.energy_windows[0].starts_at, ZoneInfo(zone))
    end = begin + timedelta(minutes=minutes)
    if on_a_boundary and windows:
        local = end.astimezone(ZoneInfo(zone))
        end = datetime.combine(local.date(), terms.energy_windows[-1].ends_at, ZoneInfo(zone))
    found = window_boundaries(terms, begin, end)
    expected = in_its_own_zone(terms, begin, end)
    assert found == expected
    assert [(b.tzinfo, b.fold) for b in found] == [(b.tzinfo, b.fold) for b in expected]


BERLIN_NIGHTS = TariffTerms(
    currency="EUR",
    price_per_kwh=Decimal("0.30"),
    vat_rate=Decimal("0.19"),
    timezone="Europe/Berlin",
    energy_windows=(EnergyWindow("night", "02:00", "06:00", Decimal("0.20")),),
)


def test_a_session_in_the_tariffs_own_zone_is_compared_by_wall_clock() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    terms = BERLIN_NIGHTS
    # 02:00 on 29 March 2026 is in Berlin's gap: the same instant as 03:00, which by
    # instants it does not precede, and by wall clock (two datetimes of one tzinfo) does.
    start, end = (
        datetime(2026, 3, 29, 0, 30, tzinfo=berlin),
        datetime(2026, 3, 29, 3, tzinfo=berlin),
    )
    gap = datetime(2026, 3, 29, 2, tzinfo=berlin)
    assert window_boundaries(terms, start, end) == in_its_own_zone(terms, start, end) == [gap]


def test_a_naive_start_or_end_is_refused_as_before() -> None:
    terms = BERLIN_NIGHTS
    aware, naive = datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 5)
    for start, end in ((naive, aware + timedelta(hours=9)), (aware, naive)):
        with pytest.raises(TypeError):
            window_boundaries(terms, start, end)
