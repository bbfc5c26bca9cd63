"""The query and projector commands: history, refunds, refund show, analytics, project."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from cli.context import current_root
from cli.options import FormatOption, ProjectionBatchOption
from cli.output import OutputFormat, render

if TYPE_CHECKING:
    from types import FrameType

    from bootstrap import Root

T = TypeVar("T")


refund_app = typer.Typer(help="One refund.", no_args_is_help=True)
analytics_app = typer.Typer(help="SQL over the analytics tables (DuckDB).", no_args_is_help=True)

# Columns a terminal table shows; JSON and CSV carry every column.
_HISTORY_TABLE_COLUMNS = (
    "payment_id",
    "created_at",
    "status",
    "customer_id",
    "station_id",
    "energy_kwh",
    "currency",
    "authorised_minor",
    "captured_minor",
    "refunded_minor",
    "net_minor",
    "discrepancy_minor",
)
_REFUND_TABLE_COLUMNS = (
    "refund_id",
    "status",
    "payment_id",
    "customer_id",
    "station_id",
    "amount_minor",
    "currency",
    "reason",
    "requested_at",
    "decided_by",
    "age",
)


def _fail(message: str, status: int = 1) -> typer.Exit:
    typer.echo(f"evledger: {message}", err=True)
    return typer.Exit(status)


@contextmanager
def _reporting_database_errors(root: Root) -> Iterator[None]:
    """A database that is down, or tables not projected yet, as one line and status 1."""
    from projections.databases.errors import MissingTable, ReadModelDatabaseError

    try:
        yield
    except (ReadModelDatabaseError, OSError) as error:
        from bootstrap.secrets import scrub

        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        first = scrub(first, root.settings.pg_dsn)
        if isinstance(error, MissingTable):
            first += " (run `evledger project` to build the read models)"
        raise _fail(first) from None


def _parse_time(value: str | None, option: str) -> datetime | None:
    """RFC 3339 / ISO 8601; a time without an offset (or a bare date) is UTC."""
    if value is None:
        return None
    from cli.time_bounds import parse_bounded

    try:
        return parse_bounded(value, option)
    except ValueError as bad:
        raise _fail(str(bad), 2) from None


def _columns(
    output_format: OutputFormat, table: tuple[str, ...], every: tuple[str, ...]
) -> list[str]:
    return list(table if output_format is OutputFormat.table else every)


# --- payment history ---------------------------------------------------------------------


def history(
    *,
    customer: Annotated[str | None, typer.Option("--customer", help="Customer id.")] = None,
    station: Annotated[str | None, typer.Option("--station", help="Station id.")] = None,
    period_from: Annotated[
        str | None, typer.Option("--from", help="Payments created at or after (ISO 8601).")
    ] = None,
    period_to: Annotated[
        str | None, typer.Option("--to", help="Payments created before (ISO 8601).")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="Rows per page.")] = 50,
    after: Annotated[
        str | None, typer.Option("--after", help="Cursor printed by the previous page.")
    ] = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Payment history of a customer or a station, newest first, a page at a time."""
    from projections.payment_history import (
        HISTORY_COLUMNS,
        BadCursor,
        HistoryFilter,
        query_history,
    )

    if (customer is None) == (station is None):
        raise _fail("give exactly one of --customer ID and --station ID", 2)
    wanted = HistoryFilter(
        customer_id=customer,
        station_id=station,
        period_from=_parse_time(period_from, "--from"),
        period_to=_parse_time(period_to, "--to"),
        limit=limit,
        after=after,
    )
    root = current_root()
    db = root.views_database()
    try:
        with _reporting_database_errors(root):
            page = query_history(db, wanted)
    except BadCursor as error:
        raise _fail(str(error), 2) from None
    finally:
        db.close()
    title = f"Payments of {'customer ' + customer if customer else 'station ' + str(station)}"
    render(
        page.rows,
        _columns(output_format, _HISTORY_TABLE_COLUMNS, HISTORY_COLUMNS),
        output_format,
        title,
    )
    if page.next_cursor:
        typer.echo(f"next page: --after {page.next_cursor}", err=True)


# --- refunds -----------------------------------------------------------------------------


