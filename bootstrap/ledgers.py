"""The two places a ledger can be: the embedded default's SQLite file, or a Kafka topic.

Everything that differs between them lives here, behind one small port: the eventsourcing
library's environment (built only from the validated settings), the raw scan auditors
read, how ledger offsets map to notification ids, and what ingest from a topic needs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from audit.ledger_head import LedgerHead
    from audit.scan import LedgerScan
    from bootstrap.settings import Settings
    from domain.application import BillingApplication
    from projections.runner import LedgerSource
    from replay.positions import LedgerPositions
    from store.kafka_clients import KafkaConnection, KafkaSecurity
    from store.recorders import KafkaApplicationRecorder

KAFKA_FACTORY = "store.factory:KafkaFactory"
SQLITE_MODULE = "eventsourcing.sqlite"
EMBEDDED_LEDGER_FILE = "ledger.sqlite3"


class NeedsKafka(RuntimeError):
    """A command that reads or writes Kafka topics ran on the embedded default."""


class WholeLedgerOnly(RuntimeError):
    """A command that reads the ledger as one log (one id sequence) ran on a sharded one."""


class NotEmbedded(RuntimeError):
    """A command that loads the embedded ledger file ran with Kafka configured."""


@dataclass(frozen=True)
class KafkaSite:
    """Where evledger's topics are, and how the topics it creates are made."""

    bootstrap_servers: str
    topic_prefix: str
    replication_factor: int
    min_insync_replicas: int
    # TLS and SASL for every client: each one is built from ``connection``, nothing else.
    security: KafkaSecurity
    # How long clients wait on Kafka before calling it unavailable (longer than an election).
    timeout_s: float = 30.0
    # Ledger shards: shard p is its own ledger topic and ingest partition p.
    ledger_shards: int = 1

    @property
    def connection(self) -> KafkaConnection:
        """What every Kafka client of evledger is built from (store/kafka_clients.py)."""
        from store.kafka_clients import KafkaConnection

        return KafkaConnection(self.bootstrap_servers, self.security)

    @property
    def ledger_topic(self) -> str:
        """Shard 0's ledger topic: the ledger's only topic when there is one shard."""
        return f"{self.topic_prefix}.ledger"

    def shard_topic(self, shard: int) -> str:
        """Shard ``shard``'s ledger topic; shard 0 keeps the unsharded ledger's name, so a
        ledger from before shards is shard 0 of one."""
        if not 0 <= shard < self.ledger_shards:
            raise ValueError(f"no shard {shard}: the ledger has {self.ledger_shards} shard(s)")
        return self.ledger_topic if shard == 0 else f"{self.ledger_topic}.{shard}"

    @property
    def ledger_topics(self) -> list[str]:
        """Every shard's ledger topic, shard 0 first."""
        return [self.shard_topic(shard) for shard in range(self.ledger_shards)]

    @property
    def ingest_topic(self) -> str:
        return f"{self.topic_prefix}.ingest"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}.ingest.dlq"

    @property
    def ingest_group(self) -> str:
        return f"{self.topic_prefix}.ingest"

    def ensure_topics(self, *names: str) -> None:
        """Create the topics if missing, immutable, with the configured replication."""
        from store.admin import TopicSpec, ensure_topic

        for name in names:
            ensure_topic(
                self.connection,
                TopicSpec(
                    name=name,
                    replication_factor=self.replication_factor,
                    min_insync_replicas=self.min_insync_replicas,
                    # Ingest partition p feeds shard p.
                    partitions=self.ledger_shards if name == self.ingest_topic else 1,
                ),
            )


class LedgerBackend(ABC):
    """Where the ledger is kept, and what that changes for the rest of evledger."""

    description: str

    @property
    @abstractmethod
    def shards(self) -> int:
        """How many shards the ledger has (1: the unsharded ledger)."""

    @abstractmethod
    def shard(self, shard: int) -> LedgerBackend:
        """The backend of one shard: everything below then concerns that shard alone."""

    @abstractmethod
    def environment(self) -> dict[str, str]:
        """The eventsourcing library's environment: PERSISTENCE_MODULE and its keys."""

    @abstractmethod
    def scan(self) -> LedgerScan:
        """The ledger read raw, record by record, for audits and exports."""

    @abstractmethod
    def head(self) -> LedgerHead:
        """Where the ledger ends, for a long-lived process that asks often."""

    @abstractmethod
    def positions(self, source: LedgerSource) -> LedgerPositions:
        """Ledger offsets (as audit and trail print them) <-> notification ids."""

    @abstractmethod
    def kafka(self, needed_for: str) -> KafkaSite:
        """The Kafka site, or NeedsKafka saying what ``needed_for`` cannot do without it."""

    @abstractmethod
    def kafka_writer(self, application: BillingApplication) -> KafkaApplicationRecorder:
        """The application's Kafka ledger recorder (NeedsKafka on the embedded default): a
        consumer that commits offsets in its writer's transactions starts the writer
        (``start_writing``) before it joins its group."""

    @abstractmethod
    def import_target(self) -> Path:
        """The embedded ledger file an export is loaded into (its tables created), or
        NotEmbedded."""


