"""The `evledger audit` commands: verify the ledger, trace a payment, export and import it,
and make the key pair the ledger writer signs with."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.context import current_root, current_settings
from cli.options import FormatOption
from cli.output import OutputFormat, format_amounts, progress, render

# audit/, store/ and bootstrap/ are imported by the command that runs: `evledger --help`
# and the other commands start without them (and without cryptography).
if TYPE_CHECKING:
    from audit.anchors import Anchor
    from audit.scan import LedgerScan, ScannedRecord
    from audit.verify import AuditReport, AuditSummary
    from store.signing import Keyring


class FileFormat(StrEnum):
    """The choices of audit.export.ExportFormat, named here so that registering the
    command does not import the exporter (a unit test keeps the two equal)."""

    parquet = "parquet"
    jsonl = "jsonl"


app = typer.Typer(
    help="Audit the ledger: verify it, trace a session, payment or refund, export it.",
    no_args_is_help=True,
)

# Repaint the progress bar every this many records: repainting per record would cost more
# than reading it.
_PROGRESS_EVERY = 500


def _fail(message: str, status: int) -> typer.Exit:
    typer.echo(f"evledger: {message}", err=True)
    return typer.Exit(status)


@contextmanager
def _progress(label: str, size_hint: Callable[[], int | None]) -> Iterator[Callable[[Any], None]]:
    """A progress bar of ledger records on stderr; the callback that moves it."""
    with progress(label, unit="records", transient=True) as bar:

        def advance(record: ScannedRecord) -> None:
            if record.position % _PROGRESS_EVERY == 0:
                # Kafka offsets include transaction markers: track offsets against the end.
                done = record.offset + 1 if record.offset is not None else record.position
                bar.update(done, total=size_hint())

        yield advance


@app.command()
def verify(  # noqa: PLR0917 - typer passes each option as an argument
    export: Annotated[
        Path | None,
        typer.Option(
            "--export", help="Verify an export directory instead, offline (no services needed)."
        ),
    ] = None,
    public_keys: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="A trusted public key (PEM) or a directory of them; repeat for rotated keys. "
            "Every record must then be signed by one of them.",
        ),
    ] = None,
    expect_last_hash: Annotated[
        str | None,
        typer.Option(
            "--expect-last-hash",
            help="A hash from an earlier audit the ledger must still contain (hex).",
        ),
    ] = None,
    at_id: Annotated[
        int | None,
        typer.Option("--at-id", help="The notification id --expect-last-hash must be at."),
    ] = None,
    shard: Annotated[
        int | None,
        typer.Option(
            "--shard", min=0, help="The shard --expect-last-hash is on (a sharded ledger)."
        ),
    ] = None,
    anchor: Annotated[
        list[Path] | None,
        typer.Option(
            "--anchor",
            help="An earlier export's manifest.json (or directory) whose last record the "
            "ledger must still hold; signed manifests are checked against --public-key.",
        ),
    ] = None,
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Check the hash chain, signatures, anchors, ids, versions, refunds, postings and the
    business facts; exit 1 at the first fault."""
    from audit.anchors import AnchorError, anchors_of_shard
    from audit.export import ExportError, verify_export
    from audit.scan import LedgerUnavailable
    from audit.shard_exports import sharded_export
    from store.signing import Keyring, SigningKeyError

    try:
        keyring = Keyring.load(public_keys) if public_keys else None
        anchors = _anchors(expect_last_hash, at_id, shard, anchor or [], keyring)
        in_memory = current_settings().audit_state_cache_size
        if export is not None and (shard_exports := sharded_export(export)) is not None:

            def verify_shard_export(number: int) -> tuple[AuditReport, str | None]:
                with _progress(f"verifying shard {number}", lambda: None) as advance:
                    return verify_export(
                        shard_exports[number],
                        advance,
                        keyring,
                        anchors_of_shard(anchors, number),
                        state_cache_size=in_memory,
                    ), None

            _verify_shards(len(shard_exports), verify_shard_export, output_format)
            return
        if export is not None:
            with _progress("verifying export", lambda: None) as advance:
                report = verify_export(
                    export,
                    advance,
                    keyring,
                    anchors_of_shard(anchors, None),
                    state_cache_size=in_memory,
                )
            chain_note = None
        elif (root := current_root()).ledger.shards > 1:
            _verify_shards(
                root.ledger.shards,
                lambda number: _verify_ledger(
                    root.ledger_scan(number), number, keyring, anchors, in_memory
                ),
                output_format,
            )
            return
        else:
            report, chain_note = _verify_ledger(
                root.ledger_scan(), None, keyring, anchors, in_memory
            )
    except (LedgerUnavailable, ExportError, SigningKeyError, AnchorError) as error:
        raise _fail(str(error), 2) from None
    _report(report, chain_note, output_format)


