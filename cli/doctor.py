"""Reachability checks of the configured Kafka (and its cluster health), PostgreSQL and DuckDB,
for `evledger doctor`."""

from __future__ import annotations

from dataclasses import dataclass

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


def check_cluster(settings: Settings) -> list[Check]:
    """The brokers, the ledger partition's leader and ISR, and under-replicated partitions."""
    from kafka.errors import KafkaError

    from store.cluster_health import cluster_health

    assert settings.kafka_bootstrap is not None
    try:
        health = cluster_health(settings.kafka_bootstrap)
    except KafkaError as error:
        return [Check("kafka cluster", "-", False, f"{type(error).__name__}: {error}")]
    brokers = ", ".join(f"{node}@{address}" for node, address in health.brokers)
    checks = [Check("kafka brokers", f"{len(health.brokers)} live", True, brokers)]
    ledger = health.partition(settings.ledger_topic)
    if ledger is None:
        checks.append(
            Check("ledger partition", f"{settings.ledger_topic}-0", True, "not created yet")
        )
    else:
        writable = ledger.leader >= 0 and len(ledger.isr) >= settings.kafka_min_insync_replicas
        checks.append(
            Check(
                "ledger partition",
                f"{ledger.name}",
                writable,
                f"leader {ledger.leader if ledger.leader >= 0 else 'NONE'}, replicas "
                f"{list(ledger.replicas)}, ISR {list(ledger.isr)} (min ISR "
                f"{settings.kafka_min_insync_replicas})",
            )
        )
    lagging = health.under_replicated
    names = ", ".join(state.name for state in lagging[:5]) + (" ..." if len(lagging) > 5 else "")
    checks.append(
        Check(
            "under-replicated",
            f"{len(lagging)} of {len(health.partitions)} partitions",
            not lagging,
            names or "none: every replica is in sync",
        )
    )
    return checks


def check_postgres(dsn: str) -> Check:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(dsn)
    where = f"{params.get('host', 'local')}:{params.get('port', 5432)}/{params.get('dbname', '')}"
    try:
        with psycopg.connect(dsn, connect_timeout=5) as connection:
            row = connection.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        from bootstrap.secrets import scrub

        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return Check("postgres", scrub(where, dsn), False, scrub(first, dsn))
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
        kafka = check_kafka(settings.kafka_bootstrap)
        checks.append(kafka)
        if kafka.ok:
            checks.extend(check_cluster(settings))
    if settings.pg_dsn is not None:
        checks.append(check_postgres(settings.pg_dsn))
    checks.append(check_duckdb(settings))
    return checks
