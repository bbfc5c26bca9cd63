"""The projector loop on real SQLite read models: gaps stop it, races are detected,
transient errors are retried."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import ApplicationRecorder, Notification

from domain.application import BillingApplication
from projections.databases.sqlite import SqliteDatabase
from projections.facts import Fact, LedgerEvent
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerGapError, LedgerSource, Projector, RetryPolicy
from projections.tracking import ProjectionPositionConflict
from tests.unit.projections.scenario import build_ledger


@pytest.fixture
def app() -> BillingApplication:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    return application


@pytest.fixture
def db(tmp_path: Path) -> SqliteDatabase:
    return SqliteDatabase(tmp_path / "views.sqlite3")


class HidingRecorder:
    """A recorder whose ledger lost notification 10 (what a gap would look like)."""

    def __init__(self, recorder: ApplicationRecorder) -> None:
        self.recorder = recorder

    def select_notifications(self, start: int, limit: int, **kwargs: Any) -> Sequence[Notification]:
        found = self.recorder.select_notifications(start, limit, **kwargs)
        return [n for n in found if n.id != 10]

    def max_notification_id(self) -> int | None:
        return self.recorder.max_notification_id()


def test_a_gap_stops_the_projector_loudly_at_the_last_good_position(
    app: BillingApplication, db: SqliteDatabase
) -> None:
    source = LedgerSource(HidingRecorder(app.recorder), app.mapper)  # type: ignore[arg-type]
    model = PaymentHistory(db)
    projector = Projector(source, [model], batch_size=4)
    projector.create()
    with pytest.raises(LedgerGapError, match="notification 10 is missing"):
        projector.run_until_idle()
    assert model.position() == 8


def test_a_racing_projector_cannot_apply_a_batch_twice(
    app: BillingApplication, db: SqliteDatabase
) -> None:
    events = LedgerSource.of(app).read_after(0, 100)
    first, second = PaymentHistory(db), PaymentHistory(db)
    first.create()
    first.apply(events[:10])
    with pytest.raises(ProjectionPositionConflict, match="is at 10, not 0"):
        second.apply(events[:10])
    # A projector with a stale idea of the position re-reads it and carries on.
    stale = Projector(LedgerSource.of(app), [second], batch_size=7)
    stale._positions[second.name] = 0
    stale.run_until_idle()
    assert second.position() == app.recorder.max_notification_id()


def test_transient_errors_are_retried_with_backoff(
    app: BillingApplication, db: SqliteDatabase, caplog: pytest.LogCaptureFixture
) -> None:
    class Flaky(RefundStatusView):
        failures = 2

        def apply(self, batch: Sequence[LedgerEvent], facts: Sequence[Fact] | None = None) -> None:
            if Flaky.failures:
                Flaky.failures -= 1
                raise ConnectionError("database restarting")
            super().apply(batch, facts)

    delays: list[float] = []
    model = Flaky(db)
    projector = Projector(
        LedgerSource.of(app),
        [model],
        retry=RetryPolicy(attempts=5, first_delay_s=0.5),
        sleep=delays.append,
    )
    projector.create()
    progress = projector.run_until_idle()
    assert delays == [0.5, 1.0]
    assert progress[model.name].retries == 2
    assert model.position() == app.recorder.max_notification_id()
    assert "database restarting" in caplog.text
