"""`evledger run` as operators run it: ingest and projectors together, SIGTERM is graceful."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from demo.traffic import TrafficShape, generate
from projections.databases.postgres import drop_database

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


@pytest.fixture
def fresh_database(pg_dsn: str) -> Iterator[str]:
    """A database of its own, so the read models of this test start empty."""
    name = f"it_run_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        yield make_conninfo("", **{**conninfo_to_dict(pg_dsn), "dbname": name})
    finally:
        drop_database(pg_dsn, name)


def payments_projected(dsn: str) -> int:
    with psycopg.connect(dsn) as connection:
        exists = connection.execute("SELECT to_regclass('payment_history')").fetchone()
        if exists is None or exists[0] is None:
            return 0
        row = connection.execute("SELECT count(*) FROM payment_history").fetchone()
        return int(row[0]) if row else 0


def test_run_ingests_and_projects_until_sigterm_then_exits_cleanly(
    kafka_bootstrap: str, fresh_database: str, tmp_path: Path
) -> None:
    traffic = generate(seed=5, shape=TrafficShape(stations=3, customers=30))
    payments = {m["payment_id"] for m in traffic if m["type"].startswith("payment.")}
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text("".join(json.dumps(m) + "\n" for m in traffic))
    env = {
        **os.environ,
        "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVLEDGER_PG_DSN": fresh_database,
        "EVLEDGER_TOPIC_PREFIX": f"it-run-{uuid.uuid4().hex[:8]}",
        "EVLEDGER_DATA_DIR": str(tmp_path / "data"),
    }
    published = subprocess.run(
        [EVLEDGER, "publish", str(upstream)], env=env, capture_output=True, text=True, check=False
    )
    assert published.returncode == 0, published.stderr

    process = subprocess.Popen(
        [EVLEDGER, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while payments_projected(fresh_database) < len(payments):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "read models did not catch up in 120 s"
            time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert f"consumed {len(traffic)}" in stdout
    assert payments_projected(fresh_database) == len(payments)
