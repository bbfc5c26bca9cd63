"""The `evledger replay` commands: `rebuild` read models and swap them in, or build a
`snapshot` of them as the ledger stood at an offset or a time."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import current_root
from cli.options import FormatOption, ProjectionBatchOption
from cli.output import OutputFormat, progress, render

if TYPE_CHECKING:  # imported when a command runs: `evledger --help` does without them
    from bootstrap import Root
    from replay.ledger_prefix import ProgressHook
    from replay.point_in_time import PointInTime, SnapshotReport

app = typer.Typer(
    help="Rebuild read models from the ledger, or snapshot them as the ledger stood earlier.",
    no_args_is_help=True,
)

_CHECKSUM_COLUMNS = [
    "projection",
    "table",
    "position",
    "live_rows",
    "live_checksum",
    "rebuilt_rows",
    "rebuilt_checksum",
    "equal",
]
_SNAPSHOT_COLUMNS = ["projection", "table", "position", "rows", "checksum", "where"]


def _fail(message: str, status: int = 1) -> typer.Exit:
    typer.echo(f"evledger: {message}", err=True)
    return typer.Exit(status)


@contextmanager
def _progress_bar(description: str, enabled: bool) -> Iterator[ProgressHook]:
    """A progress bar of ledger events on stderr; the hook that moves it."""
    with progress(description, unit="events", enabled=enabled) as bar:
        yield lambda reached, target: bar.update(reached, total=max(target, 1))


def _parse_as_of(value: str) -> datetime:
    from cli.time_bounds import parse_bounded

    try:
        return parse_bounded(value, "--as-of")
    except ValueError as bad:
        raise _fail(str(bad), 2) from None


def _errors() -> tuple[type[Exception], ...]:
    from bootstrap.ledgers import WholeLedgerOnly
    from bootstrap.read_models import UnknownProjection
    from projections.analytics_snapshot import SnapshotError
    from projections.databases.errors import ReadModelDatabaseError
    from projections.runner import LedgerGapError, ProjectionStalled
    from replay.duck_file_swap import SwapUnsupported
    from replay.point_in_time import CutNeedsEveryShard
    from replay.positions import PointBeyondLedger
    from replay.rebuild import LiveModelBehind
    from replay.shard_processes import ShardRebuildFailed
    from replay.swap import LiveModelBusy
    from replay.targets import BadSnapshotName, RebuildOwnershipLost

    return (
        WholeLedgerOnly,
        UnknownProjection,
        LedgerGapError,
        ProjectionStalled,
        PointBeyondLedger,
        CutNeedsEveryShard,
        LiveModelBehind,
        ShardRebuildFailed,
        RebuildOwnershipLost,
        LiveModelBusy,
        SwapUnsupported,
        SnapshotError,
        BadSnapshotName,
        ReadModelDatabaseError,
        OSError,
    )


ProjectionOption = Annotated[
    list[str] | None,
    typer.Option(
        "--projection",
        help="payment_history, refund_status, analytics or all (repeatable; default all).",
    ),
]


def _projection_names(requested: list[str] | None) -> list[str]:
    from bootstrap.read_models import projection_names

    return projection_names(requested)


def _batch_size(requested: int | None) -> int:
    from replay.ledger_prefix import REBUILD_BATCH_SIZE

    return requested or REBUILD_BATCH_SIZE


ProgressOption = Annotated[
    bool, typer.Option("--progress/--no-progress", help="Progress bar on stderr.")
]


@contextmanager
def _reporting_errors() -> Iterator[None]:
    try:
        yield
    except _errors() as error:
        text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise _fail(text) from None


def _notice(line: str) -> None:
    typer.echo(f"evledger: {line}", err=True)


@app.command("rebuild")
def rebuild_command(
    *,
    projection: ProjectionOption = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Swap even if checksums differ (the live model is bad)."),
    ] = False,
    batch_size: ProjectionBatchOption = None,
    show_progress: ProgressOption = True,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Rebuild read models from the whole ledger beside the live ones and swap them in after
    a checksum per table proves them equal."""
    root = current_root()
    with _reporting_errors():
        _rebuild(
            root,
            _projection_names(projection),
            force=force,
            batch_size=batch_size,
            show_progress=show_progress,
            output_format=output_format,
        )