def _verify_ledger(
    scan: LedgerScan,
    shard: int | None,
    keyring: Keyring | None,
    anchors: list[Anchor],
    in_memory: int,
) -> tuple[AuditReport, str | None]:
    """Verify the ledger, or (``shard``) one shard of a sharded ledger, as the ledger it
    is: its own ids, chain, signatures and anchors; with its chain note."""
    from audit.anchors import anchors_of_shard
    from audit.verify import verify_records

    label = "verifying ledger" if shard is None else f"verifying shard {shard}"
    with _progress(label, scan.size_hint) as advance:
        report = verify_records(
            scan.records(),
            scan.description,
            advance,
            keyring,
            anchors_of_shard(anchors, shard),
            state_cache_size=in_memory,
        )
    return report, _chain_note(scan, report.summary)


def _verify_shards(
    shards: int,
    verify_shard: Callable[[int], tuple[AuditReport, str | None]],
    output_format: OutputFormat,
) -> None:
    """Verify every shard of a sharded ledger (or its export) as the ledger it is; the
    first bad record is named with its shard. Each session, payment and refund lives on
    one shard, so each shard's business facts stand on their own."""
    rows: list[dict[str, Any]] = []
    for shard in range(shards):
        report, chain_note = verify_shard(shard)
        report.summary.source = f"shard {shard}: {report.summary.source}"
        if not report.ok:
            _report(report, None, output_format)
        rows += [
            {"check": f"shard {shard} {row['check']}", "result": row["result"]}
            for row in _summary_rows(report.summary, chain_note)
        ]
    render(rows, ["check", "result"], output_format, title="Ledger audit passed")


def _anchors(
    expect_last_hash: str | None,
    at_id: int | None,
    shard: int | None,
    manifests: list[Path],
    keyring: Keyring | None,
) -> list[Anchor]:
    from audit.anchors import AnchorError, anchor_from_hash, anchor_from_manifest

    if (at_id is not None or shard is not None) and expect_last_hash is None:
        raise AnchorError("--at-id and --shard go with --expect-last-hash")
    anchors = [anchor_from_manifest(path, keyring) for path in manifests]
    if expect_last_hash is not None:
        anchors.append(anchor_from_hash(expect_last_hash, at_id, shard))
    return anchors


def _chain_note(scan: LedgerScan, summary: AuditSummary) -> str | None:
    """How much of the chain could be checked, said plainly when not all of it."""
    if summary.records and summary.chained_records == 0:
        return (
            "NOT checked: the embedded SQLite ledger keeps no hashes (everything else was "
            "checked; import an export, or audit the Kafka ledger, to check a chain)"
        )
    if summary.unchained_records:
        return (
            f"verified for the {summary.chained_records} records imported from an export; "
            f"the {summary.unchained_records} recorded here since keep no hashes"
        )
    return None


def _report(report: AuditReport, chain_note: str | None, output_format: OutputFormat) -> None:
    if report.first is not None:
        rows = [
            {"check": f.check.value, "where": f.where, "problem": f.reason} for f in report.findings
        ]
        render(rows, ["check", "where", "problem"], output_format, title="Ledger audit FAILED")
        first = report.first
        where = f" at {first.where}" if first.where else ""
        typer.echo(
            f"evledger: audit failed{where} ({report.summary.source}): {first.check.value}: "
            f"{first.reason}",
            err=True,
        )
        raise typer.Exit(1)
    render(
        _summary_rows(report.summary, chain_note),
        ["check", "result"],
        output_format,
        title="Ledger audit passed",
    )


