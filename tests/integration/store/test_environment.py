"""The ledger environment the root builds: one application on embedded SQLite or on Kafka."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from store.index import index_file
from tests.integration.store.conftest import delete_topics
from tests.integration.store.test_ledger import Wallets


def test_embedded_default_is_sqlite_in_the_data_dir(tmp_path: Path) -> None:
    env = bootstrap(Settings(data_dir=tmp_path / "data")).ledger.environment()
    assert env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    app = Wallets(env=env)
    wallet_id = app.open("ada")
    app.credit(wallet_id, 5)
    app.close()
    assert (tmp_path / "data" / "ledger.sqlite3").exists()
    reopened = Wallets(env=env)
    assert reopened.repository.get(wallet_id).balance == 5
    assert reopened.recorder.max_notification_id() == 2
    reopened.close()


@pytest.mark.kafka
def test_kafka_settings_select_the_kafka_store(
    kafka_bootstrap: str, topic_name: str, tmp_path: Path
) -> None:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_name, data_dir=tmp_path)
    env = bootstrap(settings).ledger.environment()
    assert env["PERSISTENCE_MODULE"] == "store.factory:KafkaFactory"
    assert env["KAFKA_LEDGER_TOPIC"] == settings.ledger_topic
    try:
        app = Wallets(env={**env, "IS_SNAPSHOTTING_ENABLED": "y"})
        wallet_id = app.open("ada")
        for amount in (1, 2, 3):
            app.credit(wallet_id, amount)
        app.take_snapshot(wallet_id)
        app.credit(wallet_id, 4)
        assert app.snapshots is not None
        snapshots = list(app.snapshots.get(wallet_id))
        assert [s.originator_version for s in snapshots] == [4]
        assert app.repository.get(wallet_id).balance == 10
        assert app.recorder.max_notification_id() == 5  # snapshots take no ledger ids
        app.close()
        # The index was kept in the data dir and serves a new instance.
        assert index_file(tmp_path / "index", settings.ledger_topic).path.exists()
        again = Wallets(env=env)
        assert again.repository.get(wallet_id).balance == 10
        again.close()
    finally:
        delete_topics(
            kafka_bootstrap, [settings.ledger_topic, f"{settings.ledger_topic}.snapshots"]
        )
