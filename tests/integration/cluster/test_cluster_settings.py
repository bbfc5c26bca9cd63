"""The cluster as evledger's settings see it: services env/status, topic creation with the
cluster's replication, a refused replication factor, and what `evledger doctor` reports."""

from __future__ import annotations

import json

from tests.integration.cluster.cluster import Cluster, services
from tests.integration.cluster.pipeline import Pipeline, day_of_traffic


def test_services_print_the_cluster_settings_and_every_broker(healthy_cluster: Cluster) -> None:
    env = services("env")
    assert f"EVLEDGER_KAFKA_BOOTSTRAP={healthy_cluster.bootstrap}" in env
    assert "EVLEDGER_KAFKA_REPLICATION_FACTOR=3" in env
    assert "EVLEDGER_KAFKA_MIN_INSYNC_REPLICAS=2" in env
    status = json.loads(services("status", "--json"))
    assert [b["node_id"] for b in status["brokers"]] == [1, 2, 3]
    assert all(b["running"] and isinstance(b["pid"], int) for b in status["brokers"])
    assert status["active_controller"] == healthy_cluster.active_controller()


def test_topics_get_three_replicas_and_doctor_reports_the_ledger_partition(
    pipeline: Pipeline, healthy_cluster: Cluster
) -> None:
    pipeline.publish(day_of_traffic(seed=1)[:20])
    ingest = pipeline.evledger("ingest", "--until-idle", "--format", "json")
    assert ingest.returncode == 0, ingest.stderr
    topics = [pipeline.ledger_topic, pipeline.ingest_topic, "__transaction_state"]
    health = healthy_cluster.health(topics)
    assert {state.topic for state in health.partitions} >= set(topics)
    assert all(len(state.replicas) == 3 for state in health.partitions), health

    doctor = pipeline.evledger("doctor", "--format", "json")
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    rows = {row["service"]: row for row in json.loads(doctor.stdout)}
    assert rows["kafka brokers"]["where"] == "3 live"
    ledger = health.partition(pipeline.ledger_topic)
    assert ledger is not None
    assert f"leader {ledger.leader}," in rows["ledger partition"]["detail"]
    assert "ISR [" in rows["ledger partition"]["detail"]
    assert rows["under-replicated"]["ok"] == "yes"


def test_a_replication_factor_above_the_cluster_is_refused_in_one_line(pipeline: Pipeline) -> None:
    pipeline.env["EVLEDGER_KAFKA_REPLICATION_FACTOR"] = "4"
    result = pipeline.evledger("ingest", "--until-idle")
    assert result.returncode == 2
    assert "replication factor 4" in result.stderr
    assert "3 live broker(s)" in result.stderr
    assert "Traceback" not in result.stderr
