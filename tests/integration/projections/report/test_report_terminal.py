"""The terminal report at 80 and 120 columns, rendered by rich for real on the demo's data:
nothing cut, headline first, amounts in major units, weekday names."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from cli.report_terminal import render_report, render_section
from projections.databases.duckdb import DuckDatabase
from projections.report import Filters, Report, build_report


@pytest.fixture(scope="module")
def report(demo_dir: Path) -> Report:
    db = DuckDatabase(demo_dir / "analytics.duckdb", read_only=True)
    try:
        return build_report(db, Filters())
    finally:
        db.close()


def _console(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None, force_terminal=False), out


@pytest.mark.parametrize("width", [80, 120])
def test_the_whole_report_fits(report: Report, width: int) -> None:
    console, out = _console(width)
    render_report(report, console, top=8)
    text = out.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text, "a cell or header was cut"
    assert "evledger analytics report" in lines[0]
    headline = text[: text.index("Revenue and energy per day")]
    gross = report.headline.gross_minor
    assert f"Gross revenue   {gross // 100:,}.{gross % 100:02d} EUR" in headline
    assert "Books balanced  yes" in headline
    for title in ("Station utilisation", "Refunds by station and reason", "Payment outcomes"):
        assert title in text
    assert re.search(r"^ (Mon|Tue|Wed|Thu|Fri|Sat|Sun) +\d\d:00 ", text, re.MULTILINE)
    assert "gross (EUR)" in text
    assert "_minor" not in text


@pytest.mark.parametrize("width", [80, 120])
def test_one_section_in_full(report: Report, width: int) -> None:
    console, out = _console(width)
    section = report.section("revenue_by_station_day")
    render_section(report, section, console)
    text = out.getvalue()
    assert "…" not in text
    days = re.findall(r"^ (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{4}-\d\d-\d\d ", text, re.MULTILINE)
    assert len(days) == len(section.rows) > 8


@pytest.mark.parametrize("station", ["[/]", "[link=https://evil.example]x[/link]", "\x1b[2Jst"])
def test_upstream_strings_are_shown_as_plain_text(station: str, tmp_path: Path) -> None:
    from projections.analytics import Analytics

    path = tmp_path / "analytics.duckdb"
    model = Analytics(DuckDatabase(path))
    model.create()
    model.db.execute(
        "INSERT INTO fact_sessions (session_key, session_id, station_id, connector_id,"
        " customer_id, currency, started_at, started_at_local, stopped_at, subtotal_minor,"
        " vat_minor, total_minor, energy_wh, energy_kwh, charging_seconds, idle_seconds)"
        " VALUES ('S1', 'S1', ?, '1', ?, 'EUR', TIMESTAMP '2026-03-02 08:00:00',"
        " TIMESTAMP '2026-03-02 09:00:00', TIMESTAMP '2026-03-02 09:00:00', 100, 19, 119,"
        " 1000, 1.000, 3600, 0)",
        [station, station],
    )
    model.db.close()
    db = DuckDatabase(path, read_only=True)
    try:
        report = build_report(db, Filters(station=station))
    finally:
        db.close()
    console, out = _console(200)
    render_report(report, console, top=8)
    render_section(report, report.section("station_utilisation"), console)
    text = out.getvalue()
    assert "\x1b" not in text
    shown = "\\x1b[2Jst" if station.startswith("\x1b") else station
    assert shown in text
