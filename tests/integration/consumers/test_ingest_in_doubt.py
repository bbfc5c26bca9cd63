"""Ingest on the real broker when a ledger commit lands but its answer is lost (the
commit call times out after the broker committed): the batch is read again and counted as
the failed attempt judged it, and the ledger holds each message once (Guarantee 5,
consumers/in_doubt.py wired into consumers/ingest.py).

The only thing faked is the lost answer: the writer's real commit runs to the end, then
raises the KafkaTimeoutError its own wait raises when a commit takes too long.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from kafka.errors import KafkaTimeoutError

from bootstrap import bootstrap
from bootstrap.root import Root
from bootstrap.settings import Settings
from cli.pipeline import _kafka_ingest
from consumers.counters import IngestCounters
from consumers.dead_letter import DeadLetter
from consumers.ingest import KafkaIngest, StopFlag
from consumers.producer import publish_file
from consumers.routing import SessionRouter
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store import factory
from store.recorders import KafkaApplicationRecorder
from store.writer import LedgerWriter
from tests.kafka_topics import read_topic
from tests.ledger_compare import expected_ledger, kafka_ledger_rows, ledger_rows

pytestmark = pytest.mark.kafka


@pytest.fixture(autouse=True)
def writer_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's wait is patched in this process: its writers must run here, in threads
    (test_ingest_in_doubt_process.py loses a writer process's answer)."""
    monkeypatch.setattr(factory, "usable_cores", lambda: 1)


def publish(root: Root, path: Path, messages: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(message) + "\n" for message in messages))
    site = root.ledger.kafka("test")
    publish_file(path, site.connection, site.ingest_topic)


def counts(counters: IngestCounters) -> tuple[int, int, int, int]:
    return counters.consumed, counters.applied, counters.rejected, counters.duplicates


def answers_lost(monkeypatch: pytest.MonkeyPatch, lose: Callable[[LedgerWriter], bool]) -> None:
    """A commit for which ``lose(writer)`` holds lands, then times out as if its answer
    never came back."""
    real = LedgerWriter._await

    def commit_then_time_out(self: LedgerWriter, result: Any, what: str) -> None:
        real(self, result, what)
        if what == "commit" and lose(self):
            raise KafkaTimeoutError(f"commit of {self.topic!r} took over {self.timeout_s}s")

    monkeypatch.setattr(LedgerWriter, "_await", commit_then_time_out)


def once(lost: list[str]) -> Callable[[LedgerWriter], bool]:
    def lose(writer: LedgerWriter) -> bool:
        if lost:
            return False
        lost.append(writer.topic)
        return True

    return lose


def tariffs_and_a_session() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    messages = generate(5, TrafficShape(days=1, customers=2, stations=1))
    first, second = messages[:2]
    assert first["type"] == second["type"] == "tariff.published"
    started = next(m for m in messages if m["type"] == "session.started")
    unknown_tariff = started | {"event_id": "evt-unknown-tariff", "tariff_id": "T-NONE"}
    return first, second, unknown_tariff


def run(ingest: KafkaIngest) -> IngestCounters:
    return ingest.run(StopFlag(), until_idle=True)


def held(ingest: KafkaIngest) -> dict[int, int]:
    """How many records each open shard's in-doubt record holds: none once every retry has
    committed (otherwise they pile up for as long as the process runs)."""
    return {shard: len(in_doubt._first) for shard, in_doubt in ingest._in_doubt.items()}


def ingest_a_batch_judged_before(
    root: Root, tmp_path: Path, lose_an_answer: Callable[[], None]
) -> tuple[IngestCounters, list[dict[str, Any]]]:
    """Ingest a tariff, then (after ``lose_an_answer``) a batch of an upstream duplicate of
    it, a new tariff and its second copy, and a rejected session: the batch's counters, and
    every message ingested."""
    first, second, unknown_tariff = tariffs_and_a_session()
    ingest = _kafka_ingest(root, 100)
    try:
        publish(root, tmp_path / "earlier.jsonl", [first])
        assert counts(run(ingest)) == (1, 1, 0, 0)
        batch = [first, second, second, unknown_tariff]
        publish(root, tmp_path / "batch.jsonl", batch)
        lose_an_answer()
        counters = run(ingest)
        assert held(ingest) == {0: 0}
    finally:
        ingest.close()
    return counters, [first, *batch]


