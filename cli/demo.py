"""`evledger demo`: run the whole pipeline on generated data and print a short report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.output import LazyConsole, format_amounts

if TYPE_CHECKING:  # imported when the demo runs: other commands start without them
    from demo.pipeline import DemoSummary
    from domain.money import Money

console = LazyConsole()


def demo(
    seed: Annotated[int, typer.Option(help="Same seed, same data, same report.")] = 7,
    days: Annotated[int, typer.Option(min=1, max=365, help="Days of traffic.")] = 14,
    stations: Annotated[int, typer.Option(min=1, max=500, help="Charging stations.")] = 8,
    data_dir: Annotated[
        Path, typer.Option(help="Where the demo's ledger and read models are written.")
    ] = Path(".evledger/demo"),
) -> None:
    """Run the whole pipeline on the embedded default with generated data; no services."""
    from demo.pipeline import DemoDirInUse, run_demo
    from demo.traffic import TrafficShape

    shape = TrafficShape(stations=stations, customers=40 * stations, days=days)
    try:
        summary = run_demo(
            data_dir, seed, shape, on_step=lambda step: console.print(f"[dim]… {step}[/dim]")
        )
    except DemoDirInUse as refused:
        console.print(f"evledger: {refused}", style="red")
        raise typer.Exit(2) from None
    print_report(summary, data_dir, days)


def _money(amounts: list[Money]) -> str:
    by_currency: dict[str, int] = {}
    for amount in amounts:
        by_currency[amount.currency] = by_currency.get(amount.currency, 0) + amount.minor
    return format_amounts(by_currency)


def print_report(summary: DemoSummary, data_dir: Path, days: int) -> None:
    seconds = sum(summary.seconds.values())
    console.print()
    console.rule(f"[bold]evledger demo: {days} days, {summary.stations} stations[/bold]")
    console.print(
        f"{summary.messages:,} upstream messages -> {summary.ledger_events:,} ledger events "
        f"({summary.rejected} recorded rejections, {summary.dead_letters} dead letters) "
        f"in {seconds:.1f} s"
    )
    console.print(
        f"[bold]Revenue[/bold] {_money(summary.gross_revenue)} incl. VAT from "
        f"{summary.sessions:,} sessions by {summary.customers:,} customers; "
        f"[bold]energy[/bold] {summary.energy_kwh:,.1f} kWh"
    )
    peaks = ", ".join(f"{day} {hour:02d}:00 ({n} sessions)" for day, hour, n in summary.peak_slots)
    console.print(f"[bold]Peak hours[/bold] {peaks}")
    if summary.busiest and summary.quietest:
        busy, quiet = summary.busiest, summary.quietest
        console.print(
            f"[bold]Busiest station[/bold] {busy[0]} ({busy[1]} sessions, {busy[2]}); "
            f"[bold]quietest[/bold] {quiet[0]} ({quiet[1]} sessions, {quiet[2]})"
        )
    rate = summary.refunds / summary.payments if summary.payments else 0
    reasons = ", ".join(f"{reason} {count}" for reason, count in summary.refund_reasons.items())
    console.print(
        f"[bold]Refunds[/bold] {summary.refunds} on {summary.payments:,} payments "
        f"({rate:.1%}): {reasons}; {_money(summary.refunded)} paid back"
    )
    console.print(
        f"[bold]Payments[/bold] {summary.failed_payments} failed or declined, "
        f"{summary.overcharges} overcharges found by reconciliation; books "
        + ("[green]balance[/green]" if summary.books_balance else "[red]DO NOT BALANCE[/red]")
    )
    console.print()
    console.print(f"Explore it: [bold]export EVLEDGER_DATA_DIR={data_dir}[/bold], then")
    console.print("  evledger analytics report        evledger refunds --status issued")
    console.print("  evledger history --customer C-00001")
    if summary.html_reports:
        reports = " and ".join(str(path) for path in summary.html_reports)
        console.print(
            f"Charts: open [bold]{reports}[/bold] in a browser (works offline)",
            soft_wrap=True,
        )
