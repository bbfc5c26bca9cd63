"""A real `evledger serve` process over a projected scenario in a fresh PostgreSQL schema,
with API keys of every role; and a second one on Kafka for refund requests; and a real
uvicorn in a thread of the test, for tests that look inside the application."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.keys import Role, create_key
from bootstrap import Settings, bootstrap
from domain.application import BillingApplication
from projections.databases.postgres import PostgresDatabase, drop_schema
from store.kafka_clients import KafkaConnection
from tests.unit.projections.scenario import build_ledger

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
REPO = Path(__file__).resolve().parents[3]
# ["2024-05-06T12:00:00+00:00", "\ud800"]: a cursor whose payment id (a lone surrogate) no
# database driver can send, and so no cursor the API hands out.
FORGED_CURSOR = "WyIyMDI0LTA1LTA2VDEyOjAwOjAwKzAwOjAwIiwgIlx1ZDgwMCJd"


@contextmanager
def served(application: Any, **options: Any) -> Iterator[str]:
    """``application`` served by uvicorn in a thread until the block ends (``options``:
    more of uvicorn's settings); its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            **options,
        )
    )
    thread = threading.Thread(target=server.run)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running `evledger serve`, its environment, log file and a key per role."""

    url: str
    env: dict[str, str]
    log: Path
    dsn: str
    keys: dict[Role, str] = field(default_factory=dict)

    def client(self, role: Role | None = None, **headers: str) -> httpx.Client:
        if role is not None:
            headers["Authorization"] = f"Bearer {self.keys[role]}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def cli(self, *args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [EVLEDGER, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=REPO,
            timeout=120,
            check=False,
        )
        assert result.returncode == status, (result.stdout, result.stderr)
        return result


def schema_dsn(pg_dsn: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in pg_dsn else "?"
    return f"{pg_dsn}{separator}options=-csearch_path%3D{schema}"


def environment(data_dir: Path, dsn: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update({"EVLEDGER_DATA_DIR": str(data_dir), "EVLEDGER_PG_DSN": dsn, "COLUMNS": "200"})
    env.update(extra or {})
    return env


def project_scenario(data_dir: Path, dsn: str) -> None:
    """The known scenario into the embedded ledger, projected into PostgreSQL and DuckDB."""
    settings = Settings(data_dir=data_dir, pg_dsn=dsn)
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    build_ledger(app)
    app.close()
    with bootstrap(settings).projector() as runner:
        runner.run_until_idle()


def start_server(
    env: dict[str, str], log: Path, *options: str
) -> tuple[subprocess.Popen[bytes], str]:
    """`evledger serve` (with ``options``) on a free loopback port, once /healthz answers."""
    port = free_port()
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [EVLEDGER, "serve", "--host", "127.0.0.1", "--port", str(port), *options],
            env=env,
            cwd=REPO,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise AssertionError(f"evledger serve exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"evledger serve did not start: {log.read_text()}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def make_keys(dsn: str) -> dict[Role, str]:
    db = PostgresDatabase(dsn)
    try:
        return {role: create_key(db, role, f"test-{role.value}")[0] for role in Role}
    finally:
        db.close()


@pytest.fixture(scope="module")
def server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Payment history and refund status in PostgreSQL, the ledger embedded (no Kafka)."""
    root = tmp_path_factory.mktemp("api")
    schema = f"test_api_{uuid.uuid4().hex[:10]}"
    dsn = schema_dsn(pg_dsn, schema)
    project_scenario(root / "data", dsn)
    keys = make_keys(dsn)
    env = environment(root / "data", dsn)
    process, url = start_server(env, root / "serve.log")
    try:
        yield Server(url, env, root / "serve.log", dsn, keys)
    finally:
        stop_server(process)
        drop_schema(pg_dsn, schema)


def create_ingest_topic(kafka_bootstrap: str, prefix: str) -> None:
    from kafka.admin import NewTopic

    admin = KafkaConnection(kafka_bootstrap).admin()
    try:
        admin.create_topics([NewTopic(f"{prefix}.ingest", num_partitions=1, replication_factor=1)])
    finally:
        admin.close()


@contextmanager
def kafka_api(
    pg_dsn: str, kafka_bootstrap: str, root: Path, *, ingest_topic: bool = True
) -> Iterator[Server]:
    """A server configured with Kafka: a unique topic prefix (its ingest topic made first
    unless ``ingest_topic`` is False) and a PostgreSQL schema of its own, both removed
    after."""
    from kafka.errors import UnknownTopicOrPartitionError

    schema = f"test_api_{uuid.uuid4().hex[:10]}"
    dsn = schema_dsn(pg_dsn, schema)
    prefix = f"test.api.{uuid.uuid4().hex[:8]}"
    if ingest_topic:
        create_ingest_topic(kafka_bootstrap, prefix)
    keys = make_keys(dsn)
    env = environment(
        root / "data",
        dsn,
        {"EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap, "EVLEDGER_TOPIC_PREFIX": prefix},
    )
    process, url = start_server(env, root / "serve.log")
    admin = KafkaConnection(kafka_bootstrap).admin()
    try:
        yield Server(url, env, root / "serve.log", dsn, keys)
    finally:
        stop_server(process)
        with suppress(UnknownTopicOrPartitionError):  # never made (``ingest_topic`` False)
            admin.delete_topics([f"{prefix}.ingest"])
        admin.close()
        drop_schema(pg_dsn, schema)


@pytest.fixture(scope="module")
def kafka_server(
    pg_dsn: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The same, configured with Kafka: a unique topic prefix with its ingest topic."""
    with kafka_api(pg_dsn, kafka_bootstrap, tmp_path_factory.mktemp("api-kafka")) as server:
        yield server
