"""History pages asked for at the same time share statements (api/page_batches.py) and
each is answered as it is alone: a real uvicorn serving the API over real PostgreSQL, the
pages held back by a lock on the payment history until all of them wait, then let go
together: each gets the bytes it gets alone, a cursor the API never handed out its 400
beside the others' pages; and with the database gone mid-batch, each its 503 problem
document with its own request id. The database is reached through a TCP relay that the
test can cut, as a network or a server going away would."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from api.app import create_app
from api.history_fast import HistoryFastPath
from api.keys import Role, create_key
from bench.fill import fill_postgres
from bootstrap import Settings, bootstrap
from projections.databases.postgres import PostgresDatabase, drop_schema
from tests.e2e.api.conftest import served

pytestmark = pytest.mark.postgres

PAGES = 40


class Relay:
    """Relays TCP connections from a free local port to PostgreSQL until cut."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._cut = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # cut
            upstream = socket.create_connection(self._target)
            with self._lock:
                self._sockets += [client, upstream]
                if self._cut:  # accepted just before: ends too
                    _end(client, upstream)
                    return
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        _end(source, sink)

    def cut(self) -> None:
        """New connections are refused, open ones end."""
        with self._lock:
            self._cut = True
            self._listener.close()
            _end(*self._sockets)


def _end(*sockets: socket.socket) -> None:
    for each in sockets:
        with contextlib.suppress(OSError):
            each.shutdown(socket.SHUT_RDWR)


@dataclass
class Api:
    url: str
    key: str
    dsn: str  # straight to the schema, for the test's own connection
    relay: Relay
    application_name: str  # of the server's connections (through the relay)
    fast: HistoryFastPath


@pytest.fixture
def api(pg_dsn: str, tmp_path: Path) -> Iterator[Api]:
    schema = f"test_batches_{uuid.uuid4().hex[:10]}"
    fill_postgres(pg_dsn, schema, rows=3000, customers=30, stations=7)
    direct = make_conninfo(pg_dsn, options=f"-csearch_path={schema}")
    db = PostgresDatabase(direct)
    key = create_key(db, Role.support, "batches")[0]
    db.close()
    target = conninfo_to_dict(pg_dsn)
    relay = Relay(str(target.get("host") or "127.0.0.1"), int(target.get("port") or 5432))
    name = f"batches-{uuid.uuid4().hex[:8]}"
    relayed = make_conninfo(direct, host="127.0.0.1", port=relay.port, application_name=name)
    fast = create_app(bootstrap(Settings(data_dir=tmp_path / "data", pg_dsn=relayed)))
    try:
        with served(fast) as url:
            yield Api(url, key, direct, relay, name, fast)
    finally:
        relay.cut()
        drop_schema(pg_dsn, schema)


def _paths(api: Api) -> list[str]:
    """Pages of every kind: customers' and stations', periods, limits, empty pages, second
    pages (their `next` links), and one cursor the API never handed out."""
    paths = []
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}) as c:
        for number in range(12):
            first = f"/v1/stations/ST-{number % 8}/payments?limit={1 + number * 7}"
            paths.append(first)
            link = c.get(first).raise_for_status().json()["next"]
            if link is not None:
                paths.append(link)
    paths += [f"/v1/customers/C-{number}/payments?limit={5 + number}" for number in range(0, 31, 3)]
    paths += [
        "/v1/customers/C-4/payments?from=2024-01-02T00:00:00Z&to=2024-03-01T00:00:00%2B02:00",
        "/v1/stations/ST-2/payments?from=2024-02-01T00:00:00Z&limit=200",
        "/v1/customers/nobody/payments",
        "/v1/customers/C-1/payments?after=bm90IGEgY3Vyc29y",  # "not a cursor"
    ]
    return (paths * 3)[:PAGES]


@dataclass
class Locked:
    """The payment history locked by the test's own transaction: pages wait for it."""

    connection: psycopg.Connection[tuple[object, ...]]

    def waiting(self, application_name: str) -> int:
        """The server's statements waiting for the lock."""
        row = self.connection.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND wait_event_type = 'Lock'",
            [application_name],
        ).fetchone()
        return int(row[0]) if row else 0


