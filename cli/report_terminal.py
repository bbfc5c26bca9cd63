"""The analysts' report in a terminal: headline first, then each section short (top rows
and totals, units in the headers), or one section in full."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from cli.safe_text import plain
from projections.report import Kind, Report, Section
from projections.report_formats import header_text, headline_items, period_text, value_text

_TEXT_KINDS = (Kind.text, Kind.day, Kind.flag, Kind.hour)


def render_report(report: Report, console: Console, top: int = 8) -> None:
    """Headline and every section in short form."""
    _render_headline(report, console)
    for section in report.sections:
        console.print()
        console.print(_title(section, top))
        console.print(_table(report, section, top))
    console.print()
    console.print(
        "[dim]--section NAME shows a section in full; --html FILE draws the charts.[/dim]"
    )


def render_section(report: Report, section: Section, console: Console) -> None:
    """One section with every row and column."""
    # Upstream strings (a station id in the scope) are plain text, never markup.
    console.print(Text.assemble((section.title, "bold"), "  ", plain(_scope_line(report))))
    console.print(f"[dim]{section.caption}[/dim]")
    table = _table(report, section, None)
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    if section.compact and natural > console.width:
        # Too wide for this terminal: the short form's columns, every row.
        table = _table(report, section, None, list(section.compact))
        hidden = len(section.columns) - len(section.compact)
        console.print(f"[dim]{hidden} more columns in a wider terminal or with --format csv[/dim]")
    console.print(table)


def _title(section: Section, top: int) -> str:
    shown = f" [dim](top {top} of {len(section.rows)})[/dim]" if len(section.rows) > top else ""
    return f"[bold]{section.title}[/bold]{shown}"


def _scope_line(report: Report) -> str:
    parts = [period_text(report)]
    if report.currency:
        parts.append(f"amounts in {report.currency}")
    if report.filters.station:
        parts.append(f"station {report.filters.station}")
    return "; ".join(parts)


def _render_headline(report: Report, console: Console) -> None:
    console.rule("[bold]evledger analytics report[/bold]")
    console.print(plain(_scope_line(report)), justify="center")
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for label, value in headline_items(report):
        grid.add_row(label, plain(value))
    console.print(grid)


def _table(
    report: Report, section: Section, top: int | None, names: list[str] | None = None
) -> Table:
    """``top`` None: every row (and column, unless ``names``); otherwise the short form."""
    if names is None:
        full = top is None or not section.compact
        names = [c.name for c in section.columns] if full else list(section.compact)
    rows = section.rows
    if top is not None:
        rank_by = section.rank_by
        if rank_by is not None:
            rows = sorted(rows, key=lambda row: row[rank_by] or 0, reverse=True)
        rows = rows[:top]
    totals = [name for name in section.totals if name in names]
    table = Table(
        box=box.SIMPLE_HEAD,
        show_footer=bool(totals) and len(section.rows) > 1,
        pad_edge=False,
    )
    for index, name in enumerate(names):
        kind = section.column(name).kind
        footer = ""
        if name in totals:
            footer = value_text(kind, section.total(name), report.currency, unit=False)
        elif index == 0 and totals:
            footer = "total"
        table.add_column(
            header_text(section, name, report.currency),
            justify="left" if kind in _TEXT_KINDS else "right",
            no_wrap=True,
            footer=footer,
        )
    for row in rows:
        table.add_row(
            *(
                plain(
                    value_text(
                        section.column(name).kind, row.get(name), report.currency, unit=False
                    )
                )
                for name in names
            ),
            style="bold red" if row.get("recurring") else None,
        )
    if not section.rows:
        table.add_row(*("" for _ in names))
        table.caption = "no rows for this period"
    return table
