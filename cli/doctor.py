"""Reachability checks of the configured Kafka, PostgreSQL and DuckDB, for `evledger doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the bootstrap package pulls in every adapter; `--help` needs none
    from bootstrap.settings import Settings


@dataclass(frozen=True)
class Check:
    service: str
    where: str
    ok: bool
    detail: str


def check_kafka(bootstrap: str) -> Check:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=5000, bootstrap_timeout_ms=5000
        )
        try:
            topics = admin.list_topics()
        finally:
            admin.close()
    except KafkaError as error:
        return Check("kafka", bootstrap, False, f"{type(error).__name__}: {error}")
    return Check("kafka", bootstrap, True, f"{len(topics)} topics")


def check_postgres(dsn: str) -> Check:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    where = f"{params.get('host', 'local')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        return Check("postgres", where, False, str(error).strip().splitlines()[0])
    return Check("postgres", where, True, f"server {row[0] if row else '?'}")


def check_duckdb(settings: Settings) -> Check:
    import duckdb

    path = settings.analytics_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with duckdb.connect(str(path)) as connection:
            row = connection.execute("SELECT version()").fetchone()
    except (OSError, duckdb.Error) as error:
        return Check("duckdb", str(path), False, str(error))
    return Check("duckdb", str(path), True, f"duckdb {row[0] if row else '?'}")


def run_checks(settings: Settings) -> list[Check]:
    checks = []
    if settings.kafka_bootstrap is None:
        checks.append(Check("kafka", "-", True, f"embedded default in {settings.data_dir}"))
    else:
        checks.append(check_kafka(settings.kafka_bootstrap))
    if settings.pg_dsn is not None:
        checks.append(check_postgres(settings.pg_dsn))
    checks.append(check_duckdb(settings))
    return checks
