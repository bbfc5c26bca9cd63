"""The Kafka ledger scan against the LedgerScan contract, on the real broker (topics
unique to the test class, deleted after it)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from audit.kafka_scan import KafkaLedgerScan
from audit.scan import LedgerScan
from bootstrap.settings import Settings
from store.kafka_clients import KafkaConnection
from tests.integration.audit.scan_contract import LedgerScanTestCase
from tests.integration.store.conftest import delete_topics

pytestmark = [pytest.mark.kafka]


class TestKafkaLedgerScan(LedgerScanTestCase):
    chain_origin = "recorded"

    def ledger_settings(self, request: pytest.FixtureRequest, data_dir: Path) -> Settings:
        return Settings(
            kafka_bootstrap=request.getfixturevalue("kafka_bootstrap"),
            topic_prefix=f"test.scan.{uuid.uuid4().hex[:8]}",
            data_dir=data_dir,
        )

    def forget(self, settings: Settings) -> None:
        assert settings.kafka_bootstrap is not None
        topic = settings.ledger_topic
        delete_topics(settings.kafka_bootstrap, [topic, f"{topic}.snapshots"])

    def scan(self, settings: Settings) -> LedgerScan:
        assert settings.kafka_bootstrap is not None
        return KafkaLedgerScan(settings.kafka_connection(), settings.ledger_topic)

    def place(self, settings: Settings) -> str:
        return settings.ledger_topic

    def missing_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        return KafkaLedgerScan(
            KafkaConnection(bootstrap), f"test.no-such-ledger.{uuid.uuid4().hex[:8]}"
        )

    def empty_scan(self, request: pytest.FixtureRequest, tmp_path: Path) -> LedgerScan:
        bootstrap = request.getfixturevalue("kafka_bootstrap")
        return KafkaLedgerScan(KafkaConnection(bootstrap), request.getfixturevalue("kafka_topic"))
