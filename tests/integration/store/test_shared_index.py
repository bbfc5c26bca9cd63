"""Two processes with one data dir share one index file: a reader catching up while the
writer commits never shrinks it, so the writer's version check stays sound (Guarantee 2)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError

from store import index as index_module
from store.writer import catch_up
from tests.integration.store.conftest import assert_chain, events_for, read_topic

pytestmark = pytest.mark.kafka


def test_reader_with_a_stale_end_never_shrinks_the_writers_index(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "data" / "index"
    writer, projector = make_ledger(index_dir=shared), make_ledger(index_dir=shared)
    wallet = uuid.uuid4()
    writer.insert(events_for(wallet, range(1, 3)))
    # The projector reads the topic's end; the writer commits and indexes once more before
    # the projector looks at the index.
    stale_end = projector.reader.end_offset()
    writer.insert(events_for(wallet, range(3, 4)))
    monkeypatch.setattr(projector.reader, "end_offset", lambda: stale_end)
    catch_up(projector.index, projector.reader)

    assert writer.index.count() == 3
    assert writer.writer.healthy
    with pytest.raises(IntegrityError):
        writer.insert(events_for(wallet, range(3, 4)))
    assert [r.originator_version for r in projector.events(str(wallet))] == [1, 2, 3]


def test_reader_catching_up_beside_a_committing_writer(
    make_ledger: Any, kafka_bootstrap: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared = tmp_path / "data" / "index"
    writer, projector = make_ledger(index_dir=shared), make_ledger(index_dir=shared)
    wallets = [uuid.uuid4() for _ in range(4)]
    versions = dict.fromkeys(wallets, 0)
    writer.insert(events_for(wallets[0], range(1, 2)))
    versions[wallets[0]] = 1

    # Widen the window between reading the topic's end and using it, where the writer's
    # commits land, and let the writer introduce new event topics as it goes.
    read_end = projector.reader.end_offset

    def slow_end_offset() -> int:
        end: int = read_end()
        time.sleep(random.uniform(0, 0.01))
        return end

    monkeypatch.setattr(projector.reader, "end_offset", slow_end_offset)
    done = threading.Event()
    counts: list[int] = []
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for number in range(120):
                wallet = wallets[number % len(wallets)]
                version = versions[wallet] + 1
                writer.insert(events_for(wallet, range(version, version + 1), f"t{number % 7}"))
                versions[wallet] = version
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    def read() -> None:
        try:
            while not done.is_set():
                catch_up(projector.index, projector.reader)
                counts.append(writer.index.count())
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write), threading.Thread(target=read)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert not failures
    assert len(counts) > 10, "the reader should have caught up many times"
    assert counts == sorted(counts), "the shared index shrank"
    assert writer.writer.healthy
    for wallet, version in versions.items():
        with pytest.raises(IntegrityError):
            writer.insert(events_for(wallet, range(version, version + 1)))
    records = assert_chain(read_topic(kafka_bootstrap, writer.config.topic, "read_committed"))
    assert len(records) == writer.index.count() == 121
    catch_up(projector.index, projector.reader)
    assert len(projector.notifications(1, 1000, topics=["t3"])) == len(
        [r for r in records if r.topic == "t3"]
    )


def test_after_the_machine_restarts_the_index_is_a_new_file_caught_up_from_the_topic(
    make_ledger: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index is written unsynced, so a later boot never opens an earlier one's file (it
    may have lost writes): it opens its own, filled from the topic, and the version check
    sees every event committed before the restart (Guarantee 2)."""
    shared = tmp_path / "data" / "index"
    first_boot, later_boot = tmp_path / "first_boot_id", tmp_path / "later_boot_id"
    first_boot.write_text(f"{uuid.uuid4()}\n")
    later_boot.write_text(f"{uuid.uuid4()}\n")
    monkeypatch.setattr(index_module, "BOOT_ID_PATH", str(first_boot))
    before = make_ledger(index_dir=shared)
    wallet = uuid.uuid4()
    before.insert(events_for(wallet, range(1, 3)))
    earlier_file = Path(before.index.path)
    assert not before.index.synced
    monkeypatch.setattr(index_module, "BOOT_ID_PATH", str(later_boot))

    after = make_ledger(index_dir=shared)
    assert Path(after.index.path) != earlier_file
    assert not earlier_file.exists()
    with pytest.raises(IntegrityError):
        after.insert(events_for(wallet, range(2, 3)))
    after.insert(events_for(wallet, range(3, 4)))
    assert [r.originator_version for r in after.events(str(wallet))] == [1, 2, 3]
