"""The report document on a hand-made analytics file whose every figure is known."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from projections.databases.duckdb import DuckDatabase
from projections.report import SECTION_NAMES, Filters, SeveralCurrencies, build_report
from projections.report_formats import to_document, write_csv, write_csv_dir, write_json

EUR = Filters(currency="EUR")


def test_several_currencies_are_never_added(known_db: DuckDatabase) -> None:
    with pytest.raises(SeveralCurrencies, match=r"EUR, GBP.*--currency"):
        build_report(known_db)
    gbp = build_report(known_db, Filters(currency="GBP"))
    assert (gbp.headline.gross_minor, gbp.headline.sessions) == (840, 1)


def test_headline_figures(known_db: DuckDatabase) -> None:
    report = build_report(known_db, EUR)
    assert (report.currency, report.period_from, report.period_to) == (
        "EUR",
        date(2026, 3, 2),
        date(2026, 3, 3),
    )
    figures = report.headline
    assert (figures.gross_minor, figures.net_minor, figures.vat_minor) == (4165, 3500, 665)
    assert figures.energy_kwh == Decimal("35.000")
    assert (figures.sessions, figures.customers, figures.repeat_customers) == (3, 2, 1)
    assert figures.net_minor_per_kwh == Decimal("100.00")
    assert (figures.payments, figures.refunds, figures.refunded_minor) == (3, 2, 100)
    assert figures.refund_rate == Decimal("0.6667")
    assert figures.books_balanced
    assert [section.name for section in report.sections] == list(SECTION_NAMES)


def test_sections(known_db: DuckDatabase) -> None:
    report = build_report(known_db, EUR)
    days = report.section("revenue_by_day").rows
    assert [(row["local_day"], row["gross_minor"]) for row in days] == [
        (date(2026, 3, 2), 1190),
        (date(2026, 3, 3), 2975),
    ]
    assert len(report.section("revenue_by_station_day").rows) == 3
    slots = report.section("sessions_by_weekday_hour").rows
    assert [(r["weekday_name"], r["local_hour"], r["sessions"]) for r in slots] == [
        ("Mon", 8, 1),
        ("Tue", 18, 2),
    ]
    components = report.section("price_by_component").rows
    assert [(r["component"], r["amount_minor"], r["minor_per_kwh"]) for r in components] == [
        ("energy", 3300, Decimal("94.29")),
        ("session_fee", 200, Decimal("5.71")),
    ]
    (refunds,) = report.section("refunds_by_station_reason").rows
    assert (refunds["station_id"], refunds["reason"], refunds["refunds"]) == (
        "ST-A",
        "overcharge",
        2,
    )
    assert refunds["recurring"] is True
    assert refunds["issued_minor"] == 100
    visits = {r["visits"]: r["customers"] for r in report.section("customer_visits").rows}
    assert (visits["1"], visits["2"]) == (1, 1)
    spend = report.section("spend_distribution").rows
    assert sum(r["customers"] for r in spend) == 2
    assert sum(r["spend_minor"] for r in spend) == 4165
    outcomes = {
        (r["status"], r["reason"]): r["payments"] for r in report.section("payment_outcomes").rows
    }
    assert outcomes == {("captured", ""): 2, ("declined", "card_declined"): 1}
    balance = report.section("trial_balance").rows
    assert {r["account"]: r["balance_minor"] for r in balance}["vat_payable"] == -190


def test_filters_by_station_and_dates(known_db: DuckDatabase) -> None:
    station = build_report(known_db, Filters(station="ST-A", currency="EUR"))
    assert (station.headline.gross_minor, station.headline.sessions) == (1785, 2)
    assert station.headline.payments == 2
    (utilisation,) = station.section("station_utilisation").rows
    # The band still compares with the whole fleet, not with the one station shown.
    assert (utilisation["station_id"], utilisation["band"]) == ("ST-A", "normal")
    later = build_report(known_db, Filters(date_from=date(2026, 3, 3), currency="EUR"))
    assert (later.headline.gross_minor, later.headline.refunds) == (2975, 0)
    assert later.period_from == date(2026, 3, 3)
    nothing = build_report(known_db, Filters(date_to=date(2026, 3, 1), currency="EUR"))
    assert nothing.headline.sessions == 0
    assert all(not s.rows for s in nothing.sections if s.name != "trial_balance")


def test_one_json_document_with_minor_units_and_currency(known_db: DuckDatabase) -> None:
    out = io.StringIO()
    write_json(build_report(known_db, EUR), out)
    document = json.loads(out.getvalue())
    assert document["period"] == {"from": "2026-03-02", "to": "2026-03-03"}
    assert document["currency"] == "EUR"
    assert set(document["sections"]) == set(SECTION_NAMES)
    first_day = document["sections"]["revenue_by_day"][0]
    assert first_day == {
        "local_day": "2026-03-02",
        "sessions": 1,
        "energy_kwh": 10.0,
        "net_minor": 1000,
        "vat_minor": 190,
        "gross_minor": 1190,
        "currency": "EUR",
    }
    assert document["headline"]["gross_minor"] == 4165
    assert to_document(build_report(known_db, EUR)) == document


def test_csv_of_one_section_and_a_directory(known_db: DuckDatabase, tmp_path: Path) -> None:
    report = build_report(known_db, EUR)
    out = io.StringIO()
    write_csv(report.section("revenue_by_day"), "EUR", out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["local_day"], r["gross_minor"], r["currency"]) for r in rows] == [
        ("2026-03-02", "1190", "EUR"),
        ("2026-03-03", "2975", "EUR"),
    ]
    written = write_csv_dir(report, tmp_path / "csv")
    assert sorted(path.stem for path in written) == sorted(SECTION_NAMES)
    heatmap = (tmp_path / "csv" / "sessions_by_weekday_hour.csv").read_text().splitlines()
    assert heatmap[0] == "weekday,weekday_name,local_hour,sessions,energy_kwh"


def test_no_data_is_an_empty_report_with_every_section(tmp_path: Path) -> None:
    from projections.analytics import Analytics

    model = Analytics(DuckDatabase(tmp_path / "empty.duckdb"))
    model.create()
    report = build_report(model.db)
    model.db.close()
    document = to_document(report)
    assert document["currency"] is None
    assert document["sections"] == {name: [] for name in SECTION_NAMES}
    assert document["headline"]["sessions"] == 0
