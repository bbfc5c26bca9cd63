"""The infrastructure factory chosen by PERSISTENCE_MODULE=store.factory:KafkaFactory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    EventStore,
    InfrastructureFactory,
    Mapper,
    NotSupportedError,
    ProcessRecorder,
    TrackingRecorder,
    Transcoder,
)
from eventsourcing.utils import Environment, EnvType, strtobool

from store.fast_events import FastEventStore, FastMapper
from store.fast_json import FastJSONTranscoder
from store.index import DEFAULT_CACHE_KIB
from store.kafka_clients import KafkaConnection, KafkaSecurityError, connection_from
from store.ledger import Ledger, LedgerConfig, acquire_ledger, release_ledger
from store.recorders import KafkaAggregateRecorder, KafkaApplicationRecorder
from store.signing import LedgerSigner, SigningKeyError
from store.writer import DEFAULT_MAX_EVENTS_PER_TRANSACTION, DEFAULT_TIMEOUT_S
from store.writer_process import usable_cores


class KafkaFactory(InfrastructureFactory[TrackingRecorder]):
    """Recorders on a Kafka ledger topic, configured from the application's environment.

    Like the library's own factories, each key may be prefixed by the application's name
    (e.g. BILLING_KAFKA_LEDGER_TOPIC).
    """

    KAFKA_BOOTSTRAP_SERVERS = "KAFKA_BOOTSTRAP_SERVERS"
    KAFKA_LEDGER_TOPIC = "KAFKA_LEDGER_TOPIC"
    KAFKA_SNAPSHOTS_TOPIC = "KAFKA_SNAPSHOTS_TOPIC"
    KAFKA_TRANSACTIONAL_ID = "KAFKA_TRANSACTIONAL_ID"
    KAFKA_INDEX_DIR = "KAFKA_INDEX_DIR"
    KAFKA_REPLICATION_FACTOR = "KAFKA_REPLICATION_FACTOR"
    KAFKA_MIN_INSYNC_REPLICAS = "KAFKA_MIN_INSYNC_REPLICAS"
    KAFKA_CACHE_RECORDS = "KAFKA_CACHE_RECORDS"
    KAFKA_INDEX_CACHE_KIB = "KAFKA_INDEX_CACHE_KIB"
    KAFKA_TIMEOUT = "KAFKA_TIMEOUT"
    KAFKA_MAX_EVENTS_PER_TRANSACTION = "KAFKA_MAX_EVENTS_PER_TRANSACTION"
    # An Ed25519 private key (PEM): the writer signs every ledger record with it.
    KAFKA_SIGNING_KEY_FILE = "KAFKA_SIGNING_KEY_FILE"
    # The library's own key for "create storage if missing" (here: the topics).
    CREATE_TABLE = "CREATE_TABLE"
    ORIGINATOR_ID_TYPE = "ORIGINATOR_ID_TYPE"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        bootstrap = self.env.get(self.KAFKA_BOOTSTRAP_SERVERS)
        if not bootstrap:
            msg = (
                "Kafka bootstrap servers not set in environment with key "
                f"{self.KAFKA_BOOTSTRAP_SERVERS!r}"
            )
            raise OSError(msg)
        try:
            # TLS and SASL settings (store.kafka_clients.ENV_KEYS) go to every client.
            self.connection: KafkaConnection = connection_from(self.env, bootstrap)
        except KafkaSecurityError as error:
            raise OSError(f"Kafka security settings: {error}") from None
        topic = self.env.get(self.KAFKA_LEDGER_TOPIC)
        if not topic:
            msg = f"Ledger topic not set in environment with key {self.KAFKA_LEDGER_TOPIC!r}"
            raise OSError(msg)
        self.ledger_topic = topic
        self.snapshots_topic = self.env.get(self.KAFKA_SNAPSHOTS_TOPIC) or f"{topic}.snapshots"
        self.transactional_id = self.env.get(self.KAFKA_TRANSACTIONAL_ID) or f"{topic}.writer"
        index_dir = self.env.get(self.KAFKA_INDEX_DIR)
        self.index_dir = Path(index_dir) if index_dir else None
        self.replication_factor = self._int(self.KAFKA_REPLICATION_FACTOR, 1)
        self.min_insync_replicas = self._int(self.KAFKA_MIN_INSYNC_REPLICAS, 1)
        self.cache_records = self._int(self.KAFKA_CACHE_RECORDS, 20_000)
        self.index_cache_kib = self._int(self.KAFKA_INDEX_CACHE_KIB, DEFAULT_CACHE_KIB)
        self.timeout_s = float(self.env.get(self.KAFKA_TIMEOUT) or DEFAULT_TIMEOUT_S)
        self.max_events_per_transaction = self._int(
            self.KAFKA_MAX_EVENTS_PER_TRANSACTION, DEFAULT_MAX_EVENTS_PER_TRANSACTION
        )
        id_type = self.env.get(self.ORIGINATOR_ID_TYPE, "uuid").lower()
        if id_type not in ("uuid", "text"):
            msg = f"{self.ORIGINATOR_ID_TYPE} must be 'uuid' or 'text', got {id_type!r}"
            raise OSError(msg)
        self.uuid_ids = id_type == "uuid"
        key_file = self.env.get(self.KAFKA_SIGNING_KEY_FILE)
        try:
            self.signer = LedgerSigner.from_file(Path(key_file)) if key_file else None
        except SigningKeyError as error:
            raise OSError(f"{self.KAFKA_SIGNING_KEY_FILE}: {error}") from None
        self._ledgers: list[Ledger] = []

    def transcoder(self) -> Transcoder:
        # The library's JSON, encoded by orjson (store/fast_json.py: the same bytes).
        if self.env.get(self.TRANSCODER_TOPIC):
            return super().transcoder()
        return FastJSONTranscoder()

    def mapper(
        self,
        transcoder: Transcoder | None = None,
        mapper_class: type[Mapper[Any]] | None = None,
    ) -> Mapper[Any]:
        # The library's mapper, its per-event steps made cheaper (store/fast_events.py).
        if mapper_class is None and not self.env.get(self.MAPPER_TOPIC):
            mapper_class = FastMapper
        return super().mapper(transcoder, mapper_class)

    def event_store(
        self, mapper: Mapper[Any] | None = None, recorder: AggregateRecorder | None = None
    ) -> EventStore[Any]:
        return FastEventStore(
            mapper=mapper or self.mapper(), recorder=recorder or self.application_recorder()
        )

    def _int(self, key: str, default: int) -> int:
        value = self.env.get(key)
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            msg = f"{key} must be an integer, got {value!r}"
            raise OSError(msg) from None

    def _ledger(self, topic: str, transactional_id: str, contiguous_versions: bool) -> Ledger:
        config = LedgerConfig(
            connection=self.connection,
            topic=topic,
            transactional_id=transactional_id,
            index_dir=self.index_dir,
            contiguous_versions=contiguous_versions,
            create_topic=strtobool(self.env.get(self.CREATE_TABLE) or "yes"),
            replication_factor=self.replication_factor,
            min_insync_replicas=self.min_insync_replicas,
            cache_records=self.cache_records,
            index_cache_kib=self.index_cache_kib,
            timeout_s=self.timeout_s,
            max_events_per_transaction=self.max_events_per_transaction,
            # Only the ledger's events are signed: snapshots are a cache, not the record.
            signer=self.signer if topic == self.ledger_topic else None,
            # The ledger's writer on a core of its own where there is a second one (the
            # rarely written snapshots keep a thread).
            writer_process=topic == self.ledger_topic and usable_cores() > 1,
        )
        ledger = acquire_ledger(config)
        self._ledgers.append(ledger)
        return ledger

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose == "events":
            ledger = self._ledger(self.ledger_topic, self.transactional_id, True)
        else:
            # Snapshots are not ledger events: their own topic and writer, and versions
            # that only need to rise (a snapshot every N events leaves gaps).
            topic = (
                self.snapshots_topic if purpose == "snapshots" else f"{self.ledger_topic}.{purpose}"
            )
            ledger = self._ledger(topic, f"{self.transactional_id}.{purpose}", False)
        return KafkaAggregateRecorder(ledger, uuid_ids=self.uuid_ids)

    def application_recorder(self) -> ApplicationRecorder:
        ledger = self._ledger(self.ledger_topic, self.transactional_id, True)
        return KafkaApplicationRecorder(ledger, uuid_ids=self.uuid_ids)

    def tracking_recorder(
        self, tracking_recorder_class: type[TrackingRecorder] | None = None
    ) -> TrackingRecorder:
        # Tracking belongs with each projection's own writes (Guarantee 6), in its
        # database, not in the ledger.
        msg = "the Kafka ledger keeps no tracking records; track in the projection's database"
        raise NotSupportedError(msg)

    def process_recorder(self) -> ProcessRecorder:
        msg = "the Kafka ledger has no process recorder; track in the projection's database"
        raise NotSupportedError(msg)

    def close(self) -> None:
        ledgers, self._ledgers = self._ledgers, []
        for ledger in ledgers:
            release_ledger(ledger)
