"""What a Kafka cluster looks like to evledger: live brokers, partition leaders and ISRs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from store.kafka_clients import KafkaConnection

# The brokers' own topics that transactions and consumer groups depend on; list_topics()
# leaves them out.
INTERNAL_TOPICS = ("__consumer_offsets", "__transaction_state")


@dataclass(frozen=True)
class PartitionState:
    """One partition as the controller last decided: leader (-1: none), replicas, ISR."""

    topic: str
    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)

    @property
    def name(self) -> str:
        return f"{self.topic}-{self.partition}"


@dataclass(frozen=True)
class ClusterHealth:
    brokers: tuple[tuple[int, str], ...]  # (node id, host:port), live ones only
    partitions: tuple[PartitionState, ...]

    def partition(self, topic: str, partition: int = 0) -> PartitionState | None:
        for state in self.partitions:
            if state.topic == topic and state.partition == partition:
                return state
        return None

    @property
    def under_replicated(self) -> list[PartitionState]:
        return [state for state in self.partitions if state.under_replicated]


def cluster_health(
    connection: KafkaConnection, topics: Sequence[str] | None = None, timeout_ms: int = 5000
) -> ClusterHealth:
    """The live brokers, and the partitions of `topics` (None: every topic, internal ones
    included). Raises kafka.errors.KafkaError when no broker answers."""
    admin = connection.admin(
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        client_id="evledger-health",
    )
    try:
        described = admin.describe_cluster()
        brokers = tuple(
            sorted((int(b["broker_id"]), f"{b['host']}:{b['port']}") for b in described["brokers"])
        )
        names = list(topics) if topics is not None else [*admin.list_topics(), *INTERNAL_TOPICS]
        partitions = []
        for topic in admin.describe_topics(names) if names else []:
            if topic.get("error_code"):
                continue  # a topic that does not exist (yet) has no partitions to report
            for part in topic["partitions"]:
                partitions.append(
                    PartitionState(
                        topic=str(topic["name"]),
                        partition=int(part["partition_index"]),
                        leader=int(part["leader_id"]),
                        replicas=tuple(int(n) for n in part["replica_nodes"]),
                        isr=tuple(int(n) for n in part["isr_nodes"]),
                    )
                )
        return ClusterHealth(brokers, tuple(sorted(partitions, key=lambda p: p.name)))
    finally:
        admin.close()
