"""Turn the project's Settings into the eventsourcing application's environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli.settings import Settings

KAFKA_FACTORY = "store.factory:KafkaFactory"
SQLITE_MODULE = "eventsourcing.sqlite"


def ledger_environment(settings: Settings) -> dict[str, str]:
    """PERSISTENCE_MODULE and its keys: the Kafka ledger, or SQLite in the data dir.

    Creates the data dir, because SQLite will not create the directory of its file.
    """
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    if settings.kafka_bootstrap is None:
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": str(data_dir / "ledger.sqlite3"),
            # Several threads (ingest, projectors) share the file: wait rather than fail.
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    return {
        "PERSISTENCE_MODULE": KAFKA_FACTORY,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap,
        "KAFKA_LEDGER_TOPIC": settings.ledger_topic,
        "KAFKA_INDEX_DIR": str(data_dir / "index"),
        "KAFKA_REPLICATION_FACTOR": str(settings.kafka_replication_factor),
        "KAFKA_MIN_INSYNC_REPLICAS": str(settings.kafka_min_insync_replicas),
        "KAFKA_TIMEOUT": str(settings.kafka_timeout_s),
    }