def _summary_rows(summary: AuditSummary, chain_note: str | None) -> list[dict[str, Any]]:
    ids = (
        f"contiguous {summary.first_notification_id}..{summary.last_notification_id}"
        if summary.records
        else "none (the ledger is empty)"
    )
    chain = chain_note or (
        f"verified: {summary.chained_records} records, last hash "
        f"{summary.last_hash.hex() if summary.last_hash else '-'}"
    )
    keys = ", ".join(sorted(summary.key_ids)) or "none"
    authenticity = (
        f"verified: every record in a transaction signed by a trusted key "
        f"({summary.signed_records} signatures, key ids {keys})"
        if summary.keys_given
        else f"NOT checked: no --public-key given ({summary.signed_records} signed "
        f"transactions, key ids {keys}); anyone able to write the ledger could have "
        "appended a record"
    )
    captured = format_amounts(summary.captured_minor)
    issued = format_amounts(summary.refunds_issued_minor)
    postings = "; ".join(
        f"{currency}: debits {totals.debit_minor} = credits {totals.credit_minor}"
        for currency, totals in sorted(summary.postings.items())
    )
    return [
        {"check": "source", "result": summary.source},
        {"check": "records", "result": summary.records},
        {"check": "hash chain", "result": chain},
        {"check": "authenticity", "result": authenticity},
        {
            "check": "anchors",
            "result": f"{summary.anchors_met} met" if summary.anchors_met else "none given",
        },
        {"check": "notification ids", "result": ids},
        {"check": "aggregate versions", "result": f"contiguous in {summary.aggregates} aggregates"},
        {
            "check": "refunds",
            "result": f"{summary.payments_captured} payments captured ({captured}); "
            f"{summary.refunds_approved} refunds approved, {summary.refunds_released} "
            f"released, {summary.refunds_issued} issued ({issued}); none above its "
            "payment's capture",
        },
        {
            "check": "postings",
            "result": f"{summary.events_with_postings} entries, each balanced; "
            f"{postings or 'no postings'} (minor units)",
        },
        {
            "check": "business facts",
            "result": "no session priced twice, no capture beyond its hold, no refund issued "
            "twice; every total is subtotal + VAT and every entry's postings match its event",
        },
    ]


@app.command()
def trail(
    upstream_id: Annotated[
        str,
        typer.Argument(metavar="ID", help="A session, payment or refund id (S-.., P-.., R-..)."),
    ],
    output_format: FormatOption = OutputFormat.table,
) -> None:
    """Every event of a session, payment or refund and of its relatives, in ledger order."""
    from audit.scan import LedgerUnavailable
    from audit.trail import TRAIL_COLUMNS, UnknownTrailId, sharded_trail

    root = current_root()
    try:
        shard, found = sharded_trail(root.ledger_scans(), upstream_id)
    except UnknownTrailId as error:
        raise _fail(str(error), 1) from None
    except LedgerUnavailable as error:
        raise _fail(str(error), 2) from None
    title = f"Audit trail of {' / '.join(found.kinds)} {upstream_id}"
    if root.ledger.shards > 1:
        title += f" (shard {shard})"
    rows = [entry.row() for entry in found.entries]
    if output_format is OutputFormat.table:
        _trail_table(rows, title)
    else:
        render(rows, TRAIL_COLUMNS, output_format, title=title)


