"""Two of three brokers down in the middle of `evledger run`: no transaction can reach
min.insync.replicas, so the writer cannot commit; ingest judges no message meanwhile and
says why, and resumes by itself when a broker returns. Nothing is lost or applied twice."""

from __future__ import annotations

from tests.integration.cluster.cluster import Cluster, wait_for
from tests.integration.cluster.pipeline import Pipeline, day_of_traffic
from tests.ledger_compare import expected_ledger

# What ingest logs each time a batch could not be committed (consumers/ingest.py).
UNAVAILABLE = "ledger unavailable"


def test_ingest_waits_while_two_brokers_are_down_and_resumes_when_one_returns(
    healthy_cluster: Cluster, pipeline: Pipeline
) -> None:
    traffic = day_of_traffic(seed=202)
    events = len(expected_ledger(traffic))
    pipeline.publish(traffic)
    process = pipeline.start("run", batch_size=10)
    try:
        pipeline.wait_ledger_past(events // 3, process)
        leader = healthy_cluster.leader(pipeline.ledger_topic)
        other = next(node for node in (1, 2, 3) if node != leader)
        healthy_cluster.kill(leader)
        healthy_cluster.kill(other)
        wait_for(
            "ingest to report the ledger unavailable",
            lambda: UNAVAILABLE in pipeline.log() or process.poll() is not None,
        )
        assert process.poll() is None, pipeline.log()[-3000:]
        reason = next(line for line in pipeline.log().splitlines() if UNAVAILABLE in line)
        assert "not judged" in reason, reason
        print(f"\ntwo brokers down; ingest says: {reason.strip()[:300]}")
        before = pipeline.log().count(UNAVAILABLE)
        healthy_cluster.start(leader)
        restarting = healthy_cluster.start_in_background(other)
        pipeline.wait_projected(events, process)
        print(f"resumed after {before} failed tries with one broker back")
        counters = pipeline.stop(process)
    finally:
        if process.poll() is None:
            process.kill()
    pipeline.check_books(traffic, counters)
    healthy_cluster.started(restarting)
