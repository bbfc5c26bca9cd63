"""POST /v1/refunds on Kafka: one contract-valid `refund.requested` message per
Idempotency-Key, the same answer on a repeat, a different body with the key refused."""

from __future__ import annotations

import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from api.keys import Role
from consumers.contract import RefundRequested, parse_message
from store.kafka_clients import KafkaConnection
from tests.e2e.api.conftest import Server, create_ingest_topic, kafka_api, start_server, stop_server
from tests.kafka_topics import read_topic

pytestmark = [pytest.mark.postgres, pytest.mark.kafka]


def _ingest(server: Server) -> list[dict[str, object]]:
    topic = server.env["EVLEDGER_TOPIC_PREFIX"] + ".ingest"
    records = read_topic(server.env["EVLEDGER_KAFKA_BOOTSTRAP"], topic)
    return [{"key": record.key, "value": record.value} for record in records]


def test_a_refund_request_is_published_once(kafka_server: Server) -> None:
    key = f"support-{uuid.uuid4().hex}"
    body = {"payment_id": "P1", "amount_minor": 250, "reason": "overcharge", "note": "meter"}
    with kafka_server.client(Role.support, **{"Idempotency-Key": key}) as client:
        first = client.post("/v1/refunds", json=body)
        again = client.post("/v1/refunds", json=body)
        assert first.status_code == 202, first.text
        assert again.status_code == 202, again.text
        assert again.json() == first.json()
        accepted = first.json()
        assert accepted["event_id"] == key
        assert accepted["url"] == f"/v1/refunds/{accepted['refund_id']}"
        assert first.headers["location"] == accepted["url"]
        assert first.headers["x-request-id"] != again.headers["x-request-id"]

        changed = client.post("/v1/refunds", json={**body, "amount_minor": 999})
        assert changed.status_code == 422
        assert changed.headers["content-type"] == "application/problem+json"
        assert "already used for a different refund request" in changed.json()["detail"]

    published = [r for r in _ingest(kafka_server) if json.loads(r["value"])["event_id"] == key]
    assert len(published) == 1
    message = parse_message(published[0]["value"])  # the upstream contract, as ingest reads it
    assert isinstance(message, RefundRequested)
    assert (message.payment_id, message.amount_minor, message.reason, message.note) == (
        "P1",
        250,
        "overcharge",
        "meter",
    )
    assert message.refund_id == accepted["refund_id"]
    assert published[0]["key"] == b"P1"  # keyed like every refund request upstream


def test_a_chosen_refund_id_and_independent_keys(kafka_server: Server) -> None:
    body = {"payment_id": "P3", "amount_minor": 10, "reason": "other", "refund_id": "R-desk-1"}
    answers = []
    keys = [f"desk-{uuid.uuid4().hex}" for _ in range(2)]
    with kafka_server.client(Role.support) as client:
        for key in keys:
            response = client.post("/v1/refunds", json=body, headers={"Idempotency-Key": key})
            assert response.status_code == 202, response.text
            answers.append(response.json())
    assert [a["refund_id"] for a in answers] == ["R-desk-1", "R-desk-1"]
    events = [json.loads(r["value"])["event_id"] for r in _ingest(kafka_server)]
    assert all(events.count(key) == 1 for key in keys)


def test_only_support_may_request_refunds(kafka_server: Server) -> None:
    body = {"payment_id": "P1", "amount_minor": 1, "reason": "other"}
    for role in (Role.auditor, Role.analyst):
        with kafka_server.client(role, **{"Idempotency-Key": f"k-{uuid.uuid4().hex}"}) as client:
            assert client.post("/v1/refunds", json=body).status_code == 403
    with kafka_server.client(**{"Idempotency-Key": f"k-{uuid.uuid4().hex}"}) as client:
        assert client.post("/v1/refunds", json=body).status_code == 401


IN_PROGRESS = "a request with this Idempotency-Key is in progress; retry"


def _check_in_progress(status: int, text: str, headers: httpx.Headers) -> None:
    if status == 409:
        assert json.loads(text)["detail"] == IN_PROGRESS
        assert headers["retry-after"] == "1"
        assert headers["content-type"] == "application/problem+json"
    else:
        assert status == 202, text


def test_concurrent_repeats_of_one_key_publish_one_message(kafka_server: Server) -> None:
    # One repeat publishes; the others meanwhile get a 409 to retry, at once (before, they
    # waited on the first one's row lock, a publish timeout each while Kafka was down), or
    # the 202 once it is published. A repeat after gets the same 202.
    keys = [f"burst-{uuid.uuid4().hex}" for _ in range(5)]
    body = {"payment_id": "P1", "amount_minor": 7, "reason": "other"}

    def post(key: str) -> tuple[int, str, httpx.Headers]:
        with kafka_server.client(Role.support, **{"Idempotency-Key": key}) as client:
            response = client.post("/v1/refunds", json=body)
            return response.status_code, response.text, response.headers

    with ThreadPoolExecutor(max_workers=30) as pool:
        for key in keys:
            answers = list(pool.map(post, [key] * 30))
            for answer in answers:
                _check_in_progress(*answer)
            accepted = {text for status, text, _ in answers if status == 202}
            assert len(accepted) == 1, answers[:3]  # the same 202 for every repeat
            assert post(key)[:2] == (202, accepted.pop())
    events = [json.loads(r["value"])["event_id"] for r in _ingest(kafka_server)]
    assert [events.count(key) for key in keys] == [1] * len(keys)


