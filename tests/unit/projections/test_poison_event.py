"""A ledger event a read model cannot hold: the
projector writes every event before it, names it, and stops that read model only."""

from __future__ import annotations

import json
import math
import socket
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from consumers.counters import IngestCounters
from consumers.metrics import metrics_text, serve_metrics
from domain.application import BillingApplication
from domain.commands import AuthorisePayment, CapturePayment
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.sqlite import SqliteDatabase
from projections.entities import Fact, LedgerEvent
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import LedgerSource, Projector, RetryPolicy
from tests.unit.projections.scenario import T0, build_ledger


@pytest.fixture
def app() -> BillingApplication:
    application = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    build_ledger(application)
    return application


def poison(app: BillingApplication) -> int:
    """Appends a payment the domain accepts but no int64 column holds (the contract now
    refuses it; older ledgers may hold such events); its notification id."""
    before = app.recorder.max_notification_id() or 0
    app.handle(
        AuthorisePayment(
            event_id="poison-1",
            occurred_at=T0,
            payment_id="P-HUGE",
            session_id="S-NONE",
            amount_minor=2**63,
            currency="EUR",
            method="card",
        )
    )
    app.handle(
        CapturePayment(event_id="after-1", occurred_at=T0, payment_id="P-HUGE", amount_minor=1)
    )
    return before + 1  # the Authorised event comes first, then its ProcessedMessage


