"""The embedded default's SQLite ledger scan against the LedgerScan contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from audit.scan import LedgerScan
from audit.sqlite_scan import SqliteLedgerScan
from bootstrap.settings import Settings
from tests.integration.audit.scan_contract import LedgerScanTestCase


class TestSqliteLedgerScan(LedgerScanTestCase):
    chain_origin = "none"  # the library's SQLite store keeps no hashes

    def ledger_settings(self, request: pytest.FixtureRequest, data_dir: Path) -> Settings:
        return Settings(data_dir=data_dir)

    def scan(self, settings: Settings) -> LedgerScan:
        return SqliteLedgerScan(settings.data_dir / "ledger.sqlite3")

    def place(self, settings: Settings) -> str:
        return str(settings.data_dir / "ledger.sqlite3")

    def missing_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        return SqliteLedgerScan(tmp_path / "no-ledger-here.sqlite3")

    def empty_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        path = tmp_path / "empty.sqlite3"
        path.touch()
        return SqliteLedgerScan(path)
