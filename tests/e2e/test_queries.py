"""The query and projector commands as a user runs them, on a ledger in the data dir,
with PostgreSQL views (and with the fully embedded default)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.databases.postgres import drop_schema
from tests.unit.projections.scenario import build_ledger

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
REPO = Path(__file__).resolve().parents[2]


def _env(data_dir: Path, pg_dsn: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env.update({"EVLEDGER_DATA_DIR": str(data_dir), "COLUMNS": "200"})
    if pg_dsn is not None:
        env["EVLEDGER_PG_DSN"] = pg_dsn
    return env


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, status: int = 0) -> subprocess.CompletedProcess[str]:
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

    def json(self, *args: str) -> list[dict[str, object]]:
        rows: list[dict[str, object]] = json.loads(self(*args, "--format", "json").stdout)
        return rows


def _ledger(data_dir: Path) -> None:
    app = BillingApplication(env=bootstrap(Settings(data_dir=data_dir)).ledger.environment())
    build_ledger(app)
    app.close()


@pytest.fixture
def cli(pg_dsn: str, tmp_path: Path) -> Iterator[Cli]:
    import psycopg

    schema = f"test_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_dsn, autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in pg_dsn else "?"
    dsn = f"{pg_dsn}{separator}options=-csearch_path%3D{schema}"
    _ledger(tmp_path / "data")
    yield Cli(_env(tmp_path / "data", dsn))
    drop_schema(pg_dsn, schema)


@pytest.mark.postgres
def test_project_then_query(cli: Cli, tmp_path: Path) -> None:
    positions = cli.json("project", "--until-idle")
    assert {row["projection"]: row["position"] for row in positions} == {
        "payment_history": 64,
        "refund_status": 64,
        "analytics": 64,
    }
    again = cli.json("project", "--until-idle")
    assert [row["events"] for row in again] == [0, 0, 0]

    history = cli.json("history", "--customer", "C1")
    assert [(r["payment_id"], r["net_minor"]) for r in history] == [("P2", 524), ("P1", 988)]
    first = cli("history", "--station", "ST-A", "--limit", "1", "--format", "csv")
    assert first.stdout.splitlines()[1].startswith("P3,")
    cursor = first.stderr.split("--after ")[1].strip()
    second = cli.json("history", "--station", "ST-A", "--limit", "1", "--after", cursor)
    assert [r["payment_id"] for r in second] == ["P1"]
    window = cli.json(
        "history", "--customer", "C1", "--from", "2024-05-06T11:00Z", "--to", "2024-05-07"
    )
    assert [r["payment_id"] for r in window] == ["P2"]
    assert "exactly one of" in cli("history", status=2).stderr
    assert "--from" in cli("history", "--customer", "C1", "--from", "soon", status=2).stderr

    rejected = cli.json("refunds", "--status", "rejected")
    assert [r["refund_id"] for r in rejected] == ["R4", "R3"]
    assert [r["refund_id"] for r in cli.json("refunds", "--station", "ST-B")] == ["R1"]
    assert "--status must be one of" in cli("refunds", "--status", "lost", status=2).stderr
    (shown,) = cli.json("refund", "show", "R2")
    assert (shown["status"], shown["failure_reason"], shown["age"]) == (
        "failed",
        "card expired",
        "0:30:00",
    )
    assert "no refund 'R9'" in cli("refund", "show", "R9", status=1).stderr

    stations = cli.json("analytics", "query", "SELECT station_id, sessions FROM popular_locations")
    assert stations == [
        {"station_id": "ST-A", "sessions": 2},
        {"station_id": "ST-B", "sessions": 1},
    ]
    refused = cli("analytics", "query", "DROP TABLE fact_sessions", status=2)
    assert "only SELECT" in refused.stderr
    page = tmp_path / "report.html"
    report = cli("analytics", "report", "--html", str(page))
    assert "Trial balance" in report.stdout
    assert "<h2>Station utilisation</h2>" in page.read_text()


def test_fully_embedded_default(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    _ledger(data_dir)
    cli = Cli(_env(data_dir, None))
    cli("project", "--until-idle")
    assert (data_dir / "read_models.sqlite3").exists()
    history = cli.json("history", "--customer", "C2")
    assert [(r["payment_id"], r["status"]) for r in history] == [("P3", "declined")]
    assert [r["refund_id"] for r in cli.json("refunds", "--customer", "C1")] == ["R3", "R2", "R1"]


def test_a_bad_setting_is_one_line(tmp_path: Path) -> None:
    env = _env(tmp_path, None)
    env["EVLEDGER_PG_DSN"] = "host=x port=notanumber ==="
    result = Cli(env)("refunds", status=2)
    assert result.stderr.startswith("evledger: bad setting: EVLEDGER_PG_DSN")
    assert len(result.stderr.strip().splitlines()) == 1


def test_queries_before_any_projection_say_what_to_do(tmp_path: Path) -> None:
    result = Cli(_env(tmp_path / "empty", None))("refunds", status=1)
    assert "run `evledger project`" in result.stderr
