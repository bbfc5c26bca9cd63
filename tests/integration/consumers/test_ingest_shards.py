"""Sharded ingest on the real broker (EVLEDGER_LEDGER_SHARDS=3): each shard's ledger is
exactly the traffic routed to it, misrouted records are dead letters naming the routing
rule, and a second process joining mid-run and one killed with SIGKILL leave every shard
exact (nothing lost, nothing twice). `ingest --file` routes each line to its shard by the
same rule.

The expected ledger of shard p is the traffic `evledger publish` routes to partition p
(tariffs to every partition), applied in memory to the same domain application.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from consumers.dead_letter import DeadLetter
from consumers.routing import ROUTING_RULE, SessionRouter, shard_of
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store.kafka_clients import KafkaConnection
from tests.e2e.test_ocpi_ledger import evledger
from tests.integration.consumers.test_ingest_kafka import (
    EVLEDGER,
    SHAPE,
    ingest,
    publish,
    write_jsonl,
)
from tests.kafka_topics import read_topic
from tests.ledger_compare import expected_ledger, ledger_rows

pytestmark = pytest.mark.kafka

SHARDS = 3


@pytest.fixture
def sharded_env(kafka_bootstrap: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVLEDGER_TOPIC_PREFIX": f"it-shards-{uuid.uuid4().hex[:8]}",
        "EVLEDGER_DATA_DIR": str(tmp_path / "data"),
        "EVLEDGER_LEDGER_SHARDS": str(SHARDS),
    }


@pytest.fixture(scope="module")
def traffic() -> list[dict[str, Any]]:
    return generate(seed=11, shape=SHAPE)


def routed(messages: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The messages each shard gets, in order, by the publisher's routing rule."""
    router = SessionRouter(SHARDS)
    shards: list[list[dict[str, Any]]] = [[] for _ in range(SHARDS)]
    for message in messages:
        route = router.route(json.dumps(message).encode())
        for shard in range(SHARDS) if route.everywhere else [route.partition]:
            assert shard is not None
            shards[shard].append(message)
    return shards


def shard_ledger(env: dict[str, str], shard: int) -> list[tuple[Any, ...]]:
    from bootstrap import Settings, bootstrap

    settings = Settings(
        kafka_bootstrap=env["EVLEDGER_KAFKA_BOOTSTRAP"],
        topic_prefix=env["EVLEDGER_TOPIC_PREFIX"],
        data_dir=Path(env["EVLEDGER_DATA_DIR"]) / "reader",
        ledger_shards=SHARDS,
    )
    application = BillingApplication(env=bootstrap(settings).ledger.shard(shard).environment())
    try:
        return ledger_rows(application)
    finally:
        application.close()


def assert_shards_exact(env: dict[str, str], messages: list[dict[str, Any]]) -> None:
    for shard, expected in enumerate(routed(messages)):
        assert shard_ledger(env, shard) == expected_ledger(expected), f"shard {shard}"


