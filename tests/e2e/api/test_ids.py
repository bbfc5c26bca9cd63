"""Ids the upstream contract accepts in the API's paths: one with `/` (escaped as %2F: an
id is one segment, told apart on the raw path), one that is a dot segment (`..`, escaped as
%2E%2E, which clients do not remove), `%` and escapes, spaces and letters outside ASCII; a
page's `next` link reaches the same owner again. A path with more segments than a route's
is no id: the trailing-slash redirect and 404s are Starlette's."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from api.keys import Role
from consumers.contract import Identifier
from projections.databases.postgres import PostgresDatabase
from tests.e2e.api.conftest import Server

pytestmark = pytest.mark.postgres

# Each a valid id of the contract (printable, not blank).
ODD_IDS = [
    "INV/2024/07",
    "..",
    ".",
    "a/../b",
    "Zahlung 1 für Ü",
    "/lead",
    "x%2Fy",
    "50%",
    "%41",
    "x/",
    "a/payments",
]


def _escaped(value: str) -> str:
    """As a client must send an id in a path: every reserved character escaped, and the
    dots of a dot segment too (a client removes `.` and `..` segments)."""
    return "/".join(
        part.replace(".", "%2E") if part in (".", "..") else part
        for part in quote(value, safe="/").split("/")
    ).replace("/", "%2F")


@pytest.fixture(scope="module")
def odd_rows(server: Server) -> None:
    from pydantic import TypeAdapter

    valid = TypeAdapter(Identifier)
    db = PostgresDatabase(server.dsn)
    try:
        rows = []
        for number, value in enumerate(ODD_IDS):
            assert valid.validate_python(value) == value
            for day in (1, 2, 3):
                payment = value if day == 1 else f"{value}#{day}"
                rows.append(
                    [
                        f"odd-id-{number}-{day}",
                        payment,
                        value,
                        value,
                        datetime(2024, 5, day, tzinfo=UTC),
                    ]
                )
        db.executemany(
            "INSERT INTO payment_history (payment_key, payment_id, customer_id, station_id,"
            " status, created_at) VALUES (?, ?, ?, ?, 'captured', ?)",
            rows,
        )
    finally:
        db.close()


@pytest.mark.parametrize("value", ODD_IDS)
def test_a_payment_whose_id_a_path_escapes(server: Server, odd_rows: None, value: str) -> None:
    with server.client(Role.auditor) as client:
        answer = client.get(f"/v1/payments/{_escaped(value)}")
    assert answer.status_code == 200, answer.text
    assert answer.json()["payment_id"] == value


@pytest.mark.parametrize("collection", ["customers", "stations"])
@pytest.mark.parametrize("value", ODD_IDS)
def test_pages_of_an_owner_whose_id_a_path_escapes(
    server: Server, odd_rows: None, value: str, collection: str
) -> None:
    path: str | None = f"/v1/{collection}/{_escaped(value)}/payments?limit=2"
    seen: list[str] = []
    with server.client(Role.support) as client:
        for _ in ("the routes", "the fast path, the key cached"):
            seen.clear()
            path = f"/v1/{collection}/{_escaped(value)}/payments?limit=2"
            while path is not None:
                answer = client.get(path)
                assert answer.status_code == 200, (path, answer.text)
                page = answer.json()
                seen += [item["payment_id"] for item in page["items"]]
                path = page["next"]
            assert seen == [f"{value}#3", f"{value}#2", value]


def test_the_openapi_description_says_which_ids_a_path_reaches(server: Server) -> None:
    with server.client() as client:
        spec = client.get("/openapi.json").json()
    parameter = spec["paths"]["/v1/payments/{payment_id}"]["get"]["parameters"][0]
    assert "%2F" in parameter["description"]
    assert "%2E" in parameter["description"]


@pytest.mark.parametrize(
    ("path", "redirected_to"),
    [
        ("/v1/payments/P2/", "/v1/payments/P2"),
        ("/v1/audit/trail/P2/", "/v1/audit/trail/P2"),
        ("/v1/payments/INV%2F2024%2F07/", "/v1/payments/INV%2F2024%2F07"),
        ("/v1/payments/50%25/", "/v1/payments/50%25"),
    ],
)
def test_a_trailing_slash_redirects(server: Server, path: str, redirected_to: str) -> None:
    with server.client(Role.auditor) as client:
        answer = client.get(path)
        assert answer.status_code == 307, answer.text
        assert answer.headers["location"].endswith(redirected_to)
        assert client.get(path, follow_redirects=True).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/v1/customers/C1/payments/x/payments",  # not customer 'C1/payments/x'
        "/v1/payments/INV/2024/07",  # a `/` as is separates segments
        "/v1/stations/a/payments/payments",
    ],
)
def test_more_segments_than_a_route_has_is_no_route(
    server: Server, odd_rows: None, path: str
) -> None:
    with server.client(Role.support) as client:
        answer = client.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.json()["detail"] == "no such endpoint; see /docs"
