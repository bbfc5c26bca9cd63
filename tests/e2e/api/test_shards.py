"""The API over a ledger of 3 shards: /readyz gives each shard's head and each projection's
lag on it; POST /v1/refunds goes to the shard of its payment's session (looked up in the
payment history), so the ledger applies it instead of rejecting an unknown payment; a
payment the history does not know is a 422 problem, nothing sent."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.keys import Role
from consumers.routing import shard_of
from demo.traffic import generate
from projections.databases.postgres import drop_schema
from tests.e2e.api.conftest import (
    Server,
    environment,
    make_keys,
    schema_dsn,
    start_server,
    stop_server,
)
from tests.integration.consumers.test_ingest_kafka import SHAPE, write_jsonl
from tests.integration.store.conftest import delete_topics
from tests.kafka_topics import read_topic

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]

SHARDS = 3


@pytest.fixture(scope="module")
def traffic() -> list[dict[str, Any]]:
    return generate(seed=11, shape=SHAPE)


@pytest.fixture(scope="module")
def sharded_server(
    pg_dsn: str,
    kafka_bootstrap: str,
    traffic: list[dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """A day of traffic on 3 shards, ingested and projected, served on Kafka + PostgreSQL."""
    root = tmp_path_factory.mktemp("api-shards")
    schema = f"test_api_{uuid.uuid4().hex[:10]}"
    dsn = schema_dsn(pg_dsn, schema)
    prefix = f"test.api.shards.{uuid.uuid4().hex[:8]}"
    env = environment(
        root / "data",
        dsn,
        {
            "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EVLEDGER_TOPIC_PREFIX": prefix,
            "EVLEDGER_LEDGER_SHARDS": str(SHARDS),
        },
    )
    keys = make_keys(dsn)
    setup = Server("", env, root / "serve.log", dsn, keys)
    setup.cli("publish", str(write_jsonl(root / "day.jsonl", traffic)))
    setup.cli("ingest", "--until-idle")
    setup.cli("project", "--until-idle")
    process, url = start_server(env, root / "serve.log")
    try:
        yield Server(url, env, root / "serve.log", dsn, keys)
    finally:
        stop_server(process)
        shard_topics = [f"ledger.{shard}" for shard in range(1, SHARDS)]
        names = ("ledger", *shard_topics, "ingest", "ingest.dlq")
        delete_topics(kafka_bootstrap, [f"{prefix}.{name}" for name in names])
        drop_schema(pg_dsn, schema)


def _shard_heads(server: Server) -> list[int]:
    """Each shard's last notification id, as the store reads it."""
    from bootstrap import Settings, bootstrap
    from domain.application import BillingApplication

    settings = Settings(
        kafka_bootstrap=server.env["EVLEDGER_KAFKA_BOOTSTRAP"],
        topic_prefix=server.env["EVLEDGER_TOPIC_PREFIX"],
        data_dir=Path(server.env["EVLEDGER_DATA_DIR"]) / "reader",
        ledger_shards=SHARDS,
    )
    heads = []
    for shard in range(SHARDS):
        application = BillingApplication(env=bootstrap(settings).ledger.shard(shard).environment())
        try:
            heads.append(application.recorder.max_notification_id() or 0)
        finally:
            application.close()
    return heads


def _readyz(server: Server) -> dict[str, Any]:
    with server.client() as client:
        answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_readyz_reports_every_shards_head_and_lag(sharded_server: Server) -> None:
    heads = _shard_heads(sharded_server)
    assert all(head > 0 for head in heads)
    body = _readyz(sharded_server)
    assert (body["ready"], body["ledger"], body["ledger_position"]) == (True, "ok", sum(heads))
    assert body["projections"]["payment_history"] == {
        "position": sum(heads),
        "lag": 0,
        "ahead": False,
    }
    assert [shard["shard"] for shard in body["shards"]] == [0, 1, 2]
    for shard, head in zip(body["shards"], heads, strict=True):
        assert (shard["ledger"], shard["ledger_position"]) == ("ok", head)
        assert shard["projections"] == {
            name: {"position": head, "lag": 0, "ahead": False}
            for name in ("payment_history", "refund_status", "analytics")
        }


def _published(server: Server, event_id: str) -> list[Any]:
    """The ingest topic's records (every partition) of one message."""
    topic = server.env["EVLEDGER_TOPIC_PREFIX"] + ".ingest"
    bootstrap = server.env["EVLEDGER_KAFKA_BOOTSTRAP"]
    return [
        record
        for partition in range(SHARDS)
        for record in read_topic(bootstrap, topic, partition_number=partition)
        if json.loads(record.value)["event_id"] == event_id
    ]


def _a_payment_keyed_off_its_shard(traffic: list[dict[str, Any]]) -> tuple[str, str]:
    """A captured payment whose own id would route it to another shard than its session."""
    captured = {m["payment_id"] for m in traffic if m["type"] == "payment.captured"}
    for message in traffic:
        if message["type"] == "payment.authorized" and message["payment_id"] in captured:
            payment, session = message["payment_id"], message["session_id"]
            if shard_of(payment.encode(), SHARDS) != shard_of(session.encode(), SHARDS):
                return payment, session
    raise AssertionError("no payment routes away from its session in the traffic")


def test_a_refund_request_goes_to_the_shard_of_its_payments_session(
    sharded_server: Server, traffic: list[dict[str, Any]]
) -> None:
    payment, session = _a_payment_keyed_off_its_shard(traffic)
    key = f"support-{uuid.uuid4().hex}"
    body = {"payment_id": payment, "amount_minor": 1, "reason": "other"}
    with sharded_server.client(Role.support, **{"Idempotency-Key": key}) as client:
        accepted = client.post("/v1/refunds", json=body)
    assert accepted.status_code == 202, accepted.text
    (record,) = _published(sharded_server, key)
    assert (record.key, record.partition) == (
        session.encode(),
        shard_of(session.encode(), SHARDS),
    )
    # The shard holds the payment: the request is applied, not rejected as unknown.
    ingested = json.loads(sharded_server.cli("ingest", "--until-idle", "-f", "json").stdout)
    assert ingested == [
        {"consumed": 1, "applied": 1, "duplicates": 0, "rejected": 0, "dead_lettered": 0}
    ]
    # Not projected yet: the session's shard alone shows a lag.
    lags = [
        shard["projections"]["refund_status"]["lag"] for shard in _readyz(sharded_server)["shards"]
    ]
    assert [lag > 0 for lag in lags] == [p == record.partition for p in range(SHARDS)]
    sharded_server.cli("project", "--until-idle")
    refund_id = accepted.json()["refund_id"]
    with sharded_server.client(Role.support) as client:
        refund = client.get(f"/v1/refunds/{refund_id}").json()
    assert (refund["payment_id"], refund["session_id"]) == (payment, session)
    assert refund["status"] != "rejected"


def test_a_refund_for_a_payment_not_in_the_history_is_refused(sharded_server: Server) -> None:
    key = f"support-{uuid.uuid4().hex}"
    body = {"payment_id": "P-NOWHERE", "amount_minor": 1, "reason": "other"}
    with sharded_server.client(Role.support, **{"Idempotency-Key": key}) as client:
        refused = client.post("/v1/refunds", json=body)
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert "'P-NOWHERE' is not in the payment history" in problem["detail"]
    assert problem["errors"] == [{"field": "payment_id", "reason": "unknown payment"}]
    assert _published(sharded_server, key) == []