def _trail_table(rows: list[dict[str, Any]], title: str) -> None:
    """A terminal table that keeps ids and times on one line and wraps only the details."""
    from rich.console import Console
    from rich.table import Table

    from audit.trail import TRAIL_COLUMNS
    from cli.safe_text import plain

    table = Table(title=plain(title))
    shown = [
        c for c in TRAIL_COLUMNS if c != "offset" or any(r["offset"] is not None for r in rows)
    ]
    for column in shown:
        table.add_column(column, no_wrap=column != "details", overflow="fold")
    for row in rows:
        table.add_row(*(plain(_cell(column, row[column])) for column in shown))
    Console().print(table)


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if column in ("recorded_at", "occurred_at"):
        # To the second: the full value is in --format json/csv.
        return str(value)[:19].replace("T", " ")
    return str(value)


@app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="A new or empty directory to write.")],
    file_format: Annotated[
        FileFormat, typer.Option("--format", "-f", help="Parquet or JSON Lines files.")
    ] = FileFormat.parquet,
) -> None:
    """Write the ledger, one row per record with its hashes, and a manifest, to --out (a
    sharded ledger: one such export per shard, in --out/shard-<p>)."""
    from audit.export import ExportError, ExportFormat, export_ledger
    from audit.scan import LedgerUnavailable
    from audit.shard_exports import export_shards
    from store.signing import LedgerSigner, SigningKeyError

    root = current_root()
    key_file = root.settings.signing_key_file
    chosen = ExportFormat(file_format.value)
    try:
        signer = LedgerSigner.from_file(key_file) if key_file is not None else None
        if root.ledger.shards > 1:
            scans = root.ledger_scans()
            with _progress("exporting shards", lambda: None) as advance:
                manifests = export_shards(scans, out, chosen, advance, signer)
            places = [out / f"shard-{shard}" for shard in range(len(manifests))]
        else:
            scan = root.ledger_scan()
            with _progress("exporting ledger", scan.size_hint) as advance:
                manifests = [export_ledger(scan, out, chosen, advance, signer)]
            places = [out]
    except (LedgerUnavailable, ExportError, SigningKeyError) as error:
        raise _fail(str(error), 2) from None
    for manifest, place in zip(manifests, places, strict=True):
        signed = (
            f"signed by key {manifest.manifest_key_id}"
            if manifest.manifest_key_id
            else "NOT signed (set EVLEDGER_SIGNING_KEY_FILE to sign it)"
        )
        shard = "" if manifest.shard is None else f"shard {manifest.shard}: "
        typer.echo(
            f"{shard}exported {manifest.count} records to {place / manifest.file} "
            f"(last hash {manifest.last_hash or '-'}); manifest: {place / 'manifest.json'}, "
            f"{signed}"
        )


@app.command()
def keygen(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the new key pair (a new one per key).")
    ],
) -> None:
    """Make an Ed25519 key pair: the writer signs with the private key
    (EVLEDGER_SIGNING_KEY_FILE), auditors verify with the public one (--public-key)."""
    from store.signing import SigningKeyError, generate_key

    try:
        key = generate_key(out)
    except (SigningKeyError, OSError) as error:
        raise _fail(str(error), 2) from None
    typer.echo(
        f"key {key.key_id}: private key {key.private_path} (set EVLEDGER_SIGNING_KEY_FILE "
        f"to it; keep it secret), public key {key.public_path} (give it to auditors: "
        "evledger audit verify --public-key)"
    )


@app.command("import")
def import_command(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="An export directory.")],
) -> None:
    """Load a verified export into the embedded SQLite ledger, keeping its ids and chain."""
    from audit.export import ExportError
    from audit.ledger_import import ImportRefused, import_export
    from audit.scan import LedgerUnavailable
    from audit.sqlite_scan import LedgerNotEmpty
    from bootstrap.ledgers import NotEmbedded

    ledger = current_root().ledger
    try:
        with _progress("verifying export", lambda: None) as advance:
            result = import_export(directory, ledger.import_target, advance)
    except (ImportRefused, NotEmbedded, LedgerNotEmpty, ExportError, LedgerUnavailable) as error:
        refused = isinstance(error, ImportRefused | NotEmbedded)
        raise _fail(str(error), 1 if refused else 2) from None
    typer.echo(
        f"imported {result.records} records into {result.ledger_path} "
        f"(last notification id {result.last_notification_id}, last hash {result.last_hash})"
    )
