"""Which ledger the settings point at, as a scan of raw records: the Kafka topic or SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from replay.kafka_scan import KafkaLedgerScan
from replay.scan import LedgerScan
from replay.sqlite_ledger import SqliteLedgerScan
from store.environment import ledger_environment

if TYPE_CHECKING:
    from cli.settings import Settings


def embedded_ledger_path(settings: Settings) -> Path:
    """The embedded default's SQLite ledger file (where the application keeps it)."""
    return Path(ledger_environment(settings)["SQLITE_DBNAME"])


def ledger_scan(settings: Settings) -> LedgerScan:
    """The configured ledger, read raw: Kafka when a bootstrap is set, else the SQLite file."""
    if settings.kafka_bootstrap is not None:
        return KafkaLedgerScan(settings.kafka_bootstrap, settings.ledger_topic)
    return SqliteLedgerScan(embedded_ledger_path(settings))
