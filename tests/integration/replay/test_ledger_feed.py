"""The rebuild workers of one shard share one read of it (replay/ledger_feed.py): on a real
Kafka ledger, two forked readers, one slower than the other, each get every event as a
direct read gives it, while the rebuild process reads each full batch once and keeps at
most AHEAD of them; a reader that dies does not stop the other; a read that fails once is
read again when the reader tries again."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from multiprocessing.connection import Connection
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.root import Root
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.entities import LedgerEvent
from replay import ledger_feed
from replay.ledger_feed import AHEAD, FeedSource, LedgerFeed, LedgerFeedFailed
from store.ledger import Ledger
from tests.integration.replay.conftest import traffic_commands, write

pytestmark = [pytest.mark.kafka]

BATCH = 97


def _seen(batch: list[LedgerEvent]) -> list[Any]:
    return [(e.notification_id, e.event.originator_id, e.event) for e in batch]


def _events(
    site: Root, feed: LedgerFeed, slot: int, pause: float, die_at: int, *, tries: int
) -> list[Any]:
    """What one reader reads through the feed, batch after batch, to the ledger's end
    (a failed read tried again up to ``tries`` times in all, as the projector does)."""
    seen: list[Any] = []
    with site.ledger_source(0) as own:
        source = FeedSource(own, feed.end(slot))
        head = source.last_position()
        while len(seen) < head:
            if len(seen) >= die_at:
                os.kill(os.getpid(), signal.SIGKILL)
            for attempt in range(tries):
                try:
                    batch = source.read_after(len(seen), BATCH)
                    break
                except LedgerFeedFailed:
                    if attempt == tries - 1:
                        raise
            seen += _seen(batch)
            time.sleep(pause)
        source.close()
    return seen


def _reader(
    site: Root, feed: LedgerFeed, slot: int, timing: tuple[float, int, int], out: Connection
) -> None:
    """A forked reader: sends what it read, or why it failed (``timing``: its pause per
    batch, the event count at which it kills itself, and its tries per read)."""
    feed.in_worker([slot])
    try:
        pause, die_at, tries = timing
        out.send(_events(site, feed, slot, pause, die_at, tries=tries))
    except Exception as error:
        out.send(f"{type(error).__name__}: {error}")


def _read_through_one_feed(
    settings: Settings, pauses: list[float], die_at: list[int], tries: int = 1
) -> tuple[list[Any], LedgerFeed]:
    site = bootstrap(settings)
    context = multiprocessing.get_context("fork")
    feed = LedgerFeed(context, 0, len(pauses))
    results: list[Any] = []
    pipes = [context.Pipe(duplex=False) for _ in pauses]
    children = [
        context.Process(
            target=_reader, args=(site, feed, slot, (pause, die_at[slot], tries), pipe[1])
        )
        for slot, (pause, pipe) in enumerate(zip(pauses, pipes, strict=True))
    ]
    for child in children:
        child.start()
    for _, sent in pipes:
        sent.close()
    feed.serve(site)
    try:
        for received, _ in pipes:
            if not received.poll(60):  # a reader waiting for ever fails the test
                results.append("no answer")
                continue
            try:
                results.append(received.recv())
            except EOFError:  # died without a word
                results.append(None)
    finally:
        for child in children:
            child.join(30)
            if child.is_alive():
                child.kill()
        feed.close()
    return results, feed


def test_readers_share_one_read_and_the_one_ahead_waits(
    kafka_settings: Settings, writer: BillingApplication
) -> None:
    head = write(writer, traffic_commands())
    assert head > 10 * BATCH and head % BATCH
    with bootstrap(kafka_settings).ledger_source(0) as direct:
        expected = _seen(direct.read_after(0, head))

    results, feed = _read_through_one_feed(kafka_settings, [0.0, 0.05], [head + 1, head + 1])

    assert results == [expected, expected]
    assert feed.server is not None
    # Each full batch once; the short last batch for each reader, not kept.
    assert feed.server.reads == head // BATCH + 2
    assert feed.server.most_kept == AHEAD


def test_a_reader_that_dies_does_not_stop_the_other(
    kafka_settings: Settings, writer: BillingApplication
) -> None:
    head = write(writer, traffic_commands())
    results, _ = _read_through_one_feed(kafka_settings, [0.01, 0.0], [head + 1, 3 * BATCH])
    assert results[1] is None
    assert [event[0] for event in results[0]] == list(range(1, head + 1))


def test_a_failure_of_the_reading_thread_fails_every_reader(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in the rebuild process's reading (here, raised where it answers the fourth
    batch) reaches each reader as an error, and none of them waits for ever."""
    head = write(writer, traffic_commands())
    answer = ledger_feed._FeedServer._answer

    def failing(server: Any, client: Connection, asked: tuple[int, int]) -> None:
        if asked[0] >= 3 * BATCH:
            raise RuntimeError("boom")
        answer(server, client, asked)

    monkeypatch.setattr(ledger_feed._FeedServer, "_answer", failing)
    results, _ = _read_through_one_feed(kafka_settings, [0.0, 0.0], [head + 1, head + 1])
    assert results == ["LedgerFeedFailed: reading the ledger failed: RuntimeError: boom"] * 2


