"""Load a verified export into the embedded default's SQLite ledger, for offline audits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from audit.export import ExportScan, verify_export
from audit.scan import ScannedRecord
from audit.sqlite_scan import load_records
from audit.verify import Finding


class ImportRefused(RuntimeError):
    """The export cannot be imported here; the reason says what to change."""


class DamagedExport(ImportRefused):
    """The export fails verification: importing it would launder the damage."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(f"the export fails verification, nothing imported: {finding}")
        self.finding = finding


@dataclass(frozen=True)
class ImportResult:
    ledger_path: Path
    records: int
    last_notification_id: int | None
    last_hash: str | None


def import_export(
    directory: Path,
    prepare_ledger: Callable[[], Path],
    on_record: Callable[[ScannedRecord], None] | None = None,
) -> ImportResult:
    """Verify the export, then write its records with their ids and chain into the SQLite
    ledger that ``prepare_ledger`` makes ready (tables created) and names."""
    report = verify_export(directory, on_record)
    if report.first is not None:
        raise DamagedExport(report.first)
    ledger_path = prepare_ledger()
    written = load_records(ledger_path, ExportScan(directory).records())
    manifest = ExportScan(directory).manifest
    return ImportResult(ledger_path, written, manifest.last_notification_id, manifest.last_hash)
