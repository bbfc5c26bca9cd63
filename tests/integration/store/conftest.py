"""Helpers for the Kafka store tests: fresh ledger topics, removed after each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


def delete_topics(bootstrap: str, topics: list[str]) -> None:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    if not topics:
        return
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = set(admin.list_topics())
        doomed = [topic for topic in topics if topic in existing]
        if doomed:
            admin.delete_topics(doomed)
    except KafkaError:
        pass  # A leftover test topic is untidy, not wrong: names never repeat.
    finally:
        admin.close()


@pytest.fixture
def ledger_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    """A fresh ledger topic name (not kafka_topic's, which serves as an input topic); the
    store creates it (and its snapshots topic)."""
    name = f"{topic_name}.ledger"
    yield name
    delete_topics(kafka_bootstrap, [name, f"{name}.snapshots"])


def fresh_topic_name(prefix: str = "test.store") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:12]}"
