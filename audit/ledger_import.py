"""Load a verified export into the embedded default's SQLite ledger, for offline audits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from audit.export import ExportScan, verify_export
from audit.scan import ScannedRecord
from audit.sqlite_scan import load_records
from audit.verify import Finding
from bootstrap.ledger_scans import embedded_ledger_path

if TYPE_CHECKING:
    from bootstrap.settings import Settings


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
    settings: Settings,
    on_record: Callable[[ScannedRecord], None] | None = None,
) -> ImportResult:
    """Verify the export, then write its records with their ids and chain into SQLite."""
    if settings.kafka_bootstrap is not None:
        raise ImportRefused(
            "import loads an export into the embedded ledger only; unset "
            "EVLEDGER_KAFKA_BOOTSTRAP and point EVLEDGER_DATA_DIR at an empty directory"
        )
    report = verify_export(directory, on_record)
    if report.first is not None:
        raise DamagedExport(report.first)
    path = embedded_ledger_path(settings)
    _create_ledger_tables(settings)
    written = load_records(path, ExportScan(directory).records())
    manifest = ExportScan(directory).manifest
    return ImportResult(path, written, manifest.last_notification_id, manifest.last_hash)


def _create_ledger_tables(settings: Settings) -> None:
    # The library creates its own tables, so the imported ledger is one it will open.
    from bootstrap.ledger_environment import ledger_environment
    from domain.application import BillingApplication

    BillingApplication(env=ledger_environment(settings)).close()