def _wait_for_a_claim(dsn: str, key: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as connection:
        while not connection.execute(
            "SELECT 1 FROM api_idempotency_claims WHERE idempotency_key = %s", [key]
        ).fetchall():
            time.sleep(0.05)


def test_a_failed_publish_leaves_the_key_free(
    pg_dsn: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    # No ingest topic (the broker does not create topics): the first request's publish
    # blocks, then fails (503); repeats meanwhile get a 409 at once; after the failure the
    # key is free again, and with the topic there the same request publishes once.
    key = f"fail-{uuid.uuid4().hex}"
    body = {"payment_id": "P1", "amount_minor": 9, "reason": "other"}
    with kafka_api(pg_dsn, kafka_bootstrap, tmp_path, ingest_topic=False) as server:

        def post() -> httpx.Response:
            with server.client(Role.support, **{"Idempotency-Key": key}) as client:
                client.timeout = httpx.Timeout(120)
                return client.post("/v1/refunds", json=body)

        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(post)
            _wait_for_a_claim(server.dsn, key)
            repeats = []
            while not first.done():
                repeats.append(post())
            assert first.result().status_code == 503, first.result().text
        assert repeats and {r.status_code for r in repeats} <= {409, 503}
        assert 409 in {r.status_code for r in repeats}
        create_ingest_topic(kafka_bootstrap, server.env["EVLEDGER_TOPIC_PREFIX"])
        retried = post()
        assert retried.status_code == 202, retried.text
        events = [json.loads(r["value"])["event_id"] for r in _ingest(server)]
        assert events == [key]


def test_any_id_of_the_contract_and_a_url_that_reaches_it(
    kafka_server: Server, server: Server
) -> None:
    # Spaces and letters outside ASCII were refused (the API took only ASCII without
    # spaces); the refund's URL escapes what a path must, and names the refund again.
    body = {
        "payment_id": "Zahlung 1 für Ü",
        "amount_minor": 5,
        "reason": "other",
        "refund_id": "R/ü 1?#..",
    }
    key = f"odd-ids-{uuid.uuid4().hex}"
    with kafka_server.client(Role.support, **{"Idempotency-Key": key}) as client:
        accepted = client.post("/v1/refunds", json=body)
        assert accepted.status_code == 202, accepted.text
        url = accepted.json()["url"]
        assert url == "/v1/refunds/R%2F%C3%BC%201%3F%23.."
        assert accepted.headers["location"] == url
    # Not in the refund status view of the projected scenario, but the route names it.
    with server.client(Role.support) as client:
        missing = client.get(url)
    assert missing.status_code == 404, missing.text
    assert "'R/ü 1?#..'" in missing.json()["detail"]
    published = [r for r in _ingest(kafka_server) if json.loads(r["value"])["event_id"] == key]
    message = parse_message(published[0]["value"])
    assert isinstance(message, RefundRequested)
    assert (message.payment_id, message.refund_id) == (body["payment_id"], body["refund_id"])


@pytest.mark.parametrize(
    ("field", "raw"),
    [
        ("note", rb'"\ud800"'),  # a lone surrogate: no UTF-8 can carry it
        ("payment_id", rb'"\ud800"'),
        ("payment_id", rb'"P\u00001"'),
        ("payment_id", rb'"  "'),
        ("refund_id", rb'"R\u200b"'),  # a format character: not printable
    ],
)
def test_what_the_contract_refuses_is_a_422(kafka_server: Server, field: str, raw: bytes) -> None:
    fields = {"payment_id": b'"P1"', "amount_minor": b"5", "reason": b'"other"', field: raw}
    body = b"{" + b",".join(b'"%s": %s' % (name.encode(), value) for name, value in fields.items())
    headers = {"Idempotency-Key": f"bad-{uuid.uuid4().hex}", "Content-Type": "application/json"}
    with kafka_server.client(Role.support, **headers) as client:
        answer = client.post("/v1/refunds", content=body + b"}")
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == field


def test_concurrent_repeats_on_sqlite_views_publish_one_message(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    # The same where the views are SQLite's file (no write lock held while publishing).
    from kafka.admin import NewTopic

    prefix = f"test.api.{uuid.uuid4().hex[:8]}"
    admin = KafkaConnection(kafka_bootstrap).admin()
    admin.create_topics([NewTopic(f"{prefix}.ingest", num_partitions=1, replication_factor=1)])
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update(
        {
            "EVLEDGER_DATA_DIR": str(tmp_path / "data"),
            "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EVLEDGER_TOPIC_PREFIX": prefix,
        }
    )
    server = Server("", env, tmp_path / "serve.log", "")
    key = server.cli("apikey", "create", "--role", "support", "--name", "desk").stdout.strip()
    process, server.url = start_server(env, server.log)
    try:
        server.keys[Role.support] = key
        idempotency_key = f"sqlite-{uuid.uuid4().hex}"
        body = {"payment_id": "P1", "amount_minor": 3, "reason": "other"}

        def post(_: int) -> tuple[int, str, httpx.Headers]:
            headers = {"Idempotency-Key": idempotency_key}
            with server.client(Role.support, **headers) as client:
                response = client.post("/v1/refunds", json=body)
                return response.status_code, response.text, response.headers

        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(post, range(20)))
        for answer in answers:
            _check_in_progress(*answer)
        assert post(0)[0] == 202
        events = [json.loads(r["value"])["event_id"] for r in _ingest(server)]
        assert events == [idempotency_key]
    finally:
        stop_server(process)
        admin.delete_topics([f"{prefix}.ingest"])
        admin.close()
