"""A sharded Kafka ledger (EVLEDGER_LEDGER_SHARDS): each shard is a ledger of its own, with
its own fenced writer, ids from 1, hash chain and index; the ingest topic gets one
partition per shard, and an existing ingest topic of another count is refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.ledgers import KafkaSite, LedgerBackend
from bootstrap.settings import Settings
from store.admin import TopicMisconfigured
from store.index import index_file
from store.kafka_clients import KafkaConnection
from store.ledger import Ledger, LedgerConfig
from store.writer import WriterFenced
from tests.integration.store.conftest import assert_chain, delete_topics, events_for, read_topic
from tests.integration.store.test_ledger import Wallets

pytestmark = pytest.mark.kafka

SHARDS = 3


@pytest.fixture
def sharded(kafka_bootstrap: str, topic_name: str, tmp_path: Path) -> Iterator[LedgerBackend]:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=topic_name,
        data_dir=tmp_path,
        ledger_shards=SHARDS,
    )
    backend = bootstrap(settings).ledger
    site = backend.kafka("test")
    yield backend
    delete_topics(
        kafka_bootstrap,
        [
            *site.ledger_topics,
            *(f"{topic}.snapshots" for topic in site.ledger_topics),
            site.ingest_topic,
        ],
    )


def test_each_shard_numbers_and_chains_its_own_events(
    sharded: LedgerBackend, kafka_bootstrap: str, tmp_path: Path
) -> None:
    site = sharded.kafka("test")
    for shard in range(SHARDS):
        app = Wallets(env=sharded.shard(shard).environment())
        try:
            # Shard p gets p + 1 wallets of two events each.
            for owner in range(shard + 1):
                app.credit(app.open(f"owner-{owner}"), 5)
            assert app.recorder.max_notification_id() == 2 * (shard + 1)
        finally:
            app.close()
    for shard, topic in enumerate(site.ledger_topics):
        records = assert_chain(read_topic(kafka_bootstrap, topic))
        assert len(records) == 2 * (shard + 1)
        assert index_file(tmp_path / "index", topic).path.is_file()


def test_a_shard_writer_fences_only_its_own_shard(
    sharded: LedgerBackend, kafka_bootstrap: str, tmp_path: Path
) -> None:
    site = sharded.kafka("test")

    def ledger(shard: int, name: str) -> Ledger:
        topic = site.shard_topic(shard)
        return Ledger(
            LedgerConfig(
                connection=KafkaConnection(kafka_bootstrap),
                topic=topic,
                # The transactional id the store gives a shard's writer (store/factory.py).
                transactional_id=f"{topic}.writer",
                index_dir=tmp_path / name,
                timeout_s=15.0,
            )
        )

    old, other, new = ledger(2, "old"), ledger(1, "other"), ledger(2, "new")
    try:
        assert old.insert(events_for(uuid.uuid4(), range(1, 3))) == [1, 2]
        assert other.insert(events_for(uuid.uuid4(), range(1, 2))) == [1]
        # A new writer of shard 2 (a moved shard's new owner) fences shard 2's old one ...
        assert new.insert(events_for(uuid.uuid4(), range(1, 2))) == [3]
        with pytest.raises(WriterFenced):
            old.insert(events_for(uuid.uuid4(), range(1, 2)))
        # ... and no other shard's.
        assert other.insert(events_for(uuid.uuid4(), range(1, 2))) == [2]
    finally:
        for each in (old, other, new):
            each.close()
    assert len(assert_chain(read_topic(kafka_bootstrap, site.shard_topic(2)))) == 3


def test_the_ingest_topic_has_one_partition_per_shard(
    sharded: LedgerBackend, kafka_bootstrap: str
) -> None:
    site = sharded.kafka("test")
    site.ensure_topics(site.ingest_topic, *site.ledger_topics)
    consumer = KafkaConnection(kafka_bootstrap).consumer()
    try:
        assert consumer.partitions_for_topic(site.ingest_topic) == set(range(SHARDS))
        for topic in site.ledger_topics:
            assert consumer.partitions_for_topic(topic) == {0}
    finally:
        consumer.close()
    # The same topics with another shard count: refused, naming why.
    fewer = KafkaSite(
        bootstrap_servers=site.bootstrap_servers,
        topic_prefix=site.topic_prefix,
        replication_factor=1,
        min_insync_replicas=1,
        security=site.security,
        ledger_shards=2,
    )
    with pytest.raises(TopicMisconfigured, match="shard count of an existing ledger"):
        fewer.ensure_topics(fewer.ingest_topic)
