"""The eventsourcing library's own recorder test cases, run against the Kafka store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    NotSupportedError,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.popo import POPOTrackingRecorder
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
)
from eventsourcing.utils import Environment

from store.factory import KafkaFactory
from store.recorders import KafkaAggregateRecorder, KafkaApplicationRecorder
from tests.integration.store.conftest import delete_topics, fresh_topic_name

pytestmark = pytest.mark.kafka


class KafkaRecorderTests:
    """Gives each test case a fresh topic per recorder and tidies up afterwards."""

    bootstrap: str
    factories: list[KafkaFactory]
    topics: list[str]

    @pytest.fixture(autouse=True)
    def _kafka(self, kafka_bootstrap: str) -> Iterator[None]:
        self.bootstrap = kafka_bootstrap
        self.factories = []
        self.topics = []
        yield
        for factory in self.factories:
            factory.close()
        delete_topics(kafka_bootstrap, self.topics)

    def new_factory(self, **env: str) -> KafkaFactory:
        topic = fresh_topic_name()
        self.topics += [topic, f"{topic}.snapshots"]
        factory = KafkaFactory(
            {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_LEDGER_TOPIC": topic, **env}
        )
        self.factories.append(factory)
        return factory


class TestKafkaAggregateRecorder(KafkaRecorderTests, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder("events")


class TestKafkaSnapshotRecorder(KafkaRecorderTests, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder("snapshots")


class TestKafkaApplicationRecorder(KafkaRecorderTests, ApplicationRecorderTestCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.new_factory().application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()

    def test_concurrent_no_conflicts(self, initial_position: int = 0) -> None:
        # The library's case, plus what it leaves unchecked: ids are 1..N without gaps.
        super().test_concurrent_no_conflicts(initial_position)
        recorder = self.factories[-1].application_recorder()
        notifications = recorder.select_notifications(start=None, limit=20_000)
        assert [n.id for n in notifications] == list(range(1, 10_001))
        assert recorder.max_notification_id() == 10_000


class TestKafkaInfrastructureFactory(
    KafkaRecorderTests, InfrastructureFactoryTestCase[KafkaFactory]
):
    def setUp(self) -> None:
        topic = fresh_topic_name()
        self.topics += [topic, f"{topic}.snapshots"]
        self.env = Environment(
            "TestCase",
            {
                "PERSISTENCE_MODULE": "store.factory:KafkaFactory",
                "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                "KAFKA_LEDGER_TOPIC": topic,
            },
        )
        super().setUp()

    def expected_factory_class(self) -> type[KafkaFactory]:
        return KafkaFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return KafkaAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return KafkaApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return POPOTrackingRecorder  # unused: the ledger keeps no tracking records

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return POPOTrackingRecorder  # unused: the ledger keeps no tracking records

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        raise NotImplementedError

    def test_create_tracking_recorder(self) -> None:
        # Projections track their position in their own database (Guarantee 6).
        with pytest.raises(NotSupportedError):
            self.factory.tracking_recorder()

    def test_create_process_recorder(self) -> None:
        with pytest.raises(NotSupportedError):
            self.factory.process_recorder()

    def test_missing_bootstrap_is_one_clear_error(self) -> None:
        with pytest.raises(OSError, match="KAFKA_BOOTSTRAP_SERVERS"):
            KafkaFactory({"KAFKA_LEDGER_TOPIC": "x"})
