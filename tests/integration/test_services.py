"""Smoke tests that prove the services are real: Kafka transactions and PostgreSQL DDL."""

from __future__ import annotations

import uuid

import psycopg

from store.kafka_clients import KafkaConnection
from tests.kafka_topics import read_topic


def test_read_committed_consumer_sees_only_the_committed_transaction(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = KafkaConnection(kafka_bootstrap).producer(
        transactional_id=f"smoke-{uuid.uuid4()}",
        acks="all",
    )
    producer.init_transactions()

    producer.begin_transaction()
    for n in range(3):
        producer.send(kafka_topic, f"committed-{n}".encode())
    producer.commit_transaction()

    producer.begin_transaction()
    for n in range(2):
        producer.send(kafka_topic, f"aborted-{n}".encode())
    producer.flush()
    producer.abort_transaction()
    producer.close()

    committed = [r.value for r in read_topic(kafka_bootstrap, kafka_topic, "read_committed")]
    everything = [r.value for r in read_topic(kafka_bootstrap, kafka_topic, "read_uncommitted")]

    assert committed == [b"committed-0", b"committed-1", b"committed-2"]
    # The aborted records really reached the log: only the isolation level hides them.
    assert everything == [*committed, b"aborted-0", b"aborted-1"]


def test_postgres_creates_and_drops_a_table(pg_dsn: str) -> None:
    table = f"smoke_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, amount_minor bigint)")
        connection.execute(f"INSERT INTO {table} VALUES (1, 1999), (2, 1)")
        row = connection.execute(f"SELECT sum(amount_minor) FROM {table}").fetchone()
        assert row == (2000,)
        connection.execute(f"DROP TABLE {table}")
        exists = connection.execute("SELECT to_regclass(%s)", (table,)).fetchone()
        assert exists == (None,)
