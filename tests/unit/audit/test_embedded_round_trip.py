"""Export -> import -> verify on the embedded SQLite default, on a generated day of traffic."""

from __future__ import annotations

import base64
import json
import sqlite3
from pathlib import Path

import duckdb
import pytest

from audit.export import ExportFormat, ExportManifest, export_ledger, verify_export
from audit.ledger_import import DamagedExport, import_export
from audit.sqlite_scan import LedgerNotEmpty
from audit.trail import audit_trail
from audit.verify import Check, verify_records
from bootstrap import bootstrap
from bootstrap.ledgers import NotEmbedded
from bootstrap.settings import Settings
from tests.unit.audit.conftest import refunded_payment


def export(settings: Settings, out: Path, file_format: ExportFormat) -> ExportManifest:
    return export_ledger(bootstrap(settings).ledger_scan(), out, file_format)


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_lines(path: Path, rows: list[dict[str, object]]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_the_embedded_ledger_verifies_without_a_chain(embedded: Settings) -> None:
    scan = bootstrap(embedded).ledger_scan()
    report = verify_records(scan.records(), scan.description)
    assert report.ok, report.findings
    assert report.summary.records > 1000
    assert report.summary.chained_records == 0
    assert report.summary.refunds_issued > 0


@pytest.mark.parametrize("file_format", list(ExportFormat))
def test_export_import_verify_round_trip(
    embedded: Settings, tmp_path: Path, file_format: ExportFormat
) -> None:
    out = tmp_path / "export"
    manifest = export(embedded, out, file_format)
    assert sorted(p.name for p in out.iterdir()) == sorted(["manifest.json", manifest.file])
    assert manifest.chain_computed_records == manifest.count

    report = verify_export(out)
    assert report.ok, report.findings
    assert report.summary.records == report.summary.chained_records == manifest.count
    assert report.summary.last_hash is not None
    assert report.summary.last_hash.hex() == manifest.last_hash

    # An auditor anywhere: a fresh DuckDB connection and the file alone.
    reader = "read_parquet" if file_format is ExportFormat.parquet else "read_json_auto"
    connection = duckdb.connect()
    count, last_hash, ids = connection.execute(
        f"SELECT COUNT(*), LAST(hash ORDER BY notification_id), "
        f"COUNT(DISTINCT notification_id) FROM {reader}(?)",
        [str(out / manifest.file)],
    ).fetchone()  # type: ignore[misc]
    connection.close()
    assert (count, last_hash, ids) == (manifest.count, manifest.last_hash, manifest.count)

    imported = Settings(data_dir=tmp_path / "imported")
    result = import_export(out, bootstrap(imported).ledger.import_target)
    assert result.records == manifest.count
    scan = bootstrap(imported).ledger_scan()
    after = verify_records(scan.records(), scan.description)
    assert after.ok, after.findings
    assert after.summary.chained_records == manifest.count
    assert after.summary.last_hash == report.summary.last_hash


def test_trail_works_offline_after_import(
    embedded: Settings, tmp_path: Path, traffic: list[dict[str, object]]
) -> None:
    payment_id, refund_id = refunded_payment(traffic)
    export(embedded, tmp_path / "export", ExportFormat.jsonl)
    imported = Settings(data_dir=tmp_path / "imported")
    import_export(tmp_path / "export", bootstrap(imported).ledger.import_target)

    original = audit_trail(bootstrap(embedded).ledger_scan(), payment_id)
    offline = audit_trail(bootstrap(imported).ledger_scan(), payment_id)
    assert [e.row() for e in offline.entries] == [e.row() for e in original.entries]
    events = [entry.event for entry in offline.entries]
    assert events.index("ChargingSession.Started") < events.index("Payment.Captured")
    assert events.index("Payment.Captured") < events.index("Refund.Requested")
    assert events.index("Refund.Requested") < events.index("Refund.Issued")
    assert refund_id in offline.refunds
    ids = [entry.notification_id or 0 for entry in offline.entries]
    assert ids == sorted(ids)


def test_projections_run_offline_on_an_imported_ledger(embedded: Settings, tmp_path: Path) -> None:

    manifest = export(embedded, tmp_path / "export", ExportFormat.jsonl)
    imported = Settings(data_dir=tmp_path / "imported")
    import_export(tmp_path / "export", bootstrap(imported).ledger.import_target)
    with bootstrap(imported).projector() as runner:
        progress = runner.run_until_idle()
    assert {p.position for p in progress.values()} == {manifest.last_notification_id}


def test_an_edited_export_row_is_found_at_its_row(embedded: Settings, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(embedded, out, ExportFormat.jsonl)
    rows = read_lines(out / "ledger.jsonl")
    target = next(i for i, row in enumerate(rows) if "captured_minor" in str(row["state_json"]))
    edited = str(rows[target]["state_json"]).replace('"captured_minor":', '"captured_minor":1')
    rows[target]["state_json"] = edited
    rows[target]["state_base64"] = base64.b64encode(edited.encode()).decode()
    write_lines(out / "ledger.jsonl", rows)
    report = verify_export(out)
    assert report.first is not None
    assert (report.first.check, report.first.notification_id) == (Check.CHAIN, target + 1)
    assert report.first.position == target + 1


def test_a_deleted_export_row_is_found(embedded: Settings, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(embedded, out, ExportFormat.jsonl)
    rows = read_lines(out / "ledger.jsonl")
    write_lines(out / "ledger.jsonl", rows[:40] + rows[41:])
    report = verify_export(out)
    assert report.first is not None
    assert (report.first.check, report.first.notification_id) == (Check.CHAIN, 42)


def test_an_edited_json_column_alone_is_found(embedded: Settings, tmp_path: Path) -> None:
    out = tmp_path / "export"
    export(embedded, out, ExportFormat.jsonl)
    rows = read_lines(out / "ledger.jsonl")
    rows[7]["state_json"] = str(rows[7]["state_json"]).replace("{", '{"x":1,', 1)
    write_lines(out / "ledger.jsonl", rows)
    report = verify_export(out)
    assert report.first is not None
    assert (report.first.check, report.first.notification_id) == (Check.RECORD, 8)


def test_a_manifest_that_disagrees_with_the_rows_is_found(
    embedded: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export(embedded, out, ExportFormat.parquet)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["count"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    report = verify_export(out)
    assert [f.check for f in report.findings] == [Check.EXPORT]


def test_an_imported_ledger_edited_in_sqlite_fails_against_the_exports_chain(
    embedded: Settings, tmp_path: Path
) -> None:
    export(embedded, tmp_path / "export", ExportFormat.jsonl)
    imported = Settings(data_dir=tmp_path / "imported")
    import_export(tmp_path / "export", bootstrap(imported).ledger.import_target)
    with sqlite3.connect(imported.data_dir / "ledger.sqlite3") as db:
        db.execute("UPDATE stored_events SET state = CAST('{}' AS BLOB) WHERE rowid = 25")
    scan = bootstrap(imported).ledger_scan()
    report = verify_records(scan.records(), scan.description)
    assert report.first is not None
    assert (report.first.check, report.first.notification_id) == (Check.CHAIN, 25)


def test_import_refuses_a_damaged_export_and_a_full_ledger(
    embedded: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    export(embedded, out, ExportFormat.jsonl)
    with pytest.raises(LedgerNotEmpty):
        import_export(out, bootstrap(embedded).ledger.import_target)
    kafka = bootstrap(Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path / "k"))
    with pytest.raises(NotEmbedded, match="EVLEDGER_KAFKA_BOOTSTRAP"):
        import_export(out, kafka.ledger.import_target)
    rows = read_lines(out / "ledger.jsonl")
    write_lines(out / "ledger.jsonl", rows[1:])
    imported = Settings(data_dir=tmp_path / "imported")
    with pytest.raises(DamagedExport, match="genesis"):
        import_export(out, bootstrap(imported).ledger.import_target)
    assert not (imported.data_dir / "ledger.sqlite3").exists()


def test_export_refuses_a_directory_that_is_not_empty(embedded: Settings, tmp_path: Path) -> None:
    from audit.export import ExportError

    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "notes.txt").write_text("mine")
    with pytest.raises(ExportError, match="not empty"):
        export(embedded, tmp_path / "export", ExportFormat.jsonl)
