"""kill -9 of one broker in the middle of `evledger run`: the ledger partition's leader, the
active controller, the ingest topic's leader, the writer's transaction coordinator. The run
carries on through the election without a restart, and the books equal a run without the
kill. The stall (kill to the next committed ledger transaction) is printed, not asserted."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.cluster.cluster import Cluster
from tests.integration.cluster.pipeline import Pipeline, day_of_traffic
from tests.ledger_compare import expected_ledger

TARGETS: dict[str, Callable[[Cluster, Pipeline], int]] = {
    "ledger-leader": lambda cluster, pipeline: cluster.leader(pipeline.ledger_topic),
    "active-controller": lambda cluster, pipeline: cluster.active_controller(),
    "ingest-leader": lambda cluster, pipeline: cluster.leader(pipeline.ingest_topic),
    "transaction-coordinator": lambda cluster, pipeline: cluster.transaction_coordinator(
        pipeline.transactional_id
    ),
}


@pytest.mark.parametrize("target", list(TARGETS))
def test_run_carries_on_through_the_kill_and_the_books_are_exact(
    target: str, healthy_cluster: Cluster, pipeline: Pipeline
) -> None:
    traffic = day_of_traffic(seed=101)
    events = len(expected_ledger(traffic))
    pipeline.publish(traffic)
    process = pipeline.start("run", batch_size=10)
    try:
        # A third of the way in: well inside the stream of ledger transactions.
        pipeline.wait_ledger_past(events // 3, process)
        victim = TARGETS[target](healthy_cluster, pipeline)
        healthy_cluster.kill(victim)
        # The stall: the longest the ledger stood still from the kill to two thirds in.
        stall = pipeline.watch_ledger(2 * events // 3, process)
        print(f"\nkill -9 of node {victim} ({target}): ledger stalled {stall:.2f}s")
        restarting = healthy_cluster.start_in_background(victim)
        pipeline.wait_projected(events, process)
        counters = pipeline.stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    pipeline.check_books(traffic, counters)
    healthy_cluster.started(restarting)