async def _all_at_once(
    api: Api, paths: list[str], while_waiting: Callable[[], None]
) -> list[httpx.Response]:
    """``paths`` asked for at once, each with its request id, while the history is locked;
    ``while_waiting`` (called once the server's statements wait) ends the lock or the
    database."""
    headers = {"Authorization": f"Bearer {api.key}"}
    limits = httpx.Limits(max_connections=PAGES)
    async with httpx.AsyncClient(
        base_url=api.url, headers=headers, limits=limits, timeout=60
    ) as client:
        answers = [
            asyncio.create_task(client.get(path, headers={"X-Request-ID": _request_id(number)}))
            for number, path in enumerate(paths)
        ]
        await asyncio.to_thread(while_waiting)
        return list(await asyncio.gather(*answers))


def _request_id(number: int) -> str:
    return f"batch-page-{number:03}"


def _lock(api: Api) -> psycopg.Connection[tuple[object, ...]]:
    connection = psycopg.connect(api.dsn)
    connection.execute("LOCK TABLE payment_history IN ACCESS EXCLUSIVE MODE")
    return connection


def _until_waiting(api: Api, connection: psycopg.Connection[tuple[object, ...]]) -> None:
    """Until a statement of the server waits for the lock, and the other pages have come."""
    watcher = psycopg.connect(api.dsn, autocommit=True)
    try:
        deadline = time.monotonic() + 60
        while not Locked(watcher).waiting(api.application_name):
            assert time.monotonic() < deadline, "no page reached the database"
            time.sleep(0.05)
    finally:
        watcher.close()
    time.sleep(2)  # every request is in by now: they wait for the batches ahead


def _batched(api: Api) -> float:
    """The most pages one statement answered (bucket bound), from /metrics."""
    text = httpx.get(f"{api.url}/metrics", timeout=30).text
    counts = {}
    for line in text.splitlines():
        if line.startswith("evledger_api_history_pages_per_statement_bucket"):
            bound = float(line.split('le="')[1].split('"')[0])
            counts[bound] = float(line.rsplit(" ", 1)[1])
    total = counts[float("inf")]
    return min(bound for bound, count in counts.items() if count == total)


def test_pages_asked_together_are_each_the_page_alone(api: Api) -> None:
    paths = _paths(api)
    with httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {api.key}"}) as c:
        # One at a time: a statement each.
        alone = [
            c.get(path, headers={"X-Request-ID": _request_id(number)})
            for number, path in enumerate(paths)
        ]
    assert _batched(api) == 1
    connection = _lock(api)

    def release() -> None:
        _until_waiting(api, connection)
        connection.rollback()

    try:
        together = asyncio.run(_all_at_once(api, paths, release))
    finally:
        connection.close()
    assert _batched(api) > 2  # some statement answered several pages
    for path, one, batched in zip(paths, alone, together, strict=True):
        assert (batched.status_code, batched.content) == (one.status_code, one.content), path
    statuses = sorted({answer.status_code for answer in together})
    assert statuses == [200, 400]
    bad = [answer for answer in together if answer.status_code == 400]
    assert all("cursor" in answer.json()["detail"] for answer in bad)


def test_the_database_gone_mid_batch_answers_each_page_503(api: Api) -> None:
    paths = [path for path in _paths(api) if "after=bm90" not in path]
    connection = _lock(api)

    def cut() -> None:
        _until_waiting(api, connection)
        api.relay.cut()

    try:
        answers = asyncio.run(_all_at_once(api, paths, cut))
    finally:
        connection.close()
    for number, answer in enumerate(answers):
        assert answer.status_code == 503, (paths[number], answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["x-request-id"] == _request_id(number)
        assert answer.json()["request_id"] == _request_id(number)
        assert "database" in answer.json()["detail"]


def test_pages_the_database_does_not_answer_get_503_within_the_wait(api: Api) -> None:
    paths = [path for path in _paths(api) if "after=bm90" not in path][:10]
    connection = _lock(api)  # held past the wait: a database that hangs
    started = time.monotonic()
    try:
        answers = asyncio.run(_all_at_once(api, paths, lambda: None))
    finally:
        connection.close()
    waited = time.monotonic() - started
    assert 5 <= waited < 15, waited  # each page's 5 s, not the statements' (held for ever)
    for number, answer in enumerate(answers):
        assert answer.status_code == 503, (paths[number], answer.text)
        assert answer.json()["request_id"] == _request_id(number)
        assert "unreachable or busy" in answer.json()["detail"]
