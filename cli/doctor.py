"""Reachability checks of the configured Kafka (and its cluster health, each ledger shard's
partition), PostgreSQL and DuckDB, and each ledger shard's head with the projections' lag
on it, for `evledger doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the bootstrap package pulls in every adapter; `--help` needs none
    from bootstrap import Root
    from bootstrap.ledgers import KafkaSite
    from store.cluster_health import PartitionState


@dataclass(frozen=True)
class Check:
    service: str
    where: str
    ok: bool
    detail: str


def check_kafka(site: KafkaSite) -> Check:
    from kafka.errors import KafkaError

    bootstrap = site.bootstrap_servers
    try:
        admin = site.connection.admin(request_timeout_ms=5000, bootstrap_timeout_ms=5000)
        try:
            topics = admin.list_topics()
        finally:
            admin.close()
    except KafkaError as error:
        return Check("kafka", bootstrap, False, f"{type(error).__name__}: {error}")
    return Check("kafka", bootstrap, True, f"{len(topics)} topics")


def check_cluster(site: KafkaSite) -> list[Check]:
    """The brokers, the ledger partition's leader and ISR, and under-replicated partitions."""
    from kafka.errors import KafkaError

    from store.cluster_health import cluster_health

    try:
        health = cluster_health(site.connection)
    except KafkaError as error:
        return [Check("kafka cluster", "-", False, f"{type(error).__name__}: {error}")]
    brokers = ", ".join(f"{node}@{address}" for node, address in health.brokers)
    checks = [Check("kafka brokers", f"{len(health.brokers)} live", True, brokers)]
    for topic in site.ledger_topics:
        checks.append(_ledger_partition(site, health.partition(topic), topic))
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


def _ledger_partition(site: KafkaSite, ledger: PartitionState | None, topic: str) -> Check:
    """One ledger shard's partition: writable when it has a leader and enough in sync."""
    if ledger is None:
        return Check("ledger partition", f"{topic}-0", True, "not created yet")
    writable = ledger.leader >= 0 and len(ledger.isr) >= site.min_insync_replicas
    return Check(
        "ledger partition",
        f"{ledger.name}",
        writable,
        f"leader {ledger.leader if ledger.leader >= 0 else 'NONE'}, replicas "
        f"{list(ledger.replicas)}, ISR {list(ledger.isr)} (min ISR "
        f"{site.min_insync_replicas})",
    )


def check_views(root: Root) -> Check:
    """The payment history and refund status database answers."""
    from projections.databases.errors import ReadModelDatabaseError

    where = root.views.describe()
    db = root.views_database()
    try:
        db.execute("SELECT 1 AS ok")
    except ReadModelDatabaseError as error:
        from bootstrap.secrets import scrub

        first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return Check("views", where, False, scrub(first, root.settings.pg_dsn))
    finally:
        db.close()
    return Check("views", where, True, "reachable")


def check_duckdb(root: Root) -> Check:
    """The analytics file readers open (the projector's readers' copy) can be read."""
    from projections.analytics_queries import open_read_only
    from projections.databases.errors import ReadModelDatabaseError

    path = root.settings.analytics_path
    try:
        db = open_read_only(path)
    except FileNotFoundError:
        return Check("duckdb", str(path), True, "not built yet (run `evledger project`)")
    try:
        row = db.execute("SELECT version() AS version")[0]
    except ReadModelDatabaseError as error:
        return Check("duckdb", str(path), False, str(error).strip().splitlines()[0])
    finally:
        db.close()
    return Check("duckdb", str(path), True, f"duckdb {row['version']}")


def _known_positions(root: Root, shards: int) -> list[dict[str, int | None]]:
    """Each projection's position per shard; None where its database does not answer (the
    views and duckdb rows say why)."""
    from audit.ledger_lag import VIEW_PROJECTIONS, shard_positions
    from projections.analytics_queries import open_read_only
    from projections.databases.errors import ReadModelDatabaseError

    positions: list[dict[str, int | None]] = [
        dict.fromkeys((*VIEW_PROJECTIONS, "analytics")) for _ in range(shards)
    ]
    try:
        db = root.views_database()
        try:
            views = shard_positions(db, VIEW_PROJECTIONS, shards)
        finally:
            db.close()
        for known, found in zip(positions, views, strict=True):
            known.update(found)
    except ReadModelDatabaseError:
        pass  # unknown: shown as "?"
    try:
        analytics = open_read_only(root.settings.analytics_path)
        try:
            built = shard_positions(analytics, ["analytics"], shards)
        finally:
            analytics.close()
        for known, found in zip(positions, built, strict=True):
            known.update(found)
    except (FileNotFoundError, ReadModelDatabaseError):
        pass  # not built yet, or unreadable: shown as "?"
    return positions


def check_shards(root: Root) -> list[Check]:
    """Each ledger shard's head (its last notification id) and each projection's lag
    behind it (events not yet applied); a projection past the head fails the shard's row."""
    from audit.ledger_lag import shard_lags

    shards = root.ledger.shards
    positions = _known_positions(root, shards)
    heads = [root.ledger.shard(shard).head() for shard in range(shards)]
    try:
        lags = shard_lags(heads, positions)
    finally:
        for head in heads:
            head.close()
    checks = []
    for lag in lags:
        where = f"shard {lag.shard} of {shards}"
        if lag.head is None:
            checks.append(Check("ledger shard", where, False, lag.ledger))
            continue
        behind = ", ".join(
            f"{name} {'?' if lag.lag(name) is None else lag.lag(name)}" for name in lag.positions
        )
        ahead = lag.ahead()  # the read models are another ledger's
        detail = f"head {lag.head}; lag: {behind}" + ("" if ahead is None else f"; {ahead}")
        checks.append(Check("ledger shard", where, ahead is None, detail))
    return checks


def run_checks(root: Root) -> list[Check]:
    from bootstrap.ledgers import NeedsKafka

    checks = []
    reachable = True
    try:
        site = root.ledger.kafka("doctor")
    except NeedsKafka:
        checks.append(Check("kafka", "-", True, root.ledger.description))
    else:
        kafka = check_kafka(site)
        checks.append(kafka)
        reachable = kafka.ok
        if kafka.ok:
            checks.extend(check_cluster(site))
    checks.append(check_views(root))
    checks.append(check_duckdb(root))
    if reachable:
        checks.extend(check_shards(root))
    return checks
