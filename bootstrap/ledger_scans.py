"""Which ledger the settings point at, as a scan of raw records: the Kafka topic or SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from audit.kafka_scan import KafkaLedgerScan
from audit.scan import LedgerScan
from audit.sqlite_scan import SqliteLedgerScan
from bootstrap.ledger_environment import ledger_environment

if TYPE_CHECKING:
    from bootstrap.settings import Settings


def embedded_ledger_path(settings: Settings) -> Path:
    """The embedded default's SQLite ledger file (where the application keeps it)."""
    return Path(ledger_environment(settings)["SQLITE_DBNAME"])


def ledger_scan(settings: Settings) -> LedgerScan:
    """The configured ledger, read raw: Kafka when a bootstrap is set, else the SQLite file."""
    if settings.kafka_bootstrap is not None:
        return KafkaLedgerScan(settings.kafka_bootstrap, settings.ledger_topic)
    return SqliteLedgerScan(embedded_ledger_path(settings))
