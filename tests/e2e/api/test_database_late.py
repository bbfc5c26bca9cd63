"""Start-up does not wait for the read-model database: with a wrong password, or a database
that does not exist yet, `evledger serve` answers /healthz as soon as its port is open,
/readyz says which database and what is wrong (never the password), history pages are 503
problems with Retry-After at once, and everything answers once the database does (one
worker or several)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.keys import Role
from projections.databases.postgres import drop_database
from tests.e2e.api.conftest import (
    environment,
    make_keys,
    project_scenario,
    start_server,
    stop_server,
)

WRONG_PASSWORD = "not-the-pw-7d1e"
PAGE = "/v1/customers/C1/payments"


def _with(dsn: str, **changes: str) -> str:
    return make_conninfo(dsn, **changes)


def _assert_outage_answers(url: str, key: str, says: str, secret: str) -> None:
    """/healthz 200; /readyz and a history page 503, naming the database and the reason."""
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        detail = ready.json()["views_database"]
        assert "PostgreSQL" in detail and "127.0.0.1" in detail, detail
        assert says in detail, detail
        page = client.get(PAGE, headers={"Authorization": f"Bearer {key}"})
        assert page.status_code == 503
        assert page.headers["content-type"] == "application/problem+json"
        assert int(page.headers["retry-after"]) > 0
        assert says in page.json()["detail"]
        for answer in (ready, page):
            assert secret not in answer.text


def test_wrong_password(pg_dsn: str, tmp_path: Path) -> None:
    dsn = _with(pg_dsn, password=WRONG_PASSWORD)
    key = "evk_0123456789ab_" + "A" * 43
    process, url = start_server(environment(tmp_path / "data", dsn), tmp_path / "serve.log")
    try:
        _assert_outage_answers(url, key, "password authentication failed", WRONG_PASSWORD)
    finally:
        stop_server(process)
    assert WRONG_PASSWORD not in (tmp_path / "serve.log").read_text()


@pytest.fixture
def hidden_database(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """A database with the projected scenario and keys, renamed away: (its DSN, the name
    that makes it appear, a reader's key). Dropped after."""
    import psycopg

    name = f"test_api_late_{uuid.uuid4().hex[:10]}"
    hidden = f"{name}_hidden"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        dsn = _with(pg_dsn, dbname=name)
        project_scenario(tmp_path / "data", dsn)
        key = make_keys(dsn)[Role.support]
        _rename(pg_dsn, name, hidden)
        yield dsn, hidden, key
    finally:
        drop_database(pg_dsn, name)
        drop_database(pg_dsn, hidden)


def _rename(admin_dsn: str, old: str, new: str) -> None:
    """ALTER DATABASE ... RENAME, once the last session on it has gone (a closed pool's
    connections leave a moment after)."""
    import psycopg

    for attempt in range(40):
        try:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'ALTER DATABASE "{old}" RENAME TO "{new}"')
            return
        except psycopg.errors.ObjectInUse:
            if attempt == 39:
                raise
            time.sleep(0.25)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_database_that_appears_later(
    pg_dsn: str, tmp_path: Path, hidden_database: tuple[str, str, str], workers: str
) -> None:
    dsn, hidden, key = hidden_database
    name = conninfo_to_dict(dsn)["dbname"]
    password = str(conninfo_to_dict(pg_dsn).get("password") or "")
    env = environment(tmp_path / "data", dsn)
    process, url = start_server(env, tmp_path / "serve.log", "--workers", workers)
    try:
        _assert_outage_answers(url, key, f'database "{name}" does not exist', password or "\0")
        _rename(pg_dsn, hidden, str(name))
        # Every worker notices on its own: ask until a run of answers is all ready.
        ready_in_a_row = 0
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=url, timeout=30) as client:
            while ready_in_a_row < 10:
                assert time.monotonic() < deadline, client.get("/readyz").text
                # A new connection each time, so that the kernel spreads them over workers.
                answer = httpx.get(f"{url}/readyz", timeout=30)
                ready_in_a_row = ready_in_a_row + 1 if answer.status_code == 200 else 0
                time.sleep(0.1)
            for _ in range(10):
                page = httpx.get(f"{url}{PAGE}", headers={"Authorization": f"Bearer {key}"})
                assert page.status_code == 200, page.text
                assert page.json()["items"]
            assert client.get("/healthz").status_code == 200
    finally:
        stop_server(process)
