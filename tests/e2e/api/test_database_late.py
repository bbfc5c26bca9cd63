"""Start-up does not wait for the read-model database: with a wrong password, or a database
that does not exist yet, `evledger serve` answers /healthz as soon as its port is open,
/readyz says which database and what is wrong (never the password), history pages are 503
problems with Retry-After at once, and everything answers once the database does (one
worker or several), or once PostgreSQL's port, closed at start, opens."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import httpx
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.keys import Role
from api.problems import Problem
from api.views import ViewsDatabase
from projections.databases.postgres import drop_database, drop_schema
from tests.e2e.api.conftest import (
    environment,
    free_port,
    make_keys,
    project_scenario,
    schema_dsn,
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
        _wait_ready(url)
        for _ in range(10):
            # A new connection each time, so that the kernel spreads them over workers.
            page = httpx.get(f"{url}{PAGE}", headers={"Authorization": f"Bearer {key}"})
            assert page.status_code == 200, page.text
            assert page.json()["items"]
    finally:
        stop_server(process)


def _wait_ready(url: str) -> None:
    """Until ten /readyz in a row are 200: every worker notices on its own, and a new
    connection each time lets the kernel spread them over the workers."""
    ready_in_a_row = 0
    deadline = time.monotonic() + 60
    while ready_in_a_row < 10:
        answer = httpx.get(f"{url}/readyz", timeout=30)
        assert time.monotonic() < deadline, answer.text
        ready_in_a_row = ready_in_a_row + 1 if answer.status_code == 200 else 0
        time.sleep(0.1)


class _Relay:
    """A TCP relay from a loopback port to PostgreSQL, listening only once started: until
    then the port is closed, as a PostgreSQL that is not up yet."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._listener: socket.socket | None = None

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        assert self._listener is not None
        with suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                upstream = socket.create_connection(self.target)
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    with suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def test_postgresql_that_starts_listening_later(pg_dsn: str, tmp_path: Path) -> None:
    schema = f"test_api_{uuid.uuid4().hex[:10]}"
    dsn = schema_dsn(pg_dsn, schema)
    try:
        project_scenario(tmp_path / "data", dsn)
        key = make_keys(dsn)[Role.support]
        info = conninfo_to_dict(dsn)
        relay = _Relay((str(info.get("host", "127.0.0.1")), int(info.get("port", 5432))))
        env = environment(tmp_path / "data", _with(dsn, port=str(relay.port)))
        process, url = start_server(env, tmp_path / "serve.log")
        try:
            _assert_outage_answers(url, key, "Connection refused", "\0")
            relay.start()
            _wait_ready(url)
            page = httpx.get(f"{url}{PAGE}", headers={"Authorization": f"Bearer {key}"})
            assert page.status_code == 200, page.text
        finally:
            stop_server(process)
            relay.close()
    finally:
        drop_schema(pg_dsn, schema)


def test_pools_that_cannot_start_are_one_clear_503_and_close_still_closes(pg_dsn: str) -> None:
    """An error no adapter names (here the history pages' pool refusing to open) is not a
    background task ending in silence, with requests waiting for a first answer that never
    comes and shutdown raising before it closed the other pool."""
    from projections.databases.postgres import PostgresPool
    from projections.databases.postgres_async import AsyncPostgresPool

    class Refusing(AsyncPostgresPool):
        async def open(self) -> None:
            raise RuntimeError("the pool refuses to start")

    lender = PostgresPool(pg_dsn, 1)
    views = ViewsDatabase(lender, Refusing(pg_dsn, 1), "PostgreSQL")

    async def run() -> str:
        await views.open()
        try:
            with pytest.raises(Problem) as refused:
                async with views.async_connection():
                    pass
        finally:
            await views.close()
        return refused.value.detail

    # Before, the detail was the first try's "not tried yet", given once the wait ran out.
    assert "connection pools could not start (RuntimeError)" in asyncio.run(run())
    assert lender._pool.closed  # opened before the other refused, closed by close()