def test_a_read_that_fails_once_is_read_again_when_the_readers_retry(
    kafka_settings: Settings, writer: BillingApplication, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rebuild process's fourth read of the ledger fails: the reader it answers gets
    the error, tries again (as the projector does), and both readers read to the end."""
    head = write(writer, traffic_commands())
    with bootstrap(kafka_settings).ledger_source(0) as direct:
        expected = _seen(direct.read_after(0, head))
    reads = itertools.count(1)
    notifications = Ledger.notifications  # what the rebuild process reads a batch with

    def flaky(self: Any, *args: Any, **kwargs: Any) -> Any:
        if next(reads) == 4:
            raise ConnectionError("a broker went away")
        return notifications(self, *args, **kwargs)

    monkeypatch.setattr(Ledger, "notifications", flaky)
    results, _ = _read_through_one_feed(kafka_settings, [0.0, 0.01], [head + 1] * 2, tries=3)
    assert results == [expected, expected]
    assert next(reads) > 4  # the failing read happened


def test_the_records_handed_on_are_the_ledgers_notifications_with_text_ids(
    kafka_settings: Settings, writer: BillingApplication
) -> None:
    """The rebuild process hands a Kafka ledger's records on as stored, without making a
    Notification each: the same records as the recorder's notifications, the originator id
    as its text (the worker's decoder makes it the event's UUID, as the mapper does)."""
    head = write(writer, traffic_commands())
    with bootstrap(kafka_settings).ledger_source(0) as direct:
        recorder = direct.recorder
        for position, limit in [(0, BATCH), (BATCH, head)]:
            notifications = recorder.select_notifications(
                start=position, limit=limit, inclusive_of_start=False
            )
            records = ledger_feed._unpacked(
                ledger_feed._packed(ledger_feed._records_after(recorder, position, limit))
            )
            assert records == [
                (n.id, str(n.originator_id), n.originator_version, n.topic, n.state)
                for n in notifications
            ]
            assert all(type(record[1]) is str for record in records)


def test_every_waiting_reader_that_fits_is_answered_when_batches_are_dropped(
    kafka_settings: Settings, writer: BillingApplication
) -> None:
    """Two readers ahead wait for a third; the first waiter goes, then the third: the
    batches kept for the third are dropped and the remaining waiter is answered (a waiter
    that is gone takes no room). The server's steps, in order, on a real ledger."""
    write(writer, traffic_commands())
    limit = 5
    ours, theirs = zip(*(multiprocessing.Pipe() for _ in range(3)), strict=True)
    stop, _ = multiprocessing.Pipe(duplex=False)
    first, second, third = ours
    with bootstrap(kafka_settings).ledger_source(0) as source:
        server = ledger_feed._FeedServer(source, list(ours), stop)
        for batch in range(AHEAD + 1):
            for client in (first, second):
                server._answer(client, (batch * limit, limit))
        assert len(server._waiting) == 2
        for gone in (first, third):
            server._clients.discard(gone)
            server._forget()
    received = []
    while theirs[1].poll(5):
        received.append(ledger_feed._unpacked(theirs[1].recv_bytes()))
    assert [batch[-1][0] for batch in received] == [limit * n for n in range(1, AHEAD + 2)]
    for connection in [*ours, *theirs, stop]:
        connection.close()
