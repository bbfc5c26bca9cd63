"""The read-ahead ledger source gives exactly what the plain one gives, whatever is asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.application import BillingApplication
from projections.databases.sqlite import SqliteDatabase
from projections.facts import LedgerEvent
from projections.payment_history import PaymentHistory
from projections.prefetch import PrefetchingSource, ReadAheadPermit
from projections.runner import LedgerSource, Projector
from tests.unit.projections.scenario import build_ledger


@pytest.fixture
def app() -> BillingApplication:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    return application


def ids(events: list[LedgerEvent]) -> list[int]:
    return [event.notification_id for event in events]


def test_batches_read_ahead_are_the_ones_a_plain_source_reads(app: BillingApplication) -> None:
    plain, ahead = LedgerSource.of(app), PrefetchingSource.of(app)
    try:
        position, batches = 0, 0
        while events := ahead.read_after(position, 7):
            assert ids(events) == ids(plain.read_after(position, 7))
            position, batches = events[-1].notification_id, batches + 1
        assert position == app.recorder.max_notification_id() > 7
        assert batches > 1
        # Asked elsewhere (a retry, a moved position): read as asked, not what was ahead.
        ahead.read_after(0, 7)
        assert ids(ahead.read_after(3, 5)) == [4, 5, 6, 7, 8]
        assert ids(ahead.read_after(8, 7)) == ids(plain.read_after(8, 7))
        assert ahead.last_position() == plain.last_position()
    finally:
        ahead.close()


def test_an_error_reading_ahead_is_raised_by_the_read_that_wants_the_batch(
    app: BillingApplication,
) -> None:
    class Failing(LedgerSource):
        def read_after(self, position: int, limit: int) -> list[LedgerEvent]:
            if position > 0:
                raise ConnectionError("ledger unreachable")
            return super().read_after(position, limit)

    ahead = PrefetchingSource(Failing(app.recorder, app.mapper))
    try:
        first = ahead.read_after(0, 3)
        with pytest.raises(ConnectionError, match="unreachable"):
            ahead.read_after(first[-1].notification_id, 3)
    finally:
        ahead.close()


def held_ahead(shards: list[PrefetchingSource]) -> int:
    """Batches read ahead and not yet handed out, over all shards (read or being read)."""
    return sum(source._ahead is not None for source in shards)


@pytest.mark.parametrize("shared", [True, False])
def test_shards_sharing_a_permit_hold_one_batch_ahead_between_them(shared: bool) -> None:
    """A sharded projector steps its shards in turn: with the permit shared (as bootstrap
    shares it) at most one batch is read ahead over all of them; without, one per shard."""
    apps = [BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}) for _ in "abc"]
    for application in apps:
        build_ledger(application)
    permit = ReadAheadPermit()
    shards = [
        PrefetchingSource.of(application, shard, permit if shared else None)
        for shard, application in enumerate(apps)
    ]
    try:
        positions, most = [0, 0, 0], 0
        while True:
            read = 0
            for shard, source in enumerate(shards):
                events = source.read_after(positions[shard], 5)
                plain = LedgerSource.of(apps[shard], shard).read_after(positions[shard], 5)
                assert ids(events) == ids(plain)
                positions[shard] = events[-1].notification_id if events else positions[shard]
                read += len(events)
                most = max(most, held_ahead(shards))
            if not read:
                break
        assert positions == [app.recorder.max_notification_id() for app in apps]
        assert most == (1 if shared else 3)
    finally:
        for source in shards:
            source.close()
    assert permit.take() and not permit.take()  # every batch read ahead gave it back, once


def test_a_projector_gets_its_second_batch_read_ahead_while_it_applies_the_first(
    app: BillingApplication, tmp_path: Path
) -> None:
    untold, told = PrefetchingSource.of(app), PrefetchingSource.of(app)
    views = SqliteDatabase(tmp_path / "views.sqlite3")
    try:
        untold.read_after(0, 7)
        assert untold._ahead is None  # a one-off read: nothing read ahead for nobody
        projector = Projector(told, [PaymentHistory(views)], batch_size=7)
        projector.create()
        assert projector.step() == 7
        assert told._ahead == (7, 7)
        projector.run_until_idle()
        assert projector.positions() == {"payment_history": app.recorder.max_notification_id()}
    finally:
        untold.close()
        told.close()
        views.close()
