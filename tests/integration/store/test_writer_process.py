"""The ledger's writer in a child process (store/writer_process.py): what only it can get
wrong. The writer's other tests run against it too (conftest's ``writer_kind``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from store import factory, writer_process
from store.writer import PendingCommit, WriterUnavailable
from store.writer_process import ProcessLedgerWriter
from tests.integration.store.conftest import assert_chain, events_for, read_topic
from tests.processes import gone

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[3]


def child_of(ledger: Any) -> int:
    writer = ledger.writer
    assert isinstance(writer, ProcessLedgerWriter)
    return writer.pid


@pytest.mark.parametrize("writer_kind", ["process"])
def test_a_killed_writer_fails_the_request_in_flight_and_the_next_one_replaces_it(
    make_ledger: Any, kafka_bootstrap: str
) -> None:
    ledger = make_ledger()
    wallet = uuid.uuid4()
    assert ledger.insert(events_for(wallet, range(1, 3))) == [1, 2]
    pid = child_of(ledger)
    # Stopped, the child cannot answer the request sent next before it is killed.
    os.kill(pid, signal.SIGSTOP)
    in_flight = ledger.writer.submit(PendingCommit([events_for(wallet, range(3, 4))]))
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(WriterUnavailable, match="killed by SIGKILL"):
        in_flight.result()
    assert not ledger.writer.healthy
    assert gone(pid, 5)

    # A new child settles what the dead one left: the request in flight never committed.
    assert ledger.insert(events_for(wallet, range(3, 4))) == [3]
    assert child_of(ledger) != pid
    assert ledger.writer.healthy
    records = assert_chain(read_topic(kafka_bootstrap, ledger.config.topic, "read_committed"))
    assert [r.originator_version for r in records] == [1, 2, 3]


@pytest.mark.parametrize("writer_kind", ["process"])
def test_errors_come_back_as_their_own_types(make_ledger: Any) -> None:
    ledger = make_ledger()
    wallet = uuid.uuid4()
    ledger.insert(events_for(wallet, range(1, 2)))
    with pytest.raises(IntegrityError, match="does not follow"):
        ledger.insert(events_for(wallet, range(3, 4)))
    assert ledger.insert(events_for(wallet, range(2, 3))) == [2]


@pytest.mark.parametrize("writer_kind", ["process"])
def test_the_parent_keeps_the_records_its_writer_committed(
    make_ledger: Any, kafka_bootstrap: str
) -> None:
    """Reads of what was just written find it in the parent's cache, as the topic holds it."""
    ledger = make_ledger()
    ledger.commit_batches(
        [events_for(uuid.uuid4(), range(1, 3)), events_for(uuid.uuid4(), range(1, 2))]
    )
    ledger.insert(events_for(uuid.uuid4(), range(1, 4)))
    messages = read_topic(kafka_bootstrap, ledger.config.topic, "read_committed")
    records = assert_chain(messages)
    assert len(records) == 6
    for message, record in zip(messages, records, strict=True):
        assert ledger.reader.cache.get(message.offset) == record


def writing_parent(kafka_bootstrap: str, ledger_topic: str, then: str) -> subprocess.Popen[str]:
    """A process that writes one event through a process writer, prints the child's pid,
    then runs ``then``."""
    script = f"""
import sys, time, uuid
sys.path.insert(0, {str(ROOT)!r})
from store.kafka_clients import KafkaConnection
from store.ledger import Ledger, LedgerConfig
from tests.integration.store.conftest import events_for
ledger = Ledger(LedgerConfig(KafkaConnection({kafka_bootstrap!r}), {ledger_topic!r},
                             {ledger_topic + ".writer"!r}, writer_process=True))
ledger.insert(events_for(uuid.uuid4(), range(1, 2)))
print(ledger.writer.pid, flush=True)
{then}
"""
    return subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)


def test_the_writer_process_ends_with_its_parent(kafka_bootstrap: str, ledger_topic: str) -> None:
    parent = writing_parent(kafka_bootstrap, ledger_topic, "time.sleep(60)")
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        os.kill(pid, 0)  # running
    finally:
        parent.kill()
        parent.wait()
    assert gone(pid, 15), "the writer process outlived its parent"


@pytest.mark.parametrize("writer_kind", ["process"])
def test_close_kills_a_child_that_does_not_end(
    make_ledger: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A child stuck (here stopped, as in a Kafka call that never returns) does not keep
    close() waiting: it ignores SIGTERM, so it is killed after CLOSE_TIMEOUT_S."""
    monkeypatch.setattr(writer_process, "CLOSE_TIMEOUT_S", 1.0)
    ledger = make_ledger()
    ledger.insert(events_for(uuid.uuid4(), range(1, 2)))
    pid = child_of(ledger)
    os.kill(pid, signal.SIGSTOP)
    closing = threading.Thread(target=ledger.close, daemon=True)
    closing.start()
    closing.join(60)  # a bound for a hang, far above CLOSE_TIMEOUT_S
    alive = closing.is_alive()
    if alive:
        os.kill(pid, signal.SIGKILL)  # let the test's process end
    assert not alive, "close() waited on a stuck child"
    assert gone(pid, 5)


@pytest.mark.parametrize("writer_kind", ["process"])
def test_an_answer_that_cannot_be_handled_fails_the_request_and_the_next_one_restarts(
    make_ledger: Any, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = make_ledger()
    wallet = uuid.uuid4()
    ledger.insert(events_for(wallet, range(1, 2)))
    pid = child_of(ledger)

    def broken(*args: Any) -> None:
        raise ValueError("injected")

    with monkeypatch.context() as patch:
        patch.setattr(ledger.writer._cache, "put_many", broken)
        with pytest.raises(WriterUnavailable, match="could not be handled"):
            ledger.insert(events_for(wallet, range(2, 3)))
    assert gone(pid, 15)
    # The child committed version 2 before its answer broke: the new one knows it.
    with pytest.raises(IntegrityError):
        ledger.insert(events_for(wallet, range(2, 3)))
    assert ledger.insert(events_for(wallet, range(3, 4))) == [3]
    records = assert_chain(read_topic(kafka_bootstrap, ledger.config.topic, "read_committed"))
    assert [r.originator_version for r in records] == [1, 2, 3]


def test_a_process_that_never_closes_its_ledger_still_exits(
    kafka_bootstrap: str, ledger_topic: str
) -> None:
    parent = writing_parent(kafka_bootstrap, ledger_topic, "")  # returns without close()
    try:
        out, _ = parent.communicate(timeout=90)  # a bound for a hang at exit
    except subprocess.TimeoutExpired:
        parent.kill()  # its child then sees EOF and ends
        parent.communicate()
        pytest.fail("the process hung at exit")
    assert parent.returncode == 0
    assert gone(int(out), 5)


def test_the_factory_runs_the_ledgers_writer_in_a_process_where_a_second_core_is(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, ledger_topic: str
) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_LEDGER_TOPIC": ledger_topic}
    for cores, in_process in ((1, False), (2, True)):
        monkeypatch.setattr(factory, "usable_cores", lambda cores=cores: cores)
        made = factory.KafkaFactory(env)
        ledger = made.application_recorder().ledger  # type: ignore[attr-defined]
        snapshots = made.aggregate_recorder("snapshots").ledger  # type: ignore[attr-defined]
        assert ledger.config.writer_process is in_process
        assert not snapshots.config.writer_process
        made.close()
