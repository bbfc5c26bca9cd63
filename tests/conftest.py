"""Fixtures for the real services. A test that needs Kafka or PostgreSQL fails, never skips,
when the service is missing: `make test` (scripts/services up) starts them."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from store.kafka_clients import KafkaConnection

# The addresses scripts/services uses, so that a bare `pytest` works after `scripts/services up`.
DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PG_DSN = "postgresql://evledger:evledger@127.0.0.1:5433/evledger"

# The services are taken from the environment once; then every EVLEDGER_* variable leaves
# this process, so no test (nor a subprocess it starts) is steered by the caller's shell.
KAFKA_BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or DEFAULT_KAFKA_BOOTSTRAP
PG_DSN = os.environ.get("EVLEDGER_PG_DSN") or DEFAULT_PG_DSN
for _variable in [name for name in os.environ if name.startswith("EVLEDGER_")]:
    del os.environ[_variable]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    from kafka.errors import KafkaError

    bootstrap = KAFKA_BOOTSTRAP
    try:
        admin = KafkaConnection(bootstrap).admin(
            request_timeout_ms=5000, bootstrap_timeout_ms=10000
        )
        admin.list_topics()
        admin.close()
    except KafkaError as error:
        pytest.fail(
            f"Kafka is not reachable at {bootstrap} ({error!r}); "
            "start it with `scripts/services up` (make test does)",
            pytrace=False,
        )
    return bootstrap


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    import psycopg

    dsn = PG_DSN
    try:
        psycopg.connect(dsn, connect_timeout=5).close()
    except psycopg.Error as error:
        pytest.fail(
            f"PostgreSQL is not reachable at {dsn} ({error}); "
            "start it with `scripts/services up` (make test does)",
            pytrace=False,
        )
    return dsn


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A fresh topic name per test, so that tests never see each other's records."""
    return f"test.{request.node.name[:60]}.{uuid.uuid4().hex[:8]}".replace("[", "-").replace(
        "]", ""
    )


@pytest.fixture
def kafka_topic(kafka_bootstrap: str, topic_name: str) -> Iterator[str]:
    """A one-partition topic created for the test and deleted after it."""
    from kafka.admin import NewTopic

    admin = KafkaConnection(kafka_bootstrap).admin()
    admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1)])
    try:
        yield topic_name
    finally:
        admin.delete_topics([topic_name])
        admin.close()
