"""A broker stopped for longer than the replica lag while the ledger grows: it leaves the
ISR, and once restarted it fetches what it missed and every ISR is full again."""

from __future__ import annotations

import time

from tests.integration.cluster.cluster import Cluster
from tests.integration.cluster.pipeline import Pipeline, day_of_traffic
from tests.ledger_compare import expected_ledger

# replica.lag.time.max.ms of scripts/kafka/cluster.properties.in, in seconds.
REPLICA_LAG_S = 10


def test_a_broker_down_past_the_replica_lag_catches_up_and_rejoins_the_isr(
    healthy_cluster: Cluster, pipeline: Pipeline
) -> None:
    traffic = day_of_traffic(seed=303)
    events = len(expected_ledger(traffic))
    pipeline.publish(traffic)
    leader = healthy_cluster.leader(pipeline.ledger_topic)
    follower = next(node for node in (1, 2, 3) if node != leader)
    healthy_cluster.kill(follower)
    stopped_at = time.monotonic()
    process = pipeline.start("run", batch_size=10)
    try:
        pipeline.wait_ledger_past(events // 2, process)
        ledger = healthy_cluster.health([pipeline.ledger_topic]).partition(pipeline.ledger_topic)
        assert ledger is not None and follower not in ledger.isr, ledger
        while time.monotonic() - stopped_at < REPLICA_LAG_S + 2:
            time.sleep(0.5)
        healthy_cluster.start(follower)
        pipeline.wait_projected(events, process)
        counters = pipeline.stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    topics = [pipeline.ledger_topic, pipeline.ingest_topic, "__transaction_state"]
    healthy_cluster.wait_in_sync(topics)
    health = healthy_cluster.health(topics)
    for state in health.partitions:
        assert set(state.isr) == set(state.replicas) == {1, 2, 3}, state
    # In the ISR means caught up to the leader's end: the restarted broker holds the books.
    pipeline.check_books(traffic, counters)
