"""The report for machines (one JSON document, CSV per section) and its values for people
(amounts in major units with the currency, shares as percentages, weekday names)."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from domain.errors import UnknownCurrencyError
from domain.money import Money
from projections.report import Kind, Report, Section

_MONEY_KINDS = (Kind.money, Kind.money_rate)


def _json_value(value: Any) -> Any:
    # A Decimal of a few places prints the same through float's shortest repr, so
    # quantities and rates stay numbers in JSON; money never is a Decimal here.
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _has_money(section: Section) -> bool:
    return any(column.kind in _MONEY_KINDS for column in section.columns)


def section_records(section: Section, currency: str | None) -> list[dict[str, Any]]:
    """The section's rows with every column, and the currency beside any amount."""
    records = []
    for row in section.rows:
        record = {column.name: row.get(column.name) for column in section.columns}
        if _has_money(section):
            record["currency"] = currency
        records.append(record)
    return records


def to_document(report: Report) -> dict[str, Any]:
    """The whole report as one JSON-ready document; amounts are integer minor units."""
    headline = {key: _json_value(value) for key, value in asdict(report.headline).items()}
    return {
        "period": {
            "from": _json_value(report.period_from),
            "to": _json_value(report.period_to),
        },
        "currency": report.currency,
        "filters": {key: _json_value(value) for key, value in asdict(report.filters).items()},
        "headline": headline,
        "sections": {
            section.name: [
                {key: _json_value(value) for key, value in record.items()}
                for record in section_records(section, report.currency)
            ]
            for section in report.sections
        },
    }


def write_json(report: Report, out: IO[str]) -> None:
    json.dump(to_document(report), out, indent=1)
    out.write("\n")


def write_csv(section: Section, currency: str | None, out: IO[str]) -> None:
    """One section as CSV with a header; exact values (minor units, decimal strings)."""
    records = section_records(section, currency)
    names = [column.name for column in section.columns]
    if _has_money(section):
        names.append("currency")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    for record in records:
        writer.writerow(["" if record[name] is None else record[name] for name in names])


def write_csv_dir(report: Report, directory: Path) -> list[Path]:
    """One ``<section>.csv`` per section in ``directory`` (created); the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for section in report.sections:
        path = directory / f"{section.name}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            write_csv(section, report.currency, out)
        written.append(path)
    return written


# --- for people ---------------------------------------------------------------------------


def major(minor: int | Decimal, currency: str) -> Decimal:
    """Minor units as major units of ``currency`` (exact)."""
    if isinstance(minor, int):
        return Money(minor, currency).to_major()
    exponent = Money(0, currency).exponent
    return minor.scaleb(-exponent)


def money_text(minor: int | Decimal | None, currency: str | None, *, unit: bool = True) -> str:
    """``31,313.75 EUR`` (``unit`` False leaves the code out, for a column headed by it)."""
    if minor is None:
        return ""
    if currency is None:
        return f"{minor:,}"
    try:
        amount = major(minor, currency)
    except UnknownCurrencyError:
        return f"{minor:,} minor units of {currency}"
    text = f"{amount:,}"
    return f"{text} {currency}" if unit else text


def value_text(kind: Kind, value: Any, currency: str | None, *, unit: bool = True) -> str:
    """One cell for people."""
    if value is None:
        return ""
    if kind is Kind.money:
        return money_text(value, currency, unit=unit)
    if kind is Kind.money_rate:
        return money_text(Decimal(value), currency, unit=unit) + ("/kWh" if unit else "")
    if kind is Kind.share:
        return f"{Decimal(value) * 100:,.1f}%"
    if kind is Kind.ratio:
        return f"{Decimal(value):,.2f}x"
    if kind is Kind.kwh:
        return f"{Decimal(value):,.1f}"
    if kind in (Kind.hours, Kind.quantity):
        return f"{Decimal(value):,.1f}"
    if kind is Kind.integer:
        return f"{value:,}" if isinstance(value, int) else str(value)
    if kind is Kind.hour:
        return f"{value:02d}:00"
    if kind is Kind.flag:
        return "yes" if value else ""
    if isinstance(value, date):
        return f"{value:%a} {value.isoformat()}"
    return str(value)


def header_text(section: Section, name: str, currency: str | None) -> str:
    """A column's header with its unit: ``gross (EUR)``, ``net per kWh (EUR)``."""
    column = section.column(name)
    if column.kind in _MONEY_KINDS and currency:
        return f"{column.label} ({currency})"
    return column.label


def period_text(report: Report) -> str:
    if report.period_from is None and report.period_to is None:
        return "no sessions"
    return f"{report.period_from or '…'} to {report.period_to or '…'} (stations' local dates)"


def headline_items(report: Report) -> list[tuple[str, str]]:
    """The headline figures as (label, value) pairs, in the report's order."""
    figures, currency = report.headline, report.currency

    def rate(value: Decimal | None) -> str:
        return "n/a" if value is None else money_text(value, currency) + "/kWh"

    refund_rate = "n/a" if figures.refund_rate is None else f"{figures.refund_rate * 100:.1f}%"
    return [
        ("Gross revenue", money_text(figures.gross_minor, currency)),
        ("Net revenue", money_text(figures.net_minor, currency)),
        ("VAT", money_text(figures.vat_minor, currency)),
        ("Energy", f"{figures.energy_kwh:,.1f} kWh"),
        ("Sessions", f"{figures.sessions:,} at {figures.stations:,} stations"),
        ("Customers", f"{figures.customers:,} ({figures.repeat_customers:,} came back)"),
        ("Average price", f"{rate(figures.net_minor_per_kwh)} net"),
        ("Refund rate", f"{refund_rate} ({figures.refunds:,} of {figures.payments:,} payments)"),
        ("Paid back", money_text(figures.refunded_minor, currency)),
        ("Books balanced", "yes" if figures.books_balanced else "NO: debits differ from credits"),
    ]