class EmbeddedLedger(LedgerBackend):
    """The eventsourcing library's SQLite store in the data dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / EMBEDDED_LEDGER_FILE
        self.description = f"embedded default in {data_dir}"

    @property
    def shards(self) -> int:
        return 1

    def shard(self, shard: int) -> LedgerBackend:
        if shard != 0:
            raise ValueError(f"no shard {shard}: the embedded default has one shard")
        return self

    def environment(self) -> dict[str, str]:
        # SQLite will not create the directory of its file.
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return {
            "PERSISTENCE_MODULE": SQLITE_MODULE,
            "SQLITE_DBNAME": str(self.path),
            # Several threads (ingest, projectors) share the file: wait rather than fail.
            "SQLITE_LOCK_TIMEOUT": "10",
        }

    def scan(self) -> LedgerScan:
        from audit.sqlite_scan import SqliteLedgerScan

        return SqliteLedgerScan(self.path)

    def head(self) -> LedgerHead:
        from audit.ledger_head import SqliteLedgerHead

        return SqliteLedgerHead(self.path)

    def positions(self, source: LedgerSource) -> LedgerPositions:
        from replay.positions import NotificationPositions

        return NotificationPositions(source)

    def kafka(self, needed_for: str) -> KafkaSite:
        raise NeedsKafka(
            f"{needed_for} needs Kafka: set EVLEDGER_KAFKA_BOOTSTRAP "
            "(on the embedded default, use `evledger ingest --file FILE.jsonl`)"
        )

    def kafka_writer(self, application: BillingApplication) -> KafkaApplicationRecorder:
        raise NeedsKafka("ingest from a topic needs Kafka: set EVLEDGER_KAFKA_BOOTSTRAP")

    def import_target(self) -> Path:
        # The library creates its own tables, so the imported ledger is one it will open.
        from domain.application import BillingApplication

        BillingApplication(env=self.environment()).close()
        return self.path


class KafkaLedger(LedgerBackend):
    """The ledger topic, written by evledger's fenced transactional writer (store/)."""

    def __init__(
        self,
        site: KafkaSite,
        index_dir: Path,
        signing_key_file: Path | None = None,
        record_cache_size: int | None = None,
        shard_number: int = 0,
        *,
        index_cache_mib: int | None = None,
    ) -> None:
        self.site = site
        self.index_dir = index_dir
        self.signing_key_file = signing_key_file
        self.record_cache_size = record_cache_size
        self.index_cache_mib = index_cache_mib
        self.shard_number = shard_number
        self.topic = site.shard_topic(shard_number)
        self.description = f"Kafka topic {self.topic} at {site.bootstrap_servers}"

    @property
    def shards(self) -> int:
        return self.site.ledger_shards

    def shard(self, shard: int) -> LedgerBackend:
        if shard == self.shard_number:
            return self
        return KafkaLedger(
            self.site,
            self.index_dir,
            self.signing_key_file,
            self.record_cache_size,
            shard,
            index_cache_mib=self.index_cache_mib,
        )

    def environment(self) -> dict[str, str]:
        self.index_dir.parent.mkdir(parents=True, exist_ok=True)
        environment = {
            "PERSISTENCE_MODULE": KAFKA_FACTORY,
            "KAFKA_BOOTSTRAP_SERVERS": self.site.bootstrap_servers,
            "KAFKA_LEDGER_TOPIC": self.topic,
            "KAFKA_INDEX_DIR": str(self.index_dir),
            "KAFKA_REPLICATION_FACTOR": str(self.site.replication_factor),
            "KAFKA_MIN_INSYNC_REPLICAS": str(self.site.min_insync_replicas),
            "KAFKA_TIMEOUT": str(self.site.timeout_s),
            **self.site.security.environment(),
        }
        if self.signing_key_file is not None:
            environment["KAFKA_SIGNING_KEY_FILE"] = str(self.signing_key_file)
        if self.record_cache_size is not None:
            environment["KAFKA_CACHE_RECORDS"] = str(self.record_cache_size)
        if self.index_cache_mib is not None:
            environment["KAFKA_INDEX_CACHE_KIB"] = str(self.index_cache_mib * 1024)
        return environment

    def scan(self) -> LedgerScan:
        from audit.kafka_scan import KafkaLedgerScan

        return KafkaLedgerScan(self.site.connection, self.topic)

    def head(self) -> LedgerHead:
        from audit.ledger_head import KafkaLedgerHead

        return KafkaLedgerHead(self.site.connection, self.topic)

    def positions(self, source: LedgerSource) -> LedgerPositions:
        from replay.positions import KafkaOffsetPositions
        from store.recorders import KafkaApplicationRecorder

        # The root built this application on the Kafka store, so its recorder is Kafka's.
        return KafkaOffsetPositions(cast(KafkaApplicationRecorder, source.recorder).ledger)

    def kafka(self, needed_for: str) -> KafkaSite:
        return self.site

    def kafka_writer(self, application: BillingApplication) -> KafkaApplicationRecorder:
        from store.recorders import KafkaApplicationRecorder

        # The root built this application on the Kafka store, so its recorder is Kafka's.
        return cast(KafkaApplicationRecorder, application.recorder)

    def import_target(self) -> Path:
        raise NotEmbedded(
            "import loads an export into the embedded ledger only; unset "
            "EVLEDGER_KAFKA_BOOTSTRAP and point EVLEDGER_DATA_DIR at an empty directory"
        )


def ledger_backend(settings: Settings) -> LedgerBackend:
    """The one place that decides between the embedded default and Kafka."""
    if settings.kafka_bootstrap is None:
        return EmbeddedLedger(settings.data_dir)
    site = KafkaSite(
        bootstrap_servers=settings.kafka_bootstrap,
        topic_prefix=settings.topic_prefix,
        replication_factor=settings.kafka_replication_factor,
        min_insync_replicas=settings.kafka_min_insync_replicas,
        timeout_s=settings.kafka_timeout_s,
        security=settings.kafka_security,
        ledger_shards=settings.ledger_shards,
    )
    return KafkaLedger(
        site,
        settings.data_dir / "index",
        settings.signing_key_file,
        settings.record_cache_size,
        index_cache_mib=settings.index_cache_mib,
    )
