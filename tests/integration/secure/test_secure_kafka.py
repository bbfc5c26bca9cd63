"""evledger on a broker that requires TLS and a SCRAM login, with the cluster's authorizer
on: the whole pipeline works with the writer's login, another principal cannot write the
ledger (as a plain or a transactional producer), and a wrong password is one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import TopicAuthorizationFailedError, TransactionalIdAuthorizationFailedError

from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from tests.integration.secure.broker import SecureBroker
from tests.ledger_compare import expected_ledger, ledger_rows

pytestmark = [pytest.mark.kafka]

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
SHAPE = TrafficShape(stations=3, customers=20)


def evledger(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVLEDGER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def process_env(broker: SecureBroker, prefix: str, data_dir: Path, **login: str) -> dict[str, str]:
    """The environment of an `evledger` process: nothing EVLEDGER_* inherited but these."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    return {
        **base,
        **broker.env(login.get("user", "writer"), login.get("password")),
        "EVLEDGER_TOPIC_PREFIX": prefix,
        "EVLEDGER_DATA_DIR": str(data_dir),
    }


def read_ledger(env: dict[str, str], data_dir: Path) -> list[tuple[Any, ...]]:
    """The ledger's events read back through the project's wiring, as ``env`` logs in."""
    from bootstrap import Settings, bootstrap

    fields = {
        name.removeprefix("EVLEDGER_").lower(): value
        for name, value in env.items()
        if name.startswith("EVLEDGER_")
    }
    settings = Settings(**{**fields, "data_dir": str(data_dir)})
    application = BillingApplication(env=bootstrap(settings).ledger.environment())
    try:
        return ledger_rows(application)
    finally:
        application.close()


def ledger_end(broker: SecureBroker, prefix: str) -> int:
    consumer = broker.connection("writer").consumer(isolation_level="read_committed")
    try:
        partition = TopicPartition(f"{prefix}.ledger", 0)
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()


@pytest.fixture
def traffic() -> list[dict[str, Any]]:
    return generate(seed=18, shape=SHAPE)


@pytest.fixture
def ingested(
    secure_broker: SecureBroker, secure_prefix: str, traffic: list[dict[str, Any]], tmp_path: Path
) -> dict[str, str]:
    """The traffic published, ingested and written to the ledger, all over SASL_SSL as the
    writer; the writer's process environment."""
    env = process_env(secure_broker, secure_prefix, tmp_path / "data")
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text("".join(json.dumps(message) + "\n" for message in traffic))
    published = evledger(env, "publish", str(upstream))
    assert published.returncode == 0, published.stderr
    ingest = evledger(env, "ingest", "--until-idle", "--format", "json")
    assert ingest.returncode == 0, ingest.stderr
    counters = json.loads(ingest.stdout)
    counters = counters[0] if isinstance(counters, list) else counters
    assert counters["applied"] == len(traffic), counters
    return env


def test_the_pipeline_works_over_sasl_ssl_with_the_writers_login(
    ingested: dict[str, str], traffic: list[dict[str, Any]], tmp_path: Path
) -> None:
    expected = expected_ledger(traffic)
    assert read_ledger(ingested, tmp_path / "reader") == expected
    verified = evledger(ingested, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"verified: {len(expected)} records" in verified.stdout


def test_another_principal_cannot_write_the_ledger(
    ingested: dict[str, str],
    secure_broker: SecureBroker,
    secure_prefix: str,
    traffic: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    ledger = f"{secure_prefix}.ledger"
    end = ledger_end(secure_broker, secure_prefix)
    other = secure_broker.connection("other")

    # The other principal may publish upstream messages (its ACL), but not to the ledger.
    producer = other.producer(max_block_ms=15_000, acks="all")
    try:
        producer.send(f"{secure_prefix}.ingest", b"{}").get(timeout=30)
        with pytest.raises(TopicAuthorizationFailedError):
            producer.send(ledger, b"forged").get(timeout=30)
    finally:
        producer.close(timeout=5)

    # Nor may it take the writer's transactional id to write (and fence) as the writer.
    transactional = other.producer(transactional_id=f"{ledger}.writer", max_block_ms=15_000)
    try:
        with pytest.raises(TransactionalIdAuthorizationFailedError):
            transactional.init_transactions()
    finally:
        transactional.close(timeout=5)

    assert ledger_end(secure_broker, secure_prefix) == end
    assert read_ledger(ingested, tmp_path / "reader") == expected_ledger(traffic)
    verified = evledger(ingested, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_wrong_password_is_one_clear_line_without_the_password(
    secure_broker: SecureBroker, secure_prefix: str, tmp_path: Path
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    env = process_env(secure_broker, secure_prefix, tmp_path / "data", password=wrong)
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text(json.dumps({"anything": 1}) + "\n")
    for command in (["audit", "verify"], ["publish", str(upstream)]):
        result = evledger(env, *command)
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, output
        assert "refused the login of user 'writer'" in lines[0]
        assert "EVLEDGER_KAFKA_SASL_PASSWORD" in lines[0]
        assert "Traceback" not in output
        assert wrong not in output
        assert secure_broker.password("writer") not in output