@app.command("snapshot")
def snapshot_command(
    *,
    until_offset: Annotated[
        str | None,
        typer.Option(
            "--until-offset",
            help="As of this ledger offset (Kafka offset; notification id embedded),"
            " taken back to the end of the last whole command; on a sharded ledger one"
            " offset per shard, shard 0 first: O0,O1,...",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="The whole commands recorded at or before this time (RFC 3339).",
        ),
    ] = None,
    into: Annotated[
        str | None,
        typer.Option("--into", help="Snapshot name (default offset_N or asof_TIME)."),
    ] = None,
    projection: ProjectionOption = None,
    batch_size: ProjectionBatchOption = None,
    show_progress: ProgressOption = True,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Build the read models as the ledger stood at an offset or a time, into a named
    snapshot beside the live ones (which are not touched)."""
    if (until_offset is None) == (as_of is None):
        raise _fail("give exactly one of --until-offset and --as-of", 2)
    from replay.point_in_time import PointInTime

    if as_of is not None:
        point = PointInTime(as_of=_parse_as_of(as_of))
    else:
        assert until_offset is not None
        point = _offset_point(until_offset)
    root = current_root()
    with _reporting_errors():
        _snapshot(
            root,
            _projection_names(projection),
            point,
            into=into,
            batch_size=batch_size,
            show_progress=show_progress,
            output_format=output_format,
        )


def _rebuild(
    root: Root,
    names: list[str],
    *,
    force: bool,
    batch_size: int | None,
    show_progress: bool,
    output_format: OutputFormat,
) -> None:
    from replay.rebuild import rebuild

    with _progress_bar("rebuilding", show_progress) as hook:
        report = rebuild(
            root,
            names,
            force=force,
            batch_size=_batch_size(batch_size),
            progress=hook,
            notice=_notice,
        )
    rows = [
        {
            "projection": comparison.projection,
            "table": comparison.table,
            "position": outcome.position_of(comparison.projection),
            "live_rows": comparison.live.rows if comparison.live else None,
            "live_checksum": comparison.live.hex if comparison.live else "(no live model)",
            "rebuilt_rows": comparison.rebuilt.rows,
            "rebuilt_checksum": comparison.rebuilt.hex,
            "equal": "yes" if comparison.equal else "NO",
        }
        for outcome in report.outcomes
        for comparison in outcome.comparisons
    ]
    render(rows, _CHECKSUM_COLUMNS, output_format, "Checksums: live vs rebuilt")
    typer.echo(
        f"replayed {report.events:,} ledger events in {report.seconds:.1f}s "
        f"({report.events_per_second:,.0f} events/s)",
        err=True,
    )
    for outcome in report.outcomes:
        models = ", ".join(outcome.projections)
        if outcome.error is not None:
            typer.echo(f"kept the live {models}: {outcome.error}", err=True)
        elif outcome.swapped:
            forced = " (forced: checksums differed)" if outcome.mismatched else ""
            typer.echo(f"swapped in {models} at {outcome.where}{forced}", err=True)
        else:
            tables = ", ".join(f"{c.projection}.{c.table}" for c in outcome.mismatched)
            typer.echo(
                f"checksums differ for {tables}: kept the live {models}; if the live model "
                "is known to be bad, run again with --force",
                err=True,
            )
    if not report.all_swapped:
        raise typer.Exit(1)


def _offset_point(value: str) -> PointInTime:
    """``--until-offset``: one offset, or one per shard (comma-separated, shard 0 first;
    -1: nothing of that shard)."""
    from replay.point_in_time import PointInTime

    parts = [part.strip() for part in value.split(",")]
    if not all(part.isdigit() or (len(parts) > 1 and part == "-1") for part in parts):
        raise _fail(
            f"--until-offset {value!r}: give a ledger offset (a whole number >= 0), or on a "
            "sharded ledger one per shard, shard 0 first: O0,O1,... (-1: none of that shard)",
            2,
        )
    offsets = tuple(int(part) for part in parts)
    if len(offsets) == 1:
        return PointInTime(until_offset=offsets[0])
    return PointInTime(shard_offsets=offsets)


def _snapshot(
    root: Root,
    names: list[str],
    point: PointInTime,
    *,
    into: str | None,
    batch_size: int | None,
    show_progress: bool,
    output_format: OutputFormat,
) -> None:
    from replay.point_in_time import build_snapshot

    with _progress_bar("snapshot", show_progress) as hook:
        report = build_snapshot(
            root, names, point, into, batch_size=_batch_size(batch_size), progress=hook
        )
    rows = [
        {
            "projection": name,
            "table": table,
            "position": report.position,
            "rows": checksum.rows,
            "checksum": checksum.hex,
            "where": report.places[name],
        }
        for name, tables in report.checksums.items()
        for table, checksum in tables.items()
    ]
    render(rows, _SNAPSHOT_COLUMNS, output_format, f"Snapshot {report.label}")
    typer.echo(
        f"snapshot {report.label}: {point.describe()} = {_cut(report)}; the live models were "
        "not touched",
        err=True,
    )
    typer.echo("query it with:", err=True)
    for variable, value in report.query_settings.items():
        typer.echo(f"  export {variable}={shlex.quote(value)}", err=True)


def _cut(report: SnapshotReport) -> str:
    """The snapshot's effective cut, for a person: a sharded ledger's one offset per shard."""
    if len(report.cuts) == 1:
        if not report.position:
            return "no whole command recorded by then (the snapshot is empty)"
        recorded = (
            f" (last event recorded at {report.last_recorded_at.isoformat()})"
            if report.last_recorded_at
            else ""
        )
        return (
            f"ledger notification {report.position} at offset {report.offset}, the end of "
            f"the last whole command by then{recorded}"
        )
    shards = "; ".join(
        f"shard {cut.shard} notification {cut.position} at offset {cut.offset}"
        if cut.position
        else f"shard {cut.shard} empty (offset -1)"
        for cut in report.cuts
    )
    offsets = ",".join(str(-1 if cut.offset is None else cut.offset) for cut in report.cuts)
    return (
        f"one offset per shard, each the end of its last whole command by then (shards "
        f"commit independently, so a cut is per-shard offsets, not one time): {shards}; "
        f"--until-offset {offsets} gives the same cut"
    )
