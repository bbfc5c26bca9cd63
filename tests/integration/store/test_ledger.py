"""The Kafka ledger's guarantees (2, 3, 4) against the real broker, through its public API."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError, StoredEvent

from store.kafka_clients import KafkaConnection
from store.writer import WriterFenced, WriterUnavailable
from tests.integration.store.conftest import assert_chain, events_for, read_topic

pytestmark = pytest.mark.kafka


class Wallet(Aggregate):
    """A tiny aggregate of the tests' own (the domain is written elsewhere)."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.balance = 0

    @event("Credited")
    def credit(self, amount: int) -> None:
        self.balance += amount


class Wallets(Application[uuid.UUID]):
    def open(self, owner: str) -> uuid.UUID:
        wallet = Wallet(owner)
        self.save(wallet)
        return wallet.id

    def credit(self, wallet_id: uuid.UUID, amount: int) -> None:
        wallet = self.repository.get(wallet_id)
        wallet.credit(amount)
        self.save(wallet)


def app_env(bootstrap: str, topic: str, **extra: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "store.factory:KafkaFactory",
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_LEDGER_TOPIC": topic,
        **extra,
    }


def test_two_applications_race_on_one_aggregate(kafka_bootstrap: str, ledger_topic: str) -> None:
    env = app_env(kafka_bootstrap, ledger_topic)
    first, second = Wallets(env=env), Wallets(env=env)
    try:
        wallet_id = first.open("ada")
        stale_first = first.repository.get(wallet_id)
        stale_second = second.repository.get(wallet_id)
        stale_first.credit(5)
        stale_second.credit(7)
        first.save(stale_first)
        with pytest.raises(IntegrityError):
            second.save(stale_second)
        # The loser retries on fresh state and both credits count.
        second.credit(wallet_id, 7)
        assert first.repository.get(wallet_id).balance == 12
        assert second.repository.get(wallet_id).version == 3

        # Eight instances' saves at once on one version: exactly one wins.
        copies = [second.repository.get(wallet_id) for _ in range(8)]
        outcomes: list[str] = []
        barrier = threading.Barrier(len(copies))

        def save(wallet: Wallet) -> None:
            wallet.credit(1)
            barrier.wait()
            try:
                (first if len(outcomes) % 2 else second).save(wallet)
                outcomes.append("saved")
            except IntegrityError:
                outcomes.append("conflict")

        threads = [threading.Thread(target=save, args=(copy,)) for copy in copies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["conflict"] * 7 + ["saved"]
        assert first.repository.get(wallet_id).balance == 13
        assert first.recorder.max_notification_id() == 4
    finally:
        first.close()
        second.close()


def test_stale_writer_is_fenced_and_loses_nothing(make_ledger: Any, kafka_bootstrap: str) -> None:
    stale = make_ledger()
    wallet = uuid.uuid4()
    acknowledged = [
        stale.insert(events_for(wallet, range(1, 3))),
        stale.insert(events_for(wallet, range(3, 4))),
    ]
    assert acknowledged == [[1, 2], [3]]

    newer = make_ledger()  # same transactional id, its own index rebuilt from the topic
    assert newer.insert(events_for(wallet, range(4, 5))) == [4]

    with pytest.raises(WriterFenced):
        stale.insert(events_for(wallet, range(4, 5)))
    with pytest.raises(WriterFenced):  # and it stays fenced
        stale.insert(events_for(uuid.uuid4(), range(1, 2)))
    assert stale.writer.fenced

    assert [r.originator_version for r in newer.events(str(wallet))] == [1, 2, 3, 4]
    records = assert_chain(read_topic(kafka_bootstrap, stale.config.topic, "read_committed"))
    assert len(records) == 4


def test_aborted_batch_is_invisible_and_its_ids_are_reused(
    make_ledger: Any, kafka_bootstrap: str, kafka_topic: str
) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    ledger = make_ledger()
    wallet = uuid.uuid4()
    assert ledger.insert(events_for(wallet, range(1, 3))) == [1, 2]

    # A consumer that has left its group: the broker rejects its offsets after the batch's
    # record is already in the log, inside the transaction, so the writer must abort it.
    group = f"ingest-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConnection(kafka_bootstrap).consumer(
        kafka_topic, group_id=group, enable_auto_commit=False
    )
    deadline = time.monotonic() + 60
    while not consumer.assignment():
        assert time.monotonic() < deadline, f"no partition of {kafka_topic} assigned in 60 s"
        consumer.poll(timeout_ms=200)
    stale_membership = consumer.group_metadata()
    consumer.close()
    with pytest.raises(WriterUnavailable):
        ledger.commit_batches(
            [[StoredEvent(wallet, 3, "t", b"aborted")]],
            {TopicPartition(kafka_topic, 0): OffsetAndMetadata(1, "", -1)},
            stale_membership,
        )

    assert ledger.insert(events_for(wallet, range(3, 5))) == [3, 4]
    assert [r.originator_version for r in ledger.events(str(wallet))] == [1, 2, 3, 4]

    uncommitted = read_topic(kafka_bootstrap, ledger.config.topic, "read_uncommitted")
    assert b"aborted" in [m.value for m in uncommitted], "the aborted record reached the log"
    committed = read_topic(kafka_bootstrap, ledger.config.topic, "read_committed")
    assert b"aborted" not in [m.value for m in committed]
    assert_chain(committed)