def counted_once(counters: IngestCounters, messages: list[dict[str, Any]], ledger: Any) -> None:
    """What ingest_a_batch_judged_before's batch comes to, its answer lost or not: counted
    as first judged (the duplicate and the second copy as duplicates), each message once in
    the ledger."""
    assert counts(counters) == (5, 3, 1, 2)
    assert counters.dead_lettered == 0
    assert ledger == expected_ledger(messages)
    first, _, second, _, unknown_tariff = messages
    assert ledger == expected_ledger([first, second, unknown_tariff])


def test_a_landed_commit_whose_answer_was_lost_counts_its_batch_as_first_judged(
    root: Root, tmp_path: Path, kafka_bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost: list[str] = []
    counters, messages = ingest_a_batch_judged_before(
        root, tmp_path, lambda: answers_lost(monkeypatch, once(lost))
    )
    assert lost == [f"{prefix}.ledger"]
    counted_once(counters, messages, kafka_ledger_rows(kafka_bootstrap, prefix, tmp_path / "r"))


def shard_rows(kafka_bootstrap: str, prefix: str, data_dir: Path, shard: int) -> Any:
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, data_dir=data_dir, ledger_shards=2
    )
    application = BillingApplication(env=bootstrap(settings).ledger.shard(shard).environment())
    try:
        return ledger_rows(application)
    finally:
        application.close()


def test_a_tariff_committed_on_one_shard_leaves_another_shard_s_landed_copy_applied(
    kafka_bootstrap: str, prefix: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each shard records each tariff in its own ledger. Shard 1's commit of a tariff
    lands unanswered; shard 0 commits its own copy before shard 1 reads the tariff again:
    that says nothing of shard 1's ledger, where the tariff was applied, and counts so."""
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path, ledger_shards=2
    )
    root = bootstrap(settings)
    tariff, _, _ = tariffs_and_a_session()
    line = json.dumps(tariff).encode()
    key = SessionRouter(2).route(line).key
    site = root.ledger.kafka("test")
    producer = site.connection.producer(acks="all")
    on_shard_0 = f"{prefix}.ledger"
    committed_on_0: list[bool] = []
    lost: list[str] = []

    def lose(writer: LedgerWriter) -> bool:
        if writer.topic == on_shard_0:
            committed_on_0.append(True)
            return False
        if not lost:
            lost.append(writer.topic)
            # The copy for shard 0 arrives while shard 1's batch is in doubt.
            producer.send(site.ingest_topic, key=key, value=line, partition=0)
            producer.flush()
            return True
        return False

    real = LedgerWriter._await

    def shard_1_waits_for_shard_0(self: LedgerWriter, result: Any, what: str) -> None:
        if what == "commit" and lost and self.topic != on_shard_0 and not committed_on_0:
            # Shard 1's retries time out unsent until shard 0 has committed its copy.
            raise KafkaTimeoutError(f"commit of {self.topic!r} took over {self.timeout_s}s")
        real(self, result, what)

    monkeypatch.setattr(LedgerWriter, "_await", shard_1_waits_for_shard_0)
    answers_lost(monkeypatch, lose)
    try:
        ingest = _kafka_ingest(root, 100)
        try:
            producer.send(site.ingest_topic, key=key, value=line, partition=1)
            producer.flush()
            counters = run(ingest)
            assert held(ingest) == {0: 0, 1: 0}
        finally:
            ingest.close()
    finally:
        producer.close()
        root.close()
    assert lost == [f"{prefix}.ledger.1"] and committed_on_0
    assert counts(counters) == (2, 2, 0, 0)
    for shard in (0, 1):
        assert shard_rows(kafka_bootstrap, prefix, tmp_path / "reader", shard) == expected_ledger(
            [tariff]
        ), f"shard {shard}"


