"""Every way a request can be wrong gets a clear 4xx problem document, never a 500; every
response carries a request id; the log holds no keys and no customer data."""

from __future__ import annotations

import time

import httpx
import pytest

from api.keys import Role
from tests.e2e.api.conftest import Server

pytestmark = pytest.mark.postgres

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert words in body["detail"], body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]


def test_without_a_key_or_with_a_bad_one(server: Server) -> None:
    with server.client() as client:
        missing = client.get("/v1/payments/P1")
        _problem(missing, 401, "needs an API key")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        _problem(
            client.get("/v1/payments/P1", headers={"Authorization": "Bearer evk_nope"}),
            401,
            "not valid",
        )
        forged = server.keys[Role.support][:-4] + "AAAA"
        _problem(
            client.get("/v1/payments/P1", headers={"Authorization": f"Bearer {forged}"}),
            401,
            "not valid",
        )
        _problem(
            client.get("/v1/payments/P1", headers={"Authorization": "Basic dXNlcjpwYXNz"}),
            401,
            "needs an API key",
        )


def test_bad_parameters(server: Server) -> None:
    with server.client(Role.support) as client:
        path = "/v1/customers/C1/payments"
        _problem(client.get(path, params={"after": "not-a-cursor"}), 400, "not a cursor")
        _problem(client.get(path, params={"after": "W10"}), 400, "not a cursor")  # "[]"
        _problem(client.get(path, params={"limit": 501}), 422, "less than or equal to 500")
        _problem(client.get(path, params={"limit": 0}), 422, "greater than or equal to 1")
        _problem(client.get(path, params={"limit": "ten"}), 422, "limit")
        _problem(client.get(path, params={"from": "2024-05-01"}), 422, "RFC 3339")
        _problem(client.get(path, params={"to": "2024-05-01T10:00:00"}), 422, "needs an offset")
        _problem(client.get(path, params={"from": "yesterday"}), 422, "RFC 3339")
        _problem(client.get(path, params={"from": "1714557600"}), 422, "RFC 3339")
        _problem(client.get(path, params={"from": "2024-13-01T10:00:00Z"}), 422, "not a valid")
        _problem(client.get("/v1/customers/C%001/payments"), 422, "customer_id")
        # A line break in an id reaches its route (a 422), never "no such endpoint".
        _problem(client.get("/v1/stations/a%0Ab/payments"), 422, "station_id")
        _problem(client.get("/v1/payments/P%0D%0A1"), 422, "payment_id")
        _problem(client.get("/v1/refunds/%0A"), 422, "refund_id")
        _problem(client.get("/v1/refunds", params={"status": "lost"}), 422, "status")


def test_unknown_query_parameters_after_the_key(server: Server) -> None:
    # The key first: without one a 401 whatever the query (it was a 422), with one of
    # another role a 403; then a misspelt filter is refused, not ignored.
    with server.client() as client:
        _problem(client.get("/v1/refunds", params={"stauts": "issued"}), 401, "needs an API key")
        _problem(client.get("/v1/customers/C1/payments?x=1"), 401, "needs an API key")
        _problem(client.get("/healthz", params={"x": "1"}), 422, "unknown query parameter 'x'")
    with server.client(Role.analyst) as client:
        _problem(client.get("/v1/refunds", params={"stauts": "issued"}), 403, "needs: support")
    with server.client(Role.support) as client:
        _problem(
            client.get("/v1/refunds", params={"stauts": "issued"}),
            422,
            "unknown query parameter 'stauts'; this endpoint takes: customer, limit, station, "
            "status",
        )
        _problem(client.get("/v1/payments/P1?limit=1"), 422, "this endpoint takes: none")


@pytest.mark.parametrize(
    "path",
    [
        # An encoded surrogate (ED A0 80) and bytes that are no UTF-8, in each kind of
        # request text that reaches a query.
        "/v1/customers/%ED%A0%80/payments",
        "/v1/stations/%FF%FE/payments?limit=1",
        "/v1/payments/%ED%A0%80",
        "/v1/refunds/%C3",
        "/v1/refunds?customer=%ED%A0%80&station=%FF",
        "/v1/customers/C1/payments?after=%ED%A0%80",
        "/v1/customers/C1/payments?from=%ED%A0%80",
        "/v1/audit/trail/%ED%A0%80",
    ],
)
def test_text_that_is_no_utf8_is_never_a_500(server: Server, path: str) -> None:
    with server.client(Role.auditor) as client:
        for _ in ("the routes", "the fast path, the key cached"):
            answer = client.get(path)
            assert answer.status_code in (200, 400, 404, 422), answer.text


def test_unknown_ids_and_routes(server: Server) -> None:
    with server.client(Role.auditor) as client:
        _problem(client.get("/v1/payments/P-404"), 404, "no payment 'P-404'")
        _problem(client.get("/v1/refunds/R-404"), 404, "no refund 'R-404'")
        _problem(client.get("/v1/audit/trail/X-404"), 404, "X-404")
        _problem(client.get("/v1/nothing"), 404, "no such endpoint")
        _problem(client.delete("/v1/refunds"), 405, "not allowed")
        # An unknown customer has no payments: an empty page, not an error.
        empty = client.get("/v1/customers/C-404/payments")
        assert empty.json() == {"items": [], "next_cursor": None, "next": None}


