"""The known scenario through the Kafka-backed application, projected into PostgreSQL and
DuckDB by a projector that reads the ledger topic through the store's recorder."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.analytics import Analytics
from projections.databases.duckdb import DuckDatabase
from projections.databases.postgres import PostgresDatabase
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView
from projections.runner import Projector
from tests.integration.projections.test_known_scenario import check_views
from tests.integration.store.conftest import delete_topics
from tests.unit.projections.scenario import build_ledger

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


def test_known_scenario_on_the_kafka_ledger(
    kafka_bootstrap: str,
    topic_name: str,
    tmp_path: Path,
    pg: PostgresDatabase,
    duck: DuckDatabase,
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_name, data_dir=tmp_path)
    try:
        writer = BillingApplication(env=bootstrap(settings).ledger.environment())
        build_ledger(writer)
        last = writer.recorder.max_notification_id()
        writer.close()
        # A separate reader, as the projector process would be.
        with bootstrap(settings).ledger_source() as source:
            models = [PaymentHistory(pg), RefundStatusView(pg), Analytics(duck)]
            projector = Projector(source, models, batch_size=16)
            projector.create()
            projector.run_until_idle()
        assert [model.position() for model in models] == [last, last, last]
        check_views(pg)
        assert duck.execute("SELECT COUNT(*) AS n FROM fact_payments")[0]["n"] == 4
        assert duck.execute("SELECT balanced FROM trial_balance_check") == [{"balanced": True}]
    finally:
        delete_topics(
            kafka_bootstrap, [settings.ledger_topic, f"{settings.ledger_topic}.snapshots"]
        )