def test_a_poison_event_stops_only_the_read_models_that_cannot_hold_it(
    app: BillingApplication, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = app.recorder.max_notification_id()
    position = poison(app)
    last = app.recorder.max_notification_id()
    views = SqliteDatabase(tmp_path / "views.sqlite3")
    history, refunds = PaymentHistory(views), RefundStatusView(views)
    analytics = Analytics(DuckDatabase(tmp_path / "analytics.duckdb"))
    projector = Projector(
        LedgerSource.of(app),
        [history, refunds, analytics],
        batch_size=1000,  # the poison is in the middle of one batch
        retry=RetryPolicy(attempts=None),  # a long-running projector: retries for ever
        sleep=lambda seconds: None,
    )
    projector.create()
    projector.run_until_idle()

    # Everything before the poison is written, in the same batch as the poison.
    assert before is not None and position == before + 1
    assert history.position() == before
    assert analytics.position() == before
    assert refunds.position() == last  # refund status has nothing to do with it
    stopped = projector.stopped
    assert set(stopped) == {history.name, analytics.name}
    for name in (history.name, analytics.name):
        assert stopped[name].position == position
        assert "Authorised" in stopped[name].event_type
        assert stopped[name].error
        assert f"ledger event {position}" in stopped[name].describe()
    assert any("stopped at ledger event" in record.message for record in caplog.records)
    metrics = metrics_text(IngestCounters(), projector)
    assert (
        f'evledger_projection_stopped{{event_type="Payment.Authorised",position="{position}",'
        'projection="payment_history"} 1.0' in metrics
    )
    assert 'projection="refund_status"} 0.0' in metrics
    assert_not_ready(projector, stopped_at=position)

    # A stopped read model stays stopped (nothing past the poison), the others go on.
    app.handle(
        CapturePayment(event_id="after-2", occurred_at=T0, payment_id="P-HUGE", amount_minor=2)
    )
    projector.run_until_idle()
    assert history.position() == before
    assert refunds.position() == app.recorder.max_notification_id()


class CountedHistory(PaymentHistory):
    """Payment history on a real database that counts the transactions it is asked for."""

    transactions = 0

    def apply(self, batch: Sequence[LedgerEvent], facts: Sequence[Fact] | None = None) -> None:
        self.transactions += 1
        super().apply(batch, facts)


def test_a_poison_event_deep_in_a_large_batch_is_found_by_halves(tmp_path: Path) -> None:
    """The search costs about two transactions per halving of the batch, not one per event,
    and still stops at the exact event with every event before it written."""
    app = BillingApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    for number in range(1500):
        app.handle(
            AuthorisePayment(
                event_id=f"before-{number}",
                occurred_at=T0,
                payment_id=f"P-{number}",
                session_id="S-NONE",
                amount_minor=100 + number,
                currency="EUR",
                method="card",
            )
        )
    position = poison(app)
    last = app.recorder.max_notification_id() or 0
    history = CountedHistory(SqliteDatabase(tmp_path / "views.sqlite3"))
    projector = Projector(
        LedgerSource.of(app),
        [history],
        batch_size=last,  # the whole ledger in one batch, the poison near its end
        retry=RetryPolicy(attempts=1),  # no error here is transient
        sleep=lambda seconds: None,
    )
    projector.create()
    projector.run_until_idle()

    assert position == 3001 and last > position
    assert history.position() == position - 1
    assert projector.stopped[history.name].position == position
    assert "Authorised" in projector.stopped[history.name].event_type
    # The whole batch, then at most two transactions per halving (one per event would be
    # about 3,000): here 1 + 2 x 9 halvings where the poison is in the second half, then
    # 2 where it is in the first.
    assert history.transactions <= 1 + 2 * math.ceil(math.log2(last))
    assert history.transactions == 21
    assert len(history.snapshot()["payment_history"]) == 1500


def assert_not_ready(projector: Projector, stopped_at: int) -> None:
    """`run`'s port answers /readyz with 503 naming the stopped read models, over real HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    serve_metrics(IngestCounters(), port, projector)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert refused.value.code == 503
    body = json.loads(refused.value.read())
    assert body["ready"] is False
    assert body["projections"]["payment_history"] == {
        "status": "stopped",
        "position": stopped_at,
        "event_type": "Payment.Authorised",
    }
    assert body["projections"]["refund_status"] == {"status": "running"}
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as scraped:
        assert b"evledger_projection_stopped" in scraped.read()


def test_on_shards_readyz_names_the_shard_of_a_stop_and_gives_each_shards_lag(
    tmp_path: Path,
) -> None:
    """Shard 1 holds the poison: its payment history stops there, shard 0's goes on."""
    from bootstrap.ledgers import EmbeddedLedger
    from consumers.metrics import readiness
    from projections.sharded import ShardedProjector

    ledgers = [EmbeddedLedger(tmp_path / f"shard-{shard}") for shard in range(2)]
    apps = [BillingApplication(env=ledger.environment()) for ledger in ledgers]
    for app in apps:
        build_ledger(app)
    position = poison(apps[1])
    heads = [app.recorder.max_notification_id() or 0 for app in apps]
    views = SqliteDatabase(tmp_path / "views.sqlite3")
    models = [PaymentHistory(views), RefundStatusView(views)]
    projectors = [
        Projector(
            LedgerSource.of(app, shard),
            [model.for_shard(shard) for model in models],
            retry=RetryPolicy(attempts=None),
            sleep=lambda seconds: None,
        )
        for shard, app in enumerate(apps)
    ]
    sharded = ShardedProjector(projectors[0].source, models, shards=projectors)
    sharded.create()
    sharded.run_until_idle()

    status, body = readiness(sharded, [ledger.head() for ledger in ledgers])

    assert (status, body["ready"]) == (503, False)
    assert body["projections"] == {
        "payment_history": {
            "shard": 1,
            "status": "stopped",
            "position": position,
            "event_type": "Payment.Authorised",
        },
        "refund_status": {"status": "running"},
    }
    first, second = body["shards"]
    assert (first["shard"], first["ledger"], first["ledger_position"]) == (0, "ok", heads[0])
    assert first["projections"] == {
        name: {"status": "running", "position": heads[0], "lag": 0}
        for name in ("payment_history", "refund_status")
    }
    assert (second["shard"], second["ledger_position"]) == (1, heads[1])
    assert second["projections"] == {
        "payment_history": {
            "status": "stopped",
            "position": position - 1,
            "lag": heads[1] - (position - 1),
        },
        "refund_status": {"status": "running", "position": heads[1], "lag": 0},
    }