def dead_letters(kafka_bootstrap: str, prefix: str, isolation: str) -> list[tuple[int, str]]:
    """The dead-letter topic's records as (source offset, field), in order: committed ones,
    or with "read_uncommitted" those of aborted transactions too."""
    return [
        (letter.source_offset, letter.field)
        for letter in (
            DeadLetter.from_headers(r.key, r.value, list(r.headers))
            for r in read_topic(kafka_bootstrap, f"{prefix}.ingest.dlq", isolation)
        )
    ]


def ingest_two_dead_letters(
    root: Root, tmp_path: Path, on_batch: Callable[[KafkaIngest], None] = lambda ingest: None
) -> IngestCounters:
    """Ingest a line that is not JSON, a tariff, and a message of no known type: two dead
    letters around one applied message; ``on_batch`` after each committed batch."""
    first, _, _ = tariffs_and_a_session()
    lines = [b"not json", json.dumps(first).encode(), b'{"type": "no.such.type"}']
    ingest = _kafka_ingest(root, 100)
    try:
        path = tmp_path / "batch.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        site = root.ledger.kafka("test")
        publish_file(path, site.connection, site.ingest_topic)
        counters = ingest.run(StopFlag(), until_idle=True, on_batch=lambda _: on_batch(ingest))
    finally:
        ingest.close()
    assert counts(counters) == (3, 1, 0, 0) and counters.dead_lettered == 2
    return counters


LETTERS = [(0, ""), (2, "type")]


