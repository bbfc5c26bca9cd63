"""Consume-transform-produce through the recorder: ledger events, consumer offsets and
records for other topics (dead letters) in one Kafka transaction (Guarantee 3)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from store.admin import TopicSpec, ensure_topic
from store.kafka_clients import KafkaConnection
from store.recorders import KafkaApplicationRecorder, TransactionExtras
from store.writer import SideRecord, WriterUnavailable
from tests.integration.store.conftest import delete_topics, events_for, read_topic
from tests.integration.store.test_ledger import Wallets, app_env

pytestmark = pytest.mark.kafka


@pytest.fixture
def dead_letter_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    name = f"{topic_name}.dead-letters"
    ensure_topic(KafkaConnection(kafka_bootstrap), TopicSpec(name))
    yield name
    delete_topics(kafka_bootstrap, [name])


def joined_consumer(bootstrap: str, topic: str) -> Any:
    """A consumer that has joined its own new group and holds the topic's partition."""

    consumer = KafkaConnection(bootstrap).consumer(
        topic,
        group_id=f"ingest-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
    )
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, f"no partition of {topic} assigned within 60 s"
        consumer.poll(timeout_ms=200)
    return consumer


def committed_offset(bootstrap: str, group: str, topic: str) -> int | None:
    from kafka import TopicPartition

    reader = KafkaConnection(bootstrap).consumer(group_id=group)
    try:
        offset = reader.committed(TopicPartition(topic, 0))
        return None if offset is None else int(offset)
    finally:
        reader.close()


def dead_letter(topic: str, reason: str) -> SideRecord:
    return SideRecord(topic, b"source-key", f"bad {reason}".encode(), [("reason", reason.encode())])


def test_save_commits_events_offsets_and_dead_letters_together(
    kafka_bootstrap: str, ledger_topic: str, kafka_topic: str, dead_letter_topic: str
) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    consumer = joined_consumer(kafka_bootstrap, kafka_topic)
    group = consumer.config["group_id"]
    partition = TopicPartition(kafka_topic, 0)
    app = Wallets(env=app_env(kafka_bootstrap, ledger_topic))
    try:
        wallet: Any = app.repository.get(app.open("ada"))
        wallet.credit(5)
        # What is attached to the recorder commits with the thread's next save.
        app.recorder.attach(
            TransactionExtras(
                side_records=(dead_letter(dead_letter_topic, "schema"),),
                consumer_offsets={partition: OffsetAndMetadata(7, "", -1)},
                group_metadata=consumer.group_metadata(),
            )
        )
        app.save(wallet)
        assert committed_offset(kafka_bootstrap, group, kafka_topic) == 7
        letters = read_topic(kafka_bootstrap, dead_letter_topic, "read_committed")
        assert [(m.value, m.headers) for m in letters] == [(b"bad schema", [("reason", b"schema")])]
        assert app.repository.get(wallet.id).balance == 5

        # No events at all: just the offsets and a dead letter, in one transaction.
        app.recorder.attach(
            TransactionExtras(
                side_records=(dead_letter(dead_letter_topic, "json"),),
                consumer_offsets={partition: OffsetAndMetadata(9, "", -1)},
                group_metadata=consumer.group_metadata(),
            )
        )
        app.recorder.commit_attached()
        assert committed_offset(kafka_bootstrap, group, kafka_topic) == 9
        letters = read_topic(kafka_bootstrap, dead_letter_topic, "read_committed")
        assert [m.value for m in letters] == [b"bad schema", b"bad json"]
        assert app.recorder.max_notification_id() == 2
    finally:
        consumer.close()
        app.close()


