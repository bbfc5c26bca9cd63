"""`evledger analytics report`: the analysts' report in the terminal, as JSON, as CSV, as
CSV files per section, and as a self-contained HTML page of charts."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli.options import FormatOption
from cli.output import OutputFormat
from cli.queries import _analytics, _fail


def _local_date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option}: expected a local date like 2026-03-01, got {value!r}", 2) from None


def analytics_report(
    *,
    period_from: Annotated[
        str | None, typer.Option("--from", help="First local date (stations' time), inclusive.")
    ] = None,
    period_to: Annotated[
        str | None, typer.Option("--to", help="Last local date (stations' time), inclusive.")
    ] = None,
    station: Annotated[str | None, typer.Option("--station", help="One station id.")] = None,
    currency: Annotated[
        str | None,
        typer.Option("--currency", help="The currency to report (needed if there are several)."),
    ] = None,
    section: Annotated[
        str | None,
        typer.Option("--section", help="One section (in full, or as CSV with --format csv)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write one CSV file per section into DIR.")
    ] = None,
    html_file: Annotated[
        Path | None, typer.Option("--html", help="Also write the report as an HTML page.")
    ] = None,
    top: Annotated[
        int, typer.Option("--top", min=1, max=1000, help="Rows per section in the short form.")
    ] = 8,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Headline figures, revenue, peak hours, utilisation, pricing, refunds, customers,
    payments and the trial balance, for one currency and the chosen dates and station."""
    from projections.report import (
        SECTION_NAMES,
        Filters,
        SeveralCurrencies,
        UnknownSection,
        build_report,
    )
    from projections.report_formats import write_csv, write_csv_dir, write_json
    from projections.report_html import write_html

    filters = Filters(
        _local_date(period_from, "--from"),
        _local_date(period_to, "--to"),
        station,
        currency.upper() if currency else None,
    )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise _fail("--from is after --to", 2)
    if section is not None and section not in SECTION_NAMES:
        raise _fail(str(UnknownSection(section)), 2)
    if output_format is OutputFormat.csv and section is None and out is None:
        raise _fail("--format csv prints one section: add --section NAME (or --out DIR)", 2)
    try:
        report = _analytics(lambda db: build_report(db, filters))
    except SeveralCurrencies as several:
        raise _fail(str(several), 2) from None
    if report.headline.sessions == 0:
        typer.echo("evledger: no sessions for these filters; the report is empty", err=True)

    if out is not None:
        for path in write_csv_dir(report, out):
            typer.echo(f"wrote {path}", err=True)
    elif output_format is OutputFormat.json:
        write_json(report, sys.stdout)
    elif output_format is OutputFormat.csv:
        write_csv(report.section(str(section)), report.currency, sys.stdout)
    else:
        from rich.console import Console

        from cli.report_terminal import render_report, render_section

        console = Console()
        if section is not None:
            render_section(report, report.section(section), console)
        else:
            render_report(report, console, top)
    if html_file is not None:
        write_html(report, html_file)
        typer.echo(f"wrote {html_file}", err=True)