def test_a_landed_commit_whose_answer_was_lost_publishes_its_dead_letters_once(
    root: Root, tmp_path: Path, kafka_bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dead letters rode in the landed transaction: the batch read again counts them
    (consumed = applied + duplicates + dead-lettered) and publishes none of them again."""
    lost: list[str] = []
    answers_lost(monkeypatch, once(lost))
    ingest_two_dead_letters(root, tmp_path)
    assert lost == [f"{prefix}.ledger"]
    assert dead_letters(kafka_bootstrap, prefix, "read_committed") == LETTERS
    assert dead_letters(kafka_bootstrap, prefix, "read_uncommitted") == LETTERS


def test_a_landed_commit_read_again_over_several_polls_publishes_its_dead_letters_once(
    root: Root, tmp_path: Path, kafka_bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch read again one record per poll (as a smaller max_records, or another
    partition's records in the same poll, would split it): no part of it publishes a dead
    letter again, and no part moves the group's committed offset back below what landed."""
    lost: list[str] = []
    lose_once = once(lost)
    ingests: list[KafkaIngest] = []
    committed: list[int] = []

    def lose_then_read_one_at_a_time(writer: LedgerWriter) -> bool:
        if not lose_once(writer):
            return False
        ingest = ingests[0]
        monkeypatch.setattr(ingest, "config", replace(ingest.config, batch_size=1))
        return True

    def offsets(ingest: KafkaIngest) -> None:
        from kafka import TopicPartition

        ingests[:] = [ingest]
        partition = TopicPartition(f"{prefix}.ingest", 0)
        committed.append(ingest.consumer.committed(partition, timeout_ms=10_000) or 0)

    real_landed_below = KafkaIngest._landed_below

    def known(ingest: KafkaIngest, *arguments: Any) -> Any:
        ingests[:] = [ingest]
        return real_landed_below(ingest, *arguments)

    monkeypatch.setattr(KafkaIngest, "_landed_below", known)
    answers_lost(monkeypatch, lose_then_read_one_at_a_time)
    ingest_two_dead_letters(root, tmp_path, offsets)
    assert lost == [f"{prefix}.ledger"]
    assert dead_letters(kafka_bootstrap, prefix, "read_uncommitted") == LETTERS
    assert committed == [3, 3, 3]  # each record of the re-read alone, none committed below


def test_a_commit_that_failed_unanswered_and_did_not_land_publishes_its_dead_letters(
    root: Root, tmp_path: Path, kafka_bootstrap: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt that times out before its commit is sent (its consumer offsets unanswered)
    is aborted by the writer's recovery: the batch read again publishes its dead letters."""
    lost: list[str] = []
    real = LedgerWriter._await

    def time_out_uncommitted(self: LedgerWriter, result: Any, what: str) -> None:
        if what == "send_offsets_to_transaction" and not lost:
            lost.append(self.topic)
            raise KafkaTimeoutError(f"{what} of {self.topic!r} took over {self.timeout_s}s")
        real(self, result, what)

    monkeypatch.setattr(LedgerWriter, "_await", time_out_uncommitted)
    ingest_two_dead_letters(root, tmp_path)
    assert lost == [f"{prefix}.ledger"]
    assert dead_letters(kafka_bootstrap, prefix, "read_committed") == LETTERS
    # The aborted attempt's copies, which no read_committed reader sees.
    assert dead_letters(kafka_bootstrap, prefix, "read_uncommitted") == LETTERS + LETTERS


def sessions(count: int) -> list[dict[str, Any]]:
    """Messages of which later ones need earlier ones (sessions started, then stopped)."""
    messages = generate(5, TrafficShape(days=1, customers=3, stations=2))[:count]
    assert len(messages) == count
    return messages


def deferring(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each batch's save was attached deferred (consumers/ingest.py, _Deferred)."""
    seen: list[bool] = []
    real = KafkaApplicationRecorder.attach

    def attach(self: KafkaApplicationRecorder, extras: Any, *, defer: bool = False) -> None:
        seen.append(defer)
        real(self, extras, defer=defer)

    monkeypatch.setattr(KafkaApplicationRecorder, "attach", attach)
    return seen


@pytest.mark.parametrize("lands", [True, False])
def test_a_deferred_commit_that_fails_is_read_again_with_the_batches_decided_on_it(
    root: Root,
    tmp_path: Path,
    *,
    kafka_bootstrap: str,
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    lands: bool,
) -> None:
    """Batches of three: the second batch's commit fails unanswered (landed or not) while
    the third is decided on its unsaved state. Nothing decided on it is sent until its
    answer came; then both are read again, and the ledger and the counters are as if
    nothing had failed."""
    messages = sessions(12)
    seen = deferring(monkeypatch)
    lost: list[str] = []
    transactions: list[str] = []
    real = LedgerWriter._await

    def second_commit_fails(self: LedgerWriter, result: Any, what: str) -> None:
        if what == "send_offsets_to_transaction":
            transactions.append(self.topic)
        # Landed: its commit's answer is lost; not landed: its offsets' answer is.
        failing = "commit" if lands else "send_offsets_to_transaction"
        if len(transactions) == 2 and not lost and what == failing:
            lost.append(self.topic)
            if lands:
                real(self, result, what)
            raise KafkaTimeoutError(f"{what} of {self.topic!r} took over {self.timeout_s}s")
        real(self, result, what)

    monkeypatch.setattr(LedgerWriter, "_await", second_commit_fails)
    ingest = _kafka_ingest(root, 3)
    try:
        publish(root, tmp_path / "batch.jsonl", messages)
        counters = run(ingest)
        assert held(ingest) == {0: 0}
    finally:
        ingest.close()
    assert lost == [f"{prefix}.ledger"]
    assert True in seen  # some batches were deferred
    assert counters.consumed == 12 and counters.duplicates == 0 and counters.dead_lettered == 0
    assert counters.applied == 12
    ledger = kafka_ledger_rows(kafka_bootstrap, prefix, tmp_path / "reader")
    assert ledger == expected_ledger(messages)