def test_failed_offsets_commit_takes_events_and_dead_letters_with_it(
    make_ledger: Any, kafka_bootstrap: str, kafka_topic: str, dead_letter_topic: str
) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    ledger = make_ledger()
    recorder = KafkaApplicationRecorder(ledger)
    wallet = uuid.uuid4()
    assert recorder.insert_events(events_for(wallet, range(1, 2))) == [1]
    # A consumer that has left its group: the broker rejects its offsets after the event
    # and the dead letter are in the log, inside the transaction, which is then aborted.
    consumer = joined_consumer(kafka_bootstrap, kafka_topic)
    group = consumer.config["group_id"]
    stale_membership = consumer.group_metadata()
    consumer.close()
    with pytest.raises(WriterUnavailable):
        recorder.attach(
            TransactionExtras(
                side_records=(dead_letter(dead_letter_topic, "aborted"),),
                consumer_offsets={TopicPartition(kafka_topic, 0): OffsetAndMetadata(1, "", -1)},
                group_metadata=stale_membership,
            )
        )
        recorder.insert_events([StoredEvent(wallet, 2, "t", b"aborted")])

    uncommitted = read_topic(kafka_bootstrap, dead_letter_topic, "read_uncommitted")
    assert b"bad aborted" in [m.value for m in uncommitted], "the dead letter reached the log"
    assert read_topic(kafka_bootstrap, dead_letter_topic, "read_committed") == []
    assert committed_offset(kafka_bootstrap, group, kafka_topic) is None
    assert [r.originator_version for r in ledger.events(str(wallet))] == [1]
    assert recorder.insert_events(events_for(wallet, range(2, 3))) == [2]


# The thread writer's insides are patched: the test's process must hold them.
@pytest.mark.parametrize("writer_kind", ["thread"])
def test_an_aborted_group_commit_acknowledges_none_of_its_requests(
    make_ledger: Any,
    kafka_bootstrap: str,
    kafka_topic: str,
    dead_letter_topic: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Requests grouped into one transaction share its fate: one request's rejected offsets
    abort the others' events and side records too, and each caller is told so."""
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    ledger = make_ledger()
    writer = ledger.writer
    consumer = joined_consumer(kafka_bootstrap, kafka_topic)
    stale_membership = consumer.group_metadata()
    consumer.close()

    # Hold the writer thread inside a first transaction until both requests are queued,
    # so that its next group holds both.
    transact = writer._transact
    first_call, release = threading.Event(), threading.Event()

    def held(*args: Any) -> list[int]:
        if not first_call.is_set():
            first_call.set()
            release.wait(10)
        offsets: list[int] = transact(*args)
        return offsets

    monkeypatch.setattr(writer, "_transact", held)
    outcomes: dict[str, Any] = {}

    def commit(name: str, **kwargs: Any) -> None:
        try:
            outcomes[name] = ledger.commit_batches(**kwargs)
        except Exception as error:
            outcomes[name] = error

    first = threading.Thread(
        target=commit, args=("first",), kwargs={"batches": [events_for(uuid.uuid4(), range(1, 2))]}
    )
    first.start()
    assert first_call.wait(10)
    innocent = threading.Thread(
        target=commit,
        args=("innocent",),
        kwargs={
            "batches": [events_for(uuid.uuid4(), range(1, 2))],
            "side_records": [SideRecord(dead_letter_topic, None, b"innocent")],
        },
    )
    stale = threading.Thread(
        target=commit,
        args=("stale",),
        kwargs={
            "batches": [],
            "offsets": {TopicPartition(kafka_topic, 0): OffsetAndMetadata(1, "", -1)},
            "group_metadata": stale_membership,
        },
    )
    innocent.start()
    while writer._requests.qsize() < 1:
        threading.Event().wait(0.005)
    stale.start()
    while writer._requests.qsize() < 2:
        threading.Event().wait(0.005)
    release.set()
    for thread in (first, innocent, stale):
        thread.join()

    assert outcomes["first"] == [[1]]
    assert isinstance(outcomes["innocent"], WriterUnavailable)
    assert isinstance(outcomes["stale"], WriterUnavailable)
    assert read_topic(kafka_bootstrap, dead_letter_topic, "read_committed") == []
    assert ledger.max_notification_id() == 1
    # Retried alone, the innocent request commits.
    assert ledger.commit_batches(
        [events_for(uuid.uuid4(), range(1, 2))],
        side_records=[SideRecord(dead_letter_topic, None, b"innocent")],
    ) == [[2]]
    assert [m.value for m in read_topic(kafka_bootstrap, dead_letter_topic, "read_committed")] == [
        b"innocent"
    ]


def test_side_records_cannot_go_to_the_ledger(make_ledger: Any) -> None:
    ledger = make_ledger()
    with pytest.raises(ValueError, match="ledger topic"):
        ledger.commit_batches([], side_records=[SideRecord(ledger.config.topic, None, b"x")])
