"""Helpers for the Kafka store tests: fresh ledger topics (removed after each test),
ledgers on them, and reading the topic back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from store.kafka_clients import KafkaConnection
from store.ledger import Ledger, LedgerConfig
from store.records import GENESIS_HASH, LedgerRecord, chain_hash
from tests.kafka_topics import read_topic  # noqa: F401 - the store tests import it from here


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka.errors import KafkaError

    if not topics:
        return
    admin = KafkaConnection(bootstrap).admin()
    try:
        existing = set(admin.list_topics())
        doomed = [topic for topic in topics if topic in existing]
        if doomed:
            admin.delete_topics(doomed)
    except KafkaError:
        pass  # A leftover test topic is untidy, not wrong: names never repeat.
    finally:
        admin.close()


@pytest.fixture
def ledger_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    """A fresh ledger topic name (not kafka_topic's, which serves as an input topic); the
    store creates it (and its snapshots topic)."""
    name = f"{topic_name}.ledger"
    yield name
    delete_topics(kafka_bootstrap, [name, f"{name}.snapshots"])


def fresh_topic_name(prefix: str = "test.store") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"


def events_for(originator_id: uuid.UUID, versions: range, topic: str = "t") -> list[StoredEvent]:
    return [StoredEvent(originator_id, v, topic, f"state-{v}".encode()) for v in versions]


@pytest.fixture(params=["thread", "process"])
def writer_kind(request: pytest.FixtureRequest) -> str:
    """Where make_ledger's writers run: a thread of the test's process, or a child process
    (store/writer_process.py). A test of the thread writer's insides parametrizes it to
    "thread" alone."""
    return str(request.param)


@pytest.fixture
def make_ledger(
    kafka_bootstrap: str, ledger_topic: str, tmp_path: Path, writer_kind: str
) -> Iterator[Any]:
    """Ledgers on the test's topic, each with its own index unless told to share one, their
    writers of ``writer_kind``."""
    made: list[Ledger] = []

    def make(index_dir: Path | None = None, transactional_id: str | None = None) -> Ledger:
        ledger = Ledger(
            LedgerConfig(
                connection=KafkaConnection(kafka_bootstrap),
                topic=ledger_topic,
                transactional_id=transactional_id or f"{ledger_topic}.writer",
                index_dir=index_dir or tmp_path / f"index-{len(made)}",
                timeout_s=15.0,
                writer_process=writer_kind == "process",
            )
        )
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


def assert_chain(messages: list[Any]) -> list[LedgerRecord]:
    """The records are numbered 1..N in offset order and each hash chains to the last."""
    records = [LedgerRecord.decode(m.key, m.value, m.headers) for m in messages]
    assert [r.notification_id for r in records] == list(range(1, len(records) + 1))
    prev = GENESIS_HASH
    for record in records:
        assert record.prev_hash == prev
        assert record.hash == chain_hash(
            prev,
            record.notification_id,
            record.originator_id,
            record.originator_version,
            record.topic,
            record.state,
        )
        prev = record.hash
    return records


def chained_records(count: int, state_bytes: int) -> list[LedgerRecord]:
    """``count`` records of one event each (random states of ``state_bytes``), chained from
    the genesis hash and numbered from 1."""
    records = []
    prev = GENESIS_HASH
    for number in range(1, count + 1):
        stored = StoredEvent(uuid.uuid4(), 1, "domain:Event.Happened", os.urandom(state_bytes))
        record = LedgerRecord.chained(prev, number, stored)
        records.append(record)
        prev = record.hash
    return records


def ledger_producer(bootstrap: str, topic: str, batch_size: int, **settings: Any) -> Any:
    """A transactional producer as the ledger's writer has one (idempotent, acks=all, no
    linger), for tests of store/ledger_send.py on its own."""
    return KafkaConnection(bootstrap).producer(
        transactional_id=f"{topic}.writer",
        acks="all",
        enable_idempotence=True,
        linger_ms=0,
        batch_size=batch_size,
        metrics_enabled=False,
        **settings,
    )
