"""`evledger demo`: the whole pipeline on the embedded default, on generated traffic.

Upstream messages are generated (deterministic by seed), written to a JSON Lines file,
ingested into a fresh SQLite ledger, projected into the read models, and summed up from
the analytics tables. Everything stays in the demo's data dir for the user to explore.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bootstrap import Settings, bootstrap
from consumers.file_ingest import FileIngest
from demo.traffic import TrafficShape, generate
from domain.money import Money
from projections.databases.duckdb import DuckDatabase

MARKER = ".evledger-demo"


class DemoDirInUse(RuntimeError):
    """The demo's data dir holds something the demo did not make; it is left alone."""


@dataclass
class DemoSummary:
    messages: int = 0
    ledger_events: int = 0
    dead_letters: int = 0
    rejected: int = 0
    sessions: int = 0
    stations: int = 0
    customers: int = 0
    gross_revenue: list[Money] = field(default_factory=list)
    energy_kwh: Decimal = Decimal(0)
    peak_slots: list[tuple[str, int, int]] = field(default_factory=list)
    busiest: tuple[str, int, str] | None = None
    quietest: tuple[str, int, str] | None = None
    payments: int = 0
    failed_payments: int = 0
    overcharges: int = 0
    refunds: int = 0
    refund_reasons: dict[str, int] = field(default_factory=dict)
    refunded: list[Money] = field(default_factory=list)
    books_balance: bool = False
    html_reports: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


WEEKDAYS = ("", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def prepare(data_dir: Path) -> None:
    """An empty demo dir: earlier demo output is replaced, anything else is refused."""
    if data_dir.exists() and any(data_dir.iterdir()):
        if not (data_dir / MARKER).exists():
            raise DemoDirInUse(
                f"{data_dir} is not empty and was not made by `evledger demo`; "
                "choose another --data-dir"
            )
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / MARKER).write_text("made by evledger demo; replaced by the next demo run\n")


def run_demo(
    data_dir: Path,
    seed: int,
    shape: TrafficShape,
    on_step: Callable[[str], None] = lambda step: None,
) -> DemoSummary:
    prepare(data_dir)
    root = bootstrap(Settings.embedded_in(data_dir))
    summary = DemoSummary()

    started = time.perf_counter()
    on_step("generating upstream traffic")
    messages = generate(seed=seed, shape=shape)
    upstream = data_dir / "upstream.jsonl"
    upstream.write_text("".join(json.dumps(message) + "\n" for message in messages))
    summary.messages = len(messages)
    summary.seconds["generate"] = time.perf_counter() - started

    started = time.perf_counter()
    on_step(f"ingesting {len(messages):,} messages into the ledger")
    try:
        application = root.application()
        counters = FileIngest(application, upstream, data_dir / "dead-letters.jsonl").run()
        summary.ledger_events = application.recorder.max_notification_id() or 0
    finally:
        root.close()
    summary.dead_letters = counters.dead_lettered
    summary.rejected = counters.rejected
    summary.seconds["ingest"] = time.perf_counter() - started

    started = time.perf_counter()
    on_step(f"projecting {summary.ledger_events:,} ledger events into the read models")
    with root.projector() as runner:
        runner.run_until_idle()
    summary.seconds["project"] = time.perf_counter() - started

    analytics = DuckDatabase(root.settings.analytics_path, read_only=True)
    try:
        _summarise(analytics, summary)
        summary.html_reports = write_html_reports(analytics, data_dir)
    finally:
        analytics.close()
    return summary


def write_html_reports(db: DuckDatabase, data_dir: Path) -> list[Path]:
    """The analysts' HTML report in the data dir: ``report.html``, or one per currency."""
    from projections.report import Filters, build_report, currencies
    from projections.report_html import write_html

    found = currencies(db)
    written = []
    for currency in found:
        path = data_dir / ("report.html" if len(found) == 1 else f"report-{currency}.html")
        write_html(build_report(db, Filters(currency=currency)), path)
        written.append(path)
    return written


def _one(db: DuckDatabase, statement: str) -> dict[str, Any]:
    rows = db.execute(statement)
    return dict(rows[0]) if rows else {}


def _summarise(db: DuckDatabase, summary: DemoSummary) -> None:
    totals = _one(
        db,
        "SELECT COUNT(*) AS sessions, COUNT(DISTINCT station_id) AS stations, "
        "COUNT(DISTINCT customer_id) AS customers, COALESCE(SUM(energy_kwh), 0) AS energy "
        "FROM fact_sessions",
    )
    summary.sessions = int(totals["sessions"])
    summary.stations = int(totals["stations"])
    summary.customers = int(totals["customers"])
    summary.energy_kwh = Decimal(str(totals["energy"]))
    summary.gross_revenue = [
        Money(int(row["gross"]), str(row["currency"]))
        for row in db.execute(
            "SELECT currency, SUM(total_minor) AS gross FROM fact_sessions "
            "WHERE total_minor IS NOT NULL GROUP BY currency ORDER BY currency"
        )
    ]
    summary.peak_slots = [
        (WEEKDAYS[int(row["weekday"])], int(row["local_hour"]), int(row["sessions"]))
        for row in db.execute(
            "SELECT weekday, local_hour, sessions FROM peak_usage "
            "ORDER BY sessions DESC, weekday, local_hour LIMIT 3"
        )
    ]
    utilisation = db.execute(
        "SELECT station_id, sessions, band FROM station_utilisation "
        "ORDER BY utilisation DESC, station_id"
    )
    if utilisation:
        first, last = utilisation[0], utilisation[-1]
        summary.busiest = (str(first["station_id"]), int(first["sessions"]), str(first["band"]))
        summary.quietest = (str(last["station_id"]), int(last["sessions"]), str(last["band"]))
    payments = _one(
        db,
        "SELECT COUNT(*) AS payments, "
        "COUNT(*) FILTER (WHERE status IN ('failed', 'declined')) AS failed, "
        "COUNT(*) FILTER (WHERE discrepancy_minor > 0) AS overcharges FROM fact_payments",
    )
    summary.payments = int(payments["payments"])
    summary.failed_payments = int(payments["failed"])
    summary.overcharges = int(payments["overcharges"])
    summary.refund_reasons = {
        str(row["reason"]): int(row["refunds"])
        for row in db.execute(
            "SELECT reason, COUNT(*) AS refunds FROM fact_refunds "
            "GROUP BY reason ORDER BY refunds DESC, reason"
        )
    }
    summary.refunds = sum(summary.refund_reasons.values())
    summary.refunded = [
        Money(int(row["issued"]), str(row["currency"]))
        for row in db.execute(
            "SELECT currency, SUM(issued_minor) AS issued FROM fact_refunds "
            "WHERE status = 'issued' GROUP BY currency ORDER BY currency"
        )
    ]
    balance = db.execute("SELECT * FROM trial_balance_check")
    summary.books_balance = bool(balance) and all(
        row["debits_minor"] == row["credits_minor"] for row in balance
    )
