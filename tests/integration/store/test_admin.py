"""ensure_topic: a missing topic is created once, with its partitions and kept forever; an
existing one is found, not created again."""

from __future__ import annotations

import pytest

from store.admin import TopicSpec, ensure_topic
from store.kafka_clients import KafkaConnection
from tests.integration.store.conftest import delete_topics

pytestmark = pytest.mark.kafka


def test_a_missing_topic_is_created_once_and_then_found(
    kafka_bootstrap: str, topic_name: str
) -> None:
    connection = KafkaConnection(kafka_bootstrap)
    spec = TopicSpec(topic_name, partitions=2)
    try:
        assert ensure_topic(connection, spec) is True
        assert ensure_topic(connection, spec) is False
        admin = connection.admin()
        try:
            assert topic_name in admin.list_topics()
            [described] = admin.describe_topics([topic_name])
            assert len(described["partitions"]) == 2
        finally:
            admin.close()
    finally:
        delete_topics(kafka_bootstrap, [topic_name])
