"""The cluster tests' fixtures: a three-node KRaft cluster started through scripts/services
(left running if it already ran, stopped at the end if this session started it), and a
pipeline of real `evledger` processes pointed at it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.cluster.cluster import Cluster, services
from tests.integration.cluster.pipeline import Pipeline


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    # Only the brokers count: the status also says whether PostgreSQL runs.
    brokers = json.loads(services("status", "--json"))["brokers"]
    was_running = any(broker["running"] for broker in brokers)
    services("up")
    running = Cluster()
    try:
        yield running
    finally:
        if not was_running:
            services("down")


@pytest.fixture
def healthy_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """The cluster with every node up and in sync before and after the test, so that one
    test's kill never leaks into the next."""
    cluster.heal()
    try:
        yield cluster
    finally:
        cluster.heal()


@pytest.fixture
def fresh_database(pg_dsn: str) -> Iterator[str]:
    """A PostgreSQL database of the test's own, so its read models start empty."""
    import uuid

    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"it_cluster_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield make_conninfo("", **{**conninfo_to_dict(pg_dsn), "dbname": name})
    finally:
        with psycopg.connect(pg_dsn, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture
def pipeline(
    healthy_cluster: Cluster, fresh_database: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Pipeline]:
    name = request.node.name.split("[")[0].removeprefix("test_")[:20].replace("_", "-")
    running = Pipeline(healthy_cluster.bootstrap, fresh_database, tmp_path, name)
    try:
        yield running
    finally:
        running.close()
