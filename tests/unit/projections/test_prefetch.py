"""The read-ahead ledger source gives exactly what the plain one gives, whatever is asked."""

from __future__ import annotations

import pytest

from domain.application import BillingApplication
from projections.facts import LedgerEvent
from projections.prefetch import PrefetchingSource
from projections.runner import LedgerSource
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