def _post(client: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return client.post(
        "/v1/refunds",
        content=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "key-00000001", **headers},
    )


def test_bad_refund_requests(server: Server) -> None:
    with server.client(Role.support) as client:
        _problem(_post(client, b"x" * 100_000), 413, "larger than")
        _problem(_post(client, b"payment_id=P1", **{"Content-Type": "text/plain"}), 415, "JSON")
        _problem(_post(client, b"{not json"), 400, "not valid JSON")
        # Our own words, not Python's hint (sys.set_int_max_str_digits) nor a 500.
        digits = _post(client, b'{"amount_minor": ' + b"9" * 5000 + b"}")
        _problem(digits, 400, "a number of more digits than any field takes")
        assert "sys." not in digits.text
        _problem(_post(client, b"[" * 10_000), 400, "nested deeper")
        _problem(_post(client, b"[]"), 422, "")
        _problem(
            _post(client, b'{"payment_id": "P1", "amount_minor": 1.5, "reason": "other"}'),
            422,
            "amount_minor",
        )
        _problem(
            _post(client, b'{"payment_id": "P1", "amount_minor": 5, "reason": "whim"}'),
            422,
            "reason",
        )
        _problem(
            _post(
                client,
                b'{"payment_id": "P1", "amount_minor": 5, "reason": "other"}',
                **{"Idempotency-Key": "short"},
            ),
            422,
            "Idempotency-Key",
        )
        # A valid request on the embedded default: Kafka is needed, said plainly.
        _problem(
            _post(client, b'{"payment_id": "P1", "amount_minor": 5, "reason": "other"}'),
            503,
            "need Kafka",
        )
    with server.client(Role.auditor) as client:
        _problem(
            _post(client, b'{"payment_id": "P1", "amount_minor": 5, "reason": "other"}'),
            403,
            "needs: support",
        )


def test_head_on_the_operations_endpoints(server: Server) -> None:
    with server.client() as client:
        for path in ("/healthz", "/readyz"):
            head, get = client.head(path), client.get(path)
            assert head.status_code == get.status_code == 200, path
            assert head.content == b""
            assert head.headers["content-type"] == get.headers["content-type"]
            assert head.headers["x-request-id"]
        paths = client.get("/openapi.json").json()["paths"]
        assert list(paths["/healthz"]) == ["get"]  # HEAD is not a second operation


def test_request_ids(server: Server) -> None:
    with server.client() as client:
        generated = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
        assert len(generated) == 3
        echoed = client.get("/healthz", headers={"X-Request-ID": "trace-12345678"})
        assert echoed.headers["x-request-id"] == "trace-12345678"
        # A request id that could forge log lines is replaced, not echoed.
        forged = client.get("/healthz", headers={"X-Request-ID": "bad id\\nINFO fake"})
        assert forged.headers["x-request-id"] != "bad id\\nINFO fake"


def test_revoked_key_stops_working(server: Server) -> None:
    created = server.cli("apikey", "create", "--role", "support", "--name", "temp")
    key = created.stdout.strip()
    assert key.startswith("evk_")
    listed = server.cli("apikey", "list", "--format", "json").stdout
    assert "temp" in listed
    assert key not in listed
    with server.client(Authorization=f"Bearer {key}") as client:
        assert client.get("/v1/refunds").status_code == 200
        key_id = key.split("_")[1]
        assert "revoked" in server.cli("apikey", "revoke", key_id).stdout
        # Verified keys are trusted for a couple of seconds; then the revocation holds.
        deadline = time.monotonic() + 30
        while client.get("/v1/refunds").status_code == 200:
            assert time.monotonic() < deadline, "a revoked key kept working"
            time.sleep(0.5)
        _problem(client.get("/v1/refunds"), 401, "not valid")
    server.cli("apikey", "revoke", "no-such-key", status=1)
    server.cli("apikey", "create", "--role", "boss", "--name", "x", status=2)


def test_logs_hold_no_keys_and_no_customer_data(server: Server) -> None:
    secret_customer = "CUSTOMER-SECRET-7f3a"
    with server.client(Role.support) as client:
        client.get(f"/v1/customers/{secret_customer}/payments")
        client.get("/v1/refunds", params={"customer": secret_customer})
    with server.client(Authorization=f"Bearer {server.keys[Role.support]}X") as client:
        client.get("/v1/refunds")
    log = server.log.read_text()
    assert "/v1/customers/{customer_id}/payments" in log  # the route, by its template
    assert secret_customer not in log
    for key in server.keys.values():
        assert key not in log
        assert key.split("_", 2)[2] not in log  # the secret part (it may hold "_" itself)
    assert server.dsn not in log