# The thread writer's insides are patched: the test's process must hold them.
@pytest.mark.parametrize("writer_kind", ["thread"])
def test_failure_after_the_commit_keeps_ids_and_chain(
    make_ledger: Any, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = make_ledger()
    wallet, other = uuid.uuid4(), uuid.uuid4()
    assert ledger.insert(events_for(wallet, range(1, 2))) == [1]
    apply = ledger.index.apply
    failed: list[bool] = []

    def fails_once(*args: Any) -> None:
        if not failed:
            failed.append(True)
            raise OSError("disk I/O error (simulated) after the Kafka commit")
        apply(*args)

    monkeypatch.setattr(ledger.index, "apply", fails_once)
    # The events are committed, so they are acknowledged with their ids.
    assert ledger.insert(events_for(wallet, range(2, 3))) == [2]
    assert not ledger.writer.healthy  # it re-reads the topic before the next transaction
    assert ledger.insert(events_for(other, range(1, 2))) == [3]
    with pytest.raises(IntegrityError):
        ledger.insert(events_for(wallet, range(2, 3)))

    records = assert_chain(read_topic(kafka_bootstrap, ledger.config.topic, "read_committed"))
    assert [(r.originator_id, r.originator_version) for r in records] == [
        (str(wallet), 1),
        (str(wallet), 2),
        (str(other), 1),
    ]
    assert [r.originator_version for r in ledger.events(str(wallet))] == [1, 2]


def test_restart_rebuilds_index_and_continues(make_ledger: Any, tmp_path: Path) -> None:
    first = make_ledger(index_dir=tmp_path / "kept")
    wallets = [uuid.uuid4() for _ in range(3)]
    for number, wallet in enumerate(wallets):
        assert first.insert(events_for(wallet, range(1, 4))) == [
            3 * number + 1,
            3 * number + 2,
            3 * number + 3,
        ]
    first.close()

    rebuilt = make_ledger(index_dir=tmp_path / "fresh")  # from offset 0
    with pytest.raises(IntegrityError):
        rebuilt.insert(events_for(wallets[0], range(3, 4)))
    assert rebuilt.insert(events_for(wallets[0], range(4, 5))) == [10]
    assert rebuilt.max_notification_id() == 10
    assert [r.originator_version for r in rebuilt.events(str(wallets[0]))] == [1, 2, 3, 4]
    rebuilt.close()

    resumed = make_ledger(index_dir=tmp_path / "kept")  # catches up from where it stopped
    assert resumed.index.position() > 0
    assert resumed.insert(events_for(wallets[1], range(4, 5))) == [11]
    assert [n.notification_id for n in resumed.notifications(1, 100)] == list(range(1, 12))


def test_plain_consumer_sees_exactly_the_committed_events(
    make_ledger: Any, kafka_bootstrap: str
) -> None:
    ledger = make_ledger()
    expected: list[tuple[str, int]] = []
    wallets = [uuid.uuid4() for _ in range(20)]

    def write(wallet: uuid.UUID) -> None:
        ledger.insert(events_for(wallet, range(1, 4)))

    threads = [threading.Thread(target=write, args=(w,)) for w in wallets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pytest.raises(IntegrityError):
        ledger.insert(events_for(wallets[0], range(1, 2)))

    records = assert_chain(read_topic(kafka_bootstrap, ledger.config.topic, "read_committed"))
    expected = [(n.originator_id, n.originator_version) for n in ledger.notifications(1, 1000)]
    assert [(r.originator_id, r.originator_version) for r in records] == expected
    assert len(records) == 60
    for wallet in wallets:  # each aggregate's events are contiguous and in order
        assert [r.originator_version for r in records if r.originator_id == str(wallet)] == [
            1,
            2,
            3,
        ]


def test_batches_and_consumer_offsets_commit_together(
    make_ledger: Any, kafka_bootstrap: str, kafka_topic: str
) -> None:
    from kafka import TopicPartition
    from kafka.structs import OffsetAndMetadata

    producer = KafkaConnection(kafka_bootstrap).producer()
    for number in range(3):
        producer.send(kafka_topic, f"message-{number}".encode(), partition=0)
    producer.flush()
    producer.close()
    group = f"ingest-{uuid.uuid4().hex[:8]}"
    consumer = KafkaConnection(kafka_bootstrap).consumer(
        kafka_topic,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    messages: list[Any] = []
    while len(messages) < 3:
        for batch in consumer.poll(timeout_ms=1000).values():
            messages.extend(batch)

    ledger = make_ledger()
    wallet, conflicting = uuid.uuid4(), uuid.uuid4()
    partition = TopicPartition(kafka_topic, 0)
    ledger.insert(events_for(conflicting, range(1, 2)))
    # One conflicting batch fails the whole unit: no events and no offsets.
    with pytest.raises(IntegrityError):
        ledger.commit_batches(
            [events_for(wallet, range(1, 3)), events_for(conflicting, range(1, 2))],
            {partition: OffsetAndMetadata(2, "", -1)},
            consumer.group_metadata(),
        )
    ids = ledger.commit_batches(
        [events_for(wallet, range(1, 3)), events_for(conflicting, range(2, 3))],
        {partition: OffsetAndMetadata(3, "", -1)},
        consumer.group_metadata(),
    )
    consumer.close()
    assert ids == [[2, 3], [4]]

    reader = KafkaConnection(kafka_bootstrap).consumer(group_id=group)
    try:
        assert reader.committed(partition) == 3
    finally:
        reader.close()


def test_reads_that_go_on_where_the_last_stopped_and_reads_that_jump_agree(
    make_ledger: Any, tmp_path: Path
) -> None:
    """A read that continues at the consumer's position skips the seek and keeps what was
    fetched ahead; any other read seeks. Both return exactly the records asked for, across
    transaction markers, and read from a fresh ledger (nothing cached)."""
    writer = make_ledger(index_dir=tmp_path / "written")
    wallets = [uuid.uuid4() for _ in range(12)]
    for wallet in wallets:  # one transaction (and one marker) per wallet
        writer.insert(events_for(wallet, range(1, 6)))
    expected = [(n.originator_id, n.originator_version) for n in writer.notifications(1, 100)]
    assert len(expected) == 60

    reader = make_ledger(index_dir=tmp_path / "read")
    in_batches = []
    for first in range(1, 61, 7):  # back to back, as a projector reads
        batch = reader.notifications(first, 7)
        assert [n.notification_id for n in batch] == list(range(first, min(first + 7, 61)))
        in_batches += [(n.originator_id, n.originator_version) for n in batch]
    assert in_batches == expected
    reader.reader.cache.clear()
    for first in (40, 3, 41, 59, 1):  # jumps back and forth
        batch = reader.notifications(first, 5)
        assert [(n.originator_id, n.originator_version) for n in batch] == expected[
            first - 1 : first + 4
        ]
    events = reader.events(str(wallets[5]))  # sparse offsets after a scan
    assert [e.originator_version for e in events] == [1, 2, 3, 4, 5]


def test_a_transaction_of_many_producer_batches_and_large_values_lands_whole(
    make_ledger: Any, kafka_bootstrap: str
) -> None:
    # About 2.5 MiB in one transaction: several of the producer's 512 KiB batches, and two
    # values past the size the writer leaves to send()'s checks, one of them first.
    ledger = make_ledger()
    wallet = uuid.uuid4()
    small = [b"s%06d" % n + bytes(4000) for n in range(250)]
    values = [bytes(1024 * 1024 + 1), *small[:125], b"L" * (1024 * 1024 + 7), *small[125:]]
    stored = [StoredEvent(wallet, n, "t", value) for n, value in enumerate(values, start=1)]
    assert ledger.insert(stored) == list(range(1, len(values) + 1))
    assert ledger.insert(events_for(wallet, range(len(values) + 1, len(values) + 2))) == [
        len(values) + 1
    ]

    records = assert_chain(read_topic(kafka_bootstrap, ledger.config.topic, "read_committed"))
    assert [r.state for r in records[:-1]] == values
    assert [r.originator_version for r in records] == list(range(1, len(values) + 2))
    assert [r.state for r in ledger.events(str(wallet), lte=3)] == values[:3]