def test_each_shard_gets_exactly_the_traffic_routed_to_it(
    sharded_env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    publish(sharded_env, write_jsonl(tmp_path / "day.jsonl", traffic))
    counters = ingest(sharded_env)
    per_shard = routed(traffic)
    assert all(len(messages) > len(traffic) // 10 for messages in per_shard)
    tariffs = sum(1 for message in traffic if message["type"] == "tariff.published")
    # Every shard records each tariff; every other message is on exactly one shard.
    assert counters["consumed"] == len(traffic) + (SHARDS - 1) * tariffs
    assert counters["dead_lettered"] == 0
    assert counters["applied"] == counters["consumed"]
    assert_shards_exact(sharded_env, traffic)


def test_a_misrouted_record_is_a_dead_letter_naming_the_routing_rule(
    sharded_env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    started = next(m for m in traffic if m["type"] == "session.started")
    session = started["session_id"].encode()
    home = shard_of(session, SHARDS)
    wrong = (home + 1) % SHARDS
    tariffs = [m for m in traffic if m["type"] == "tariff.published"]
    publish(sharded_env, write_jsonl(tmp_path / "tariffs.jsonl", tariffs))
    topic = f"{sharded_env['EVLEDGER_TOPIC_PREFIX']}.ingest"
    producer = KafkaConnection(sharded_env["EVLEDGER_KAFKA_BOOTSTRAP"]).producer()
    value = json.dumps(started).encode()
    producer.send(topic, key=session, value=value, partition=wrong)  # the wrong partition
    producer.send(topic, key=b"someone-else", value=value, partition=home)  # the wrong key
    producer.send(topic, key=None, value=value, partition=home)  # no key
    producer.flush()
    producer.close()

    counters = ingest(sharded_env)

    assert counters["dead_lettered"] == 3
    letters = [
        DeadLetter.from_headers(r.key, r.value, list(r.headers))
        for r in read_topic(sharded_env["EVLEDGER_KAFKA_BOOTSTRAP"], f"{topic}.dlq")
    ]
    assert len(letters) == 3
    for letter in letters:
        assert letter.reason.startswith("misrouted"), letter.reason
        assert ROUTING_RULE in letter.reason
    assert {letter.field for letter in letters} == {"", "session_id"}
    # Nothing of the session reached any shard: only the tariffs did.
    for shard in range(SHARDS):
        assert shard_ledger(sharded_env, shard) == expected_ledger(tariffs)


def start_ingest(env: dict[str, str], data_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [EVLEDGER, "ingest", "--batch-size", "5"],
        env={**env, "EVLEDGER_DATA_DIR": str(data_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def ledger_size(env: dict[str, str]) -> int:
    """Records on all shards' logs, in-flight transactions included."""
    from kafka import TopicPartition

    consumer = KafkaConnection(env["EVLEDGER_KAFKA_BOOTSTRAP"]).consumer(
        isolation_level="read_uncommitted"
    )
    prefix = env["EVLEDGER_TOPIC_PREFIX"]
    topics = [f"{prefix}.ledger"] + [f"{prefix}.ledger.{shard}" for shard in range(1, SHARDS)]
    try:
        partitions = [TopicPartition(topic, 0) for topic in topics]
        return sum(int(end) for end in consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def wait_for_size(env: dict[str, str], size: int, *processes: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    while ledger_size(env) < size:
        assert all(process.poll() is None for process in processes), "an ingest process exited"
        assert time.monotonic() < deadline, f"the ledger did not reach {size} records"
        time.sleep(0.1)


def test_a_process_joining_and_one_killed_mid_run_leave_every_shard_exact(
    sharded_env: dict[str, str], tmp_path: Path
) -> None:
    # Enough traffic that one process is still busy when the second joins and at the kill.
    messages = generate(seed=12, shape=TrafficShape(stations=8, customers=150, days=4))
    publish(sharded_env, write_jsonl(tmp_path / "days.jsonl", messages))
    total = sum(len(expected_ledger(shard)) for shard in routed(messages))
    first = start_ingest(sharded_env, tmp_path / "first")
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for_size(sharded_env, total // 5, first)
        # A second member joins: shards move to it, its writers fence the first's.
        second = start_ingest(sharded_env, tmp_path / "second")
        wait_for_size(sharded_env, total // 2, first, second)
        # The first dies without a word, mid-batch: its shards move once its session ends.
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        wait_for_size(sharded_env, total * 3 // 4, second)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    # The second did take shards over (its writers kept their indexes in its data dir).
    assert list((tmp_path / "second" / "index").glob("*.ledger*.sqlite3"))
    # Whatever is left is applied by a third; every shard is as if nothing had happened.
    ingest(sharded_env)
    assert_shards_exact(sharded_env, messages)


def export_cdrs(env: dict[str, str]) -> Any:
    return json.loads(evledger(env, "ocpi", "export-cdrs", "--party", "NL:EVL"))


def test_ingest_from_a_file_routes_each_message_to_its_shard(
    sharded_env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    day = write_jsonl(tmp_path / "day.jsonl", traffic)
    counters = ingest(sharded_env, "--file", str(day))
    tariffs = sum(1 for message in traffic if message["type"] == "tariff.published")
    # As if published and consumed: every shard records each tariff.
    assert counters["consumed"] == len(traffic) + (SHARDS - 1) * tariffs
    assert counters["applied"] == counters["consumed"]
    assert_shards_exact(sharded_env, traffic)
    # A second pass (a first one cut short, say) is all duplicates on every shard.
    again = ingest(sharded_env, "--file", str(day))
    assert again["duplicates"] == again["consumed"] == counters["consumed"]
    assert_shards_exact(sharded_env, traffic)
    # `ocpi export-cdrs` reads every shard: the same CDRs as from one embedded ledger.
    embedded = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    embedded["EVLEDGER_DATA_DIR"] = str(tmp_path / "embedded")
    ingest(embedded, "--file", str(day))
    cdrs = export_cdrs(sharded_env)
    assert len(cdrs) > 20
    assert cdrs == export_cdrs(embedded)


def readyz(port: int) -> dict[str, Any] | None:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            body: dict[str, Any] = json.loads(answer.read())
            return body
    except (urllib.error.URLError, ConnectionError):
        return None  # not serving yet


def test_run_and_doctor_report_every_shards_head_and_lag(
    sharded_env: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    from tests.e2e.api.conftest import free_port

    publish(sharded_env, write_jsonl(tmp_path / "day.jsonl", traffic))
    heads = [len(expected_ledger(messages)) for messages in routed(traffic)]
    port = free_port()
    process = subprocess.Popen(
        [EVLEDGER, "run", "--metrics-port", str(port)],
        env=sharded_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, "evledger run exited"
            body = readyz(port)
            shards = (body or {}).get("shards", [])
            if [shard["ledger_position"] for shard in shards] == heads and all(
                projection["lag"] == 0
                for shard in shards
                for projection in shard["projections"].values()
            ):
                break
            assert time.monotonic() < deadline, f"not caught up: {body}"
            time.sleep(0.5)
        assert body is not None and body["ready"] is True
        assert set(body["projections"]) == {"payment_history", "refund_status", "analytics"}
        for number, (shard, head) in enumerate(zip(shards, heads, strict=True)):
            assert (shard["shard"], shard["ledger"]) == (number, "ok")
            assert shard["projections"]["refund_status"] == {
                "status": "running",
                "position": head,
                "lag": 0,
            }
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    rows = json.loads(evledger(sharded_env, "doctor", "--format", "json"))
    prefix = sharded_env["EVLEDGER_TOPIC_PREFIX"]
    partitions = [row["where"] for row in rows if row["service"] == "ledger partition"]
    assert partitions == [f"{prefix}.ledger-0", f"{prefix}.ledger.1-0", f"{prefix}.ledger.2-0"]
    shard_rows = [row for row in rows if row["service"] == "ledger shard"]
    assert [row["where"] for row in shard_rows] == [f"shard {p} of {SHARDS}" for p in range(3)]
    for row, head in zip(shard_rows, heads, strict=True):
        # The analytics lag is the readers' copy's, published at the projector's own pace.
        assert row["detail"].startswith(
            f"head {head}; lag: payment_history 0, refund_status 0, analytics "
        ), row
