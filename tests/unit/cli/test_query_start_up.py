"""A query command imports only what a query needs: run in a fresh interpreter against a real
read-model database (the embedded SQLite file, and PostgreSQL), it must answer without the
write side, the ledger, DuckDB, Kafka or the HTTP server being imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from projections.databases.port import Database
from projections.databases.postgres import PostgresDatabase, drop_schema
from projections.databases.sqlite import SqliteDatabase
from projections.payment_history import PaymentHistory
from projections.refund_status import RefundStatusView

# Modules a history or refunds query must not import (the start-up cost of each is large,
# and none has anything to do with reading a page of rows).
HEAVY = (
    "eventsourcing.application",
    "eventsourcing.domain",
    "domain.application",
    "domain.payment",
    "projections.facts",
    "projections.runner",
    "store",
    "consumers",
    "audit",
    "pydantic",
    "pydantic_settings",
    "duckdb",
    "kafka",
    "fastapi",
    "uvicorn",
    "cryptography",
    "plotly",
)

PROBE = """
import json, sys
from cli.main import app
try:
    app(sys.argv[1:])
except SystemExit as done:
    code = done.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def run_query(env: dict[str, str], *args: str) -> tuple[list[str], int | str | None, str]:
    """The modules a fresh interpreter has loaded after the command, its exit code, stdout."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--format", "json"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        check=True,
    )
    *output, last = done.stdout.strip().splitlines()
    probe = json.loads(last)
    return probe["modules"], probe["code"], "\n".join(output) + done.stderr


def heavy_among(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY)]


def create_views(db: Database) -> None:
    for model in (PaymentHistory(db), RefundStatusView(db)):
        model.create()
    db.close()


@pytest.mark.parametrize(
    "query", [("history", "--customer", "C-1"), ("refunds", "--status", "requested")]
)
def test_a_query_on_the_embedded_default_imports_only_what_it_uses(
    tmp_path: Path, query: tuple[str, ...]
) -> None:
    create_views(SqliteDatabase(tmp_path / "read_models.sqlite3"))
    modules, code, output = run_query({"EVLEDGER_DATA_DIR": str(tmp_path)}, *query)
    assert code == 0, output
    assert json.loads(output) == []
    assert heavy_among(modules) == []


@pytest.mark.postgres
def test_a_query_on_postgresql_imports_only_what_it_uses(pg_dsn: str, tmp_path: Path) -> None:
    from psycopg.conninfo import make_conninfo

    schema = f"test_start_up_{uuid.uuid4().hex[:10]}"
    try:
        create_views(PostgresDatabase(pg_dsn, schema=schema))
        env = {
            "EVLEDGER_PG_DSN": make_conninfo(pg_dsn, options=f"-c search_path={schema}"),
            "EVLEDGER_DATA_DIR": str(tmp_path),
        }
        modules, code, output = run_query(env, "history", "--station", "ST-1")
    finally:
        drop_schema(pg_dsn, schema)
    assert code == 0, output
    assert json.loads(output) == []
    assert heavy_among(modules) == []
    assert "psycopg" in modules
