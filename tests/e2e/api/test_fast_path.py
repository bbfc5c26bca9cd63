"""The history pages' fast path answers what the routes answer: a key's first request is
verified and answered by the FastAPI routes, the next ones (the key now cached) by the fast
path; both give the same status, headers and bytes, errors included. Bad input goes to the
routes; a page that fails once asked for is answered by the fast path, once."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
import pytest

from api.keys import Role, create_key
from projections.databases.postgres import PostgresDatabase
from tests.e2e.api.conftest import FORGED_CURSOR, Server

pytestmark = pytest.mark.postgres

_VARYING = {"date"}
_HEADERS = {"X-Request-ID": "fast-path-test"}  # the same in both answers' problem documents


def _new_key(server: Server, role: Role) -> str:
    db = PostgresDatabase(server.dsn)
    try:
        return create_key(db, role, f"fast-path-{role.value}")[0]
    finally:
        db.close()


def _both_ways(server: Server, path: str, role: Role = Role.support) -> httpx.Response:
    """The answer of the routes (a fresh key) and of the fast path (the same key again)."""
    authorization = f"Bearer {_new_key(server, role)}"
    with server.client(Authorization=authorization, **_HEADERS) as client:
        routes, fast = client.get(path), client.get(path)
    assert fast.status_code == routes.status_code, path
    assert fast.content == routes.content, path
    kept = [(name, value) for name, value in routes.headers.items() if name not in _VARYING]
    assert [(n, v) for n, v in fast.headers.items() if n not in _VARYING] == kept, path
    return fast


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/C1/payments?limit=1",
        "/v1/customers/C1/payments",
        "/v1/stations/ST-A/payments?from=2020-01-01T00:00:00Z&to=2100-01-01T00:00:00%2B02:00",
        "/v1/customers/nobody/payments?limit=500",
    ],
)
def test_the_same_page_by_either_path(server: Server, path: str) -> None:
    assert _both_ways(server, path).status_code == 200


def test_next_links_by_either_path(server: Server) -> None:
    first = _both_ways(server, "/v1/customers/C1/payments?limit=1").json()
    second = _both_ways(server, first["next"]).json()
    assert [item["payment_id"] for item in second["items"]] == ["P1"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/v1/customers/C1/payments?limit=0", 422),
        ("/v1/customers/C1/payments?limit=1&limit=2", 200),
        ("/v1/customers/C1/payments?limt=1", 422),
        ("/v1/customers/C1/payments?after=bogus", 400),
        ("/v1/customers/C1/payments?after=", 400),
        # A lone surrogate in the payment id: no driver can send it (it was a 500).
        (f"/v1/customers/C1/payments?after={FORGED_CURSOR}", 400),
        (f"/v1/stations/ST-A/payments?limit=1&after={FORGED_CURSOR}", 400),
        ("/v1/customers/C1/payments?from=2024-05-01T10:00:00", 422),
        ("/v1/customers/%01/payments", 422),
    ],
)
def test_requests_the_fast_path_leaves_to_the_routes(
    server: Server, path: str, status: int
) -> None:
    assert _both_ways(server, path).status_code == status


# Characters a URL escapes (`?`, `#`, `\\`, `%`, a space) in the owner's id.
_ODD_OWNER = "a?b#c\\d%25e f"


def test_next_links_for_an_id_with_characters_a_url_escapes(server: Server) -> None:
    db = PostgresDatabase(server.dsn)
    try:
        db.executemany(
            "INSERT INTO payment_history (payment_key, payment_id, customer_id, status,"
            " created_at) VALUES (?, ?, ?, 'captured', ?)",
            [
                [f"odd-{day}", f"P-odd-{day}", _ODD_OWNER, datetime(2024, 5, day, tzinfo=UTC)]
                for day in (1, 2, 3)
            ],
        )
    finally:
        db.close()
    path: str | None = f"/v1/customers/{quote(_ODD_OWNER, safe='')}/payments?limit=1"
    seen: list[str] = []
    while path is not None:
        assert quote(_ODD_OWNER, safe="") in path  # escaped once, never twice
        page = _both_ways(server, path).json()
        seen += [item["payment_id"] for item in page["items"]]
        path = page["next"]
    assert seen == ["P-odd-3", "P-odd-2", "P-odd-1"]


def test_a_page_the_fast_path_cannot_give_is_answered_and_logged_once(server: Server) -> None:
    # A cursor it never handed out: found while the page is asked for, answered there.
    request_id = f"fast-{uuid.uuid4().hex}"
    authorization = f"Bearer {_new_key(server, Role.support)}"
    with server.client(Authorization=authorization) as client:
        client.get("/v1/customers/C1/payments")  # the key verified, and cached
        answer = client.get(
            "/v1/customers/C1/payments?after=bogus", headers={"X-Request-ID": request_id}
        )
    assert answer.status_code == 400
    assert answer.headers["x-request-id"] == request_id
    assert answer.json()["request_id"] == request_id
    lines = _log_lines(server, request_id)
    assert len(lines) == 1 and "GET /v1/customers/{customer_id}/payments 400" in lines[0]


def _log_lines(server: Server, text: str) -> list[str]:
    """The server's log lines holding ``text``, once there are any: the access-log line is
    written after the answer is sent, so the client may read the answer first."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in server.log.read_text().splitlines() if text in line]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_a_cached_key_of_another_role_is_still_refused(server: Server) -> None:
    response = _both_ways(server, "/v1/customers/C1/payments", Role.analyst)
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


def test_the_access_log_names_the_route_template(server: Server) -> None:
    _both_ways(server, "/v1/stations/ST-A/payments?limit=2")
    assert _log_lines(server, "GET /v1/stations/{station_id}/payments 200")
    assert "/v1/stations/ST-A" not in server.log.read_text()