def refunds(
    status: Annotated[
        str | None,
        typer.Option("--status", help="requested, approved, rejected, issued or failed."),
    ] = None,
    customer: Annotated[str | None, typer.Option("--customer", help="Customer id.")] = None,
    station: Annotated[str | None, typer.Option("--station", help="Station id.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 100,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Refunds newest first, by status, customer or station."""
    from projections.refund_status import REFUND_COLUMNS, REFUND_STATUSES, query_refunds

    if status is not None and status not in REFUND_STATUSES:
        raise _fail(f"--status must be one of {', '.join(REFUND_STATUSES)}, got {status!r}", 2)
    root = current_root()
    db = root.views_database()
    try:
        with _reporting_database_errors(root):
            rows = query_refunds(
                db, status=status, customer_id=customer, station_id=station, limit=limit
            )
    finally:
        db.close()
    render(
        rows,
        _columns(output_format, _REFUND_TABLE_COLUMNS, REFUND_COLUMNS),
        output_format,
        "Refunds",
    )


@refund_app.command("show")
def refund_show(
    refund_id: Annotated[str, typer.Argument(help="The refund's upstream id.")],
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Everything the refund status view knows about one refund."""
    from projections.refund_status import REFUND_DETAIL_COLUMNS, refund

    root = current_root()
    db = root.views_database()
    try:
        with _reporting_database_errors(root):
            row = refund(db, refund_id)
    finally:
        db.close()
    if row is None:
        raise _fail(f"no refund {refund_id!r} in the refund status view")
    if output_format is OutputFormat.table:
        render(
            [{"field": column, "value": row.get(column)} for column in REFUND_DETAIL_COLUMNS],
            ["field", "value"],
            output_format,
            f"Refund {refund_id}",
        )
    else:
        render([row], list(REFUND_DETAIL_COLUMNS), output_format)


# --- analytics ---------------------------------------------------------------------------


def _analytics(action: Callable[[Any], T]) -> T:
    from projections.analytics_queries import open_read_only

    root = current_root()
    with _reporting_database_errors(root):
        db = open_read_only(root.settings.analytics_path)
        try:
            return action(db)
        finally:
            db.close()


@analytics_app.command("query")
def analytics_query(
    sql: Annotated[str, typer.Argument(help="One SELECT over the fact tables and views.")],
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Run one read-only SELECT on the analytics database."""
    from projections.analytics_queries import QueryRefused, run_select

    try:
        columns, rows = _analytics(lambda db: run_select(db, sql))
    except QueryRefused as refused:
        raise _fail(str(refused), 2) from None
    render(rows, columns, output_format)


# --- the projector -----------------------------------------------------------------------


def project(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Stop once the read models have the ledger.")
    ] = False,
    projection: Annotated[
        list[str] | None,
        typer.Option(
            "--projection", help="payment_history, refund_status or analytics (repeatable)."
        ),
    ] = None,
    batch_size: ProjectionBatchOption = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Run the projectors: ledger -> payment history, refund status, analytics."""
    import logging
    import signal
    import threading

    from bootstrap.read_models import READ_MODEL_NAMES, UnknownProjection
    from projections.gc_pacing import PROJECTOR_YOUNG_THRESHOLD, fewer_collections
    from projections.runner import LedgerGapError, ProjectionStalled, RetryPolicy

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    root = current_root()
    names = projection or list(READ_MODEL_NAMES)
    # A one-shot catch-up gives up after a few retries; a long-running projector never does.
    retry = RetryPolicy() if until_idle else RetryPolicy(attempts=None)
    try:
        with (
            _reporting_database_errors(root),
            root.projector(names, batch_size, retry) as runner,
            # The projector alone in its process: its pace (`evledger run` keeps the
            # projector's default, which ingest's own block beside it raises to its own).
            fewer_collections(PROJECTOR_YOUNG_THRESHOLD),
        ):
            if until_idle:
                runner.run_until_idle()
            else:
                stop = threading.Event()

                def _stop(signum: int, frame: FrameType | None) -> None:
                    from consumers.ingest import STOP_GRACE_S, abandon_batch_and_exit

                    if not stop.is_set():  # a batch still running after the grace is left
                        watchdog = threading.Timer(
                            STOP_GRACE_S, abandon_batch_and_exit, [STOP_GRACE_S]
                        )
                        watchdog.daemon = True
                        watchdog.start()
                    stop.set()

                signal.signal(signal.SIGTERM, _stop)
                signal.signal(signal.SIGINT, _stop)
                runner.run(stop)
            rows = [
                {
                    "projection": name,
                    "position": runner.positions()[name],
                    "events": progress.events,
                    "batches": progress.batches,
                    "retries": progress.retries,
                }
                for name, progress in runner.progress.items()
            ]
            stopped = list(runner.stopped.values())
    except (UnknownProjection, LedgerGapError, ProjectionStalled) as error:
        raise _fail(str(error)) from None
    render(rows, ["projection", "position", "events", "batches", "retries"], output_format)
    if stopped:
        raise _fail("; ".join(projection.describe() for projection in stopped))


def add_analytics(app: typer.Typer) -> None:
    """Add `evledger analytics query|report` to the app."""
    from cli.report_command import analytics_report

    analytics_app.command("report")(analytics_report)
    app.add_typer(analytics_app, name="analytics")
