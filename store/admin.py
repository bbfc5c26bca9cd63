"""Topic management: create a topic, immutable and with its partitions (one for a ledger
topic), if missing; refuse one whose partition count differs."""

from __future__ import annotations

import time
from dataclasses import dataclass

from store.kafka_clients import KafkaConnection


class TopicMisconfigured(RuntimeError):
    """The ledger topic exists but cannot hold a ledger (e.g. more than one partition)."""


class ReplicationTooHigh(TopicMisconfigured):
    """The configured replication factor is larger than the cluster: no topic is created."""


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is made: kept forever; a ledger topic has one partition (one writer,
    one order), an ingest topic one per ledger shard."""

    name: str
    replication_factor: int = 1
    min_insync_replicas: int = 1
    partitions: int = 1

    def configs(self) -> dict[str, str]:
        # Guarantee 1: nothing is ever deleted, so no retention by time or size and no
        # compaction (compaction would drop all but an aggregate's last event).
        return {
            "retention.ms": "-1",
            "retention.bytes": "-1",
            "cleanup.policy": "delete",
            "min.insync.replicas": str(self.min_insync_replicas),
        }


def ensure_topic(connection: KafkaConnection, spec: TopicSpec, timeout_ms: int = 15000) -> bool:
    """Create the topic if it is missing; return True if it was created by this call.

    A broker of the cluster that just died makes kafka-python's admin client fail instead
    of trying another: such retriable errors are retried until the timeout.
    """
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        try:
            return _ensure_topic(connection, spec, timeout_ms)
        except KafkaError as error:
            if not getattr(error, "retriable", False) or time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _ensure_topic(connection: KafkaConnection, spec: TopicSpec, timeout_ms: int) -> bool:
    from kafka.admin import NewTopic
    from kafka.errors import InvalidReplicationFactorError, TopicAlreadyExistsError

    admin = connection.admin(
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        client_id="evledger-admin",
    )
    try:
        # The one topic's metadata, not the cluster's list of every topic (thousands on a
        # shared cluster: a tenth of a second per topic at each start). Any answer but the
        # topic's (unknown, not authorised) tries the creation, whose answer decides.
        described = admin.describe_topics([spec.name])
        created = not described or described[0]["error_code"] != 0
        # Only a missing topic is created: CreateTopics goes to the controller, which may be
        # the broker that just died, while any live broker can say what exists.
        try:
            if created:
                admin.create_topics(
                    [
                        NewTopic(
                            spec.name,
                            num_partitions=spec.partitions,
                            replication_factor=spec.replication_factor,
                            topic_configs=spec.configs(),
                        )
                    ],
                    timeout_ms=timeout_ms,
                )
        except TopicAlreadyExistsError:
            created = False
        except InvalidReplicationFactorError as error:
            raise ReplicationTooHigh(_too_high(admin, spec, str(connection))) from error
        partitions = _partition_count(admin, spec.name)
        if partitions != spec.partitions:
            raise TopicMisconfigured(_wrong_partitions(spec, partitions))
        return created
    finally:
        admin.close()


def _wrong_partitions(spec: TopicSpec, partitions: int) -> str:
    if spec.partitions == 1:
        return (
            f"ledger topic {spec.name!r} has {partitions} partitions; a ledger needs "
            "exactly one (one writer numbers its records in one order)"
        )
    return (
        f"topic {spec.name!r} has {partitions} partition(s), not {spec.partitions}: it feeds "
        f"{spec.partitions} ledger shards, one partition each; the shard count of an existing "
        "ledger cannot change (start a new EVLEDGER_TOPIC_PREFIX to grow)"
    )


def _too_high(admin: object, spec: TopicSpec, bootstrap_servers: str) -> str:
    """Why the broker refused the replication factor, in the settings' terms."""
    try:
        brokers = len(admin.describe_cluster()["brokers"])  # type: ignore[attr-defined]
    except Exception:  # the refusal itself is the news; the count only helps
        brokers = None
    size = f"the {brokers} live broker(s)" if brokers is not None else "the brokers"
    return (
        f"cannot create topic {spec.name!r} with replication factor {spec.replication_factor}: "
        f"more than {size} of the cluster at {bootstrap_servers}; set "
        "EVLEDGER_KAFKA_REPLICATION_FACTOR (and EVLEDGER_KAFKA_MIN_INSYNC_REPLICAS) no higher "
        "than the number of brokers"
    )


def _partition_count(admin: object, topic: str, wait_s: float = 10.0) -> int:
    # A just-created topic can show no partitions until its metadata has propagated.
    deadline = time.monotonic() + wait_s
    while True:
        described = admin.describe_topics([topic])  # type: ignore[attr-defined]
        count = len(described[0]["partitions"]) if described else 0
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.05)
