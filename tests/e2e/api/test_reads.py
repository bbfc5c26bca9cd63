"""The read endpoints over HTTP on a real server: pages, details, refunds, trail, analytics,
and which role may read what."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.keys import Role
from projections.databases.postgres import PostgresDatabase
from tests.e2e.api.conftest import Server

pytestmark = pytest.mark.postgres


def test_customer_payments_page_by_page_with_next_links(server: Server) -> None:
    with server.client(Role.support) as client:
        first = client.get("/v1/customers/C1/payments", params={"limit": 1})
        assert first.status_code == 200
        page = first.json()
        assert [item["payment_id"] for item in page["items"]] == ["P2"]
        p2 = page["items"][0]
        assert (p2["currency"], p2["captured_minor"], p2["refunded_minor"], p2["net_minor"]) == (
            "EUR",
            600,
            76,
            524,
        )
        assert isinstance(p2["captured_minor"], int)
        assert page["next"].startswith("/v1/customers/C1/payments?")
        second = client.get(page["next"]).json()
        assert [item["payment_id"] for item in second["items"]] == ["P1"]
        third = client.get(second["next"]).json()
        assert third == {"items": [], "next_cursor": None, "next": None}


def test_station_payments_and_a_period(server: Server) -> None:
    with server.client(Role.auditor) as client:
        station = client.get("/v1/stations/ST-A/payments").json()
        assert [item["payment_id"] for item in station["items"]] == ["P3", "P1"]
        assert station["next"] is None
        window = client.get(
            "/v1/customers/C1/payments",
            params={"from": "2024-05-06T11:00:00Z", "to": "2024-05-07T00:00:00+00:00"},
        ).json()
        assert [item["payment_id"] for item in window["items"]] == ["P2"]
        # The next link keeps the period.
        paged = client.get(
            "/v1/stations/ST-A/payments", params={"limit": 1, "from": "2024-05-01T00:00:00Z"}
        ).json()
        assert "from=2024-05-01" in paged["next"]


def test_payment_detail_with_line_items_and_refunds(server: Server) -> None:
    with server.client(Role.support) as client:
        detail = client.get("/v1/payments/P1").json()
    assert detail["reconciliation"] == "exact"
    assert detail["energy_kwh"] == "20.000"
    assert [item["component"] for item in detail["line_items"]] == [
        "energy",
        "time",
        "session_fee",
        "idle_fee",
    ]
    assert sum(item["amount_minor"] for item in detail["line_items"]) == 830
    assert {(r["refund_id"], r["status"]) for r in detail["refunds"]} == {
        ("R2", "failed"),
        ("R3", "rejected"),
    }


def test_refunds_list_and_detail(server: Server) -> None:
    with server.client(Role.support) as client:
        rejected = client.get("/v1/refunds", params={"status": "rejected"}).json()
        assert [r["refund_id"] for r in rejected["items"]] == ["R4", "R3"]
        by_customer = client.get("/v1/refunds", params={"customer": "C1"}).json()
        assert [r["refund_id"] for r in by_customer["items"]] == ["R3", "R2", "R1"]
        by_station = client.get("/v1/refunds", params={"station": "ST-B"}).json()
        assert [r["refund_id"] for r in by_station["items"]] == ["R1"]
        r2 = client.get("/v1/refunds/R2").json()
    assert r2["note"] == "slow charging"
    assert r2["age_seconds"] == 30 * 60
    assert (r2["amount_minor"], r2["currency"]) == (300, "EUR")


def test_audit_trail(server: Server) -> None:
    with server.client(Role.auditor) as client:
        trail = client.get("/v1/audit/trail/P2").json()
    assert trail["kinds"] == ["payment"]
    kinds = {entry["kind"] for entry in trail["entries"]}
    assert {"payment", "session", "refund"} <= kinds
    ids = [entry["notification_id"] for entry in trail["entries"]]
    assert ids == sorted(ids)


def test_analytics_report_as_json_and_html(server: Server) -> None:
    with server.client(Role.analyst) as client:
        document = client.get("/v1/analytics/report").json()
        page = client.get("/v1/analytics/report", params={"format": "html"})
    assert document["currency"] == "EUR"
    assert document["headline"]["books_balanced"] is True
    trial_balance = document["sections"]["trial_balance"]
    assert sum(row["debit_minor"] for row in trial_balance) == sum(
        row["credit_minor"] for row in trial_balance
    )
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>" in page.text and "Trial balance" in page.text


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        (Role.support, "/v1/payments/P1", 200),
        (Role.auditor, "/v1/payments/P1", 200),
        (Role.analyst, "/v1/payments/P1", 403),
        (Role.support, "/v1/refunds", 200),
        (Role.auditor, "/v1/refunds/R1", 200),
        (Role.analyst, "/v1/refunds", 403),
        (Role.auditor, "/v1/audit/trail/R1", 200),
        (Role.support, "/v1/audit/trail/R1", 403),
        (Role.analyst, "/v1/audit/trail/R1", 403),
        (Role.analyst, "/v1/analytics/report", 200),
        (Role.support, "/v1/analytics/report", 403),
        (Role.auditor, "/v1/analytics/report", 403),
    ],
)
def test_roles(server: Server, role: Role, path: str, status: int) -> None:
    with server.client(role) as client:
        response = client.get(path)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.headers["content-type"] == "application/problem+json"
        assert f"role {role.value!r}" in response.json()["detail"]


def test_operations_endpoints(server: Server) -> None:
    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        body = ready.json()
        assert body["ready"] is True
        assert body["ledger_position"] == 64
        assert body["projections"]["payment_history"] == {"position": 64, "lag": 0, "ahead": False}
        assert body["projections"]["analytics"] == {"position": 64, "lag": 0, "ahead": False}
        client.get("/v1/refunds")  # a 401, counted like any answer
        metrics = client.get("/metrics").text
        assert 'evledger_api_requests_total{method="GET",route="/v1/refunds",status="401"}' in (
            metrics
        )
        spec = client.get("/openapi.json").json()
        assert "/v1/customers/{customer_id}/payments" in spec["paths"]
        assert client.get("/docs").status_code == 200


def test_not_ready_when_a_view_is_past_the_ledger(server: Server) -> None:
    # A read model past the ledger's head applied events this ledger does not hold: the
    # server reads another ledger's views (a wrong topic prefix, a recreated ledger).
    db = PostgresDatabase(server.dsn)
    moved = "UPDATE projection_tracking SET notification_id = ? WHERE projection_name = ?"
    try:
        db.execute(moved, [100, "payment_history"])
        with server.client() as client:
            ready = client.get("/readyz")
        assert ready.status_code == 503, ready.text
        body = ready.json()
        assert body["ready"] is False
        assert body["views_database"] == "ok"
        assert body["ledger"] == "ok"  # the ledger answered: its two forms only
        assert body["ledger_position"] == 64
        assert body["projections"]["payment_history"] == {
            "position": 100,
            "lag": 0,
            "ahead": True,
        }
        assert body["projections"]["refund_status"] == {"position": 64, "lag": 0, "ahead": False}
    finally:
        db.execute(moved, [64, "payment_history"])
        db.close()
    with server.client() as client:
        assert client.get("/readyz").json()["ready"] is True


def test_analytics_past_the_ledger_is_reported_and_ready(server: Server) -> None:
    # The analytics file serves one report: ahead, it is said, but the API stays ready.
    from projections.analytics_snapshot import reader_path
    from projections.databases.duckdb import DuckDatabase

    path = reader_path(Path(server.env["EVLEDGER_DATA_DIR"]) / "analytics.duckdb")
    moved = "UPDATE projection_tracking SET notification_id = ? WHERE projection_name = ?"

    def move(position: int) -> None:
        db = DuckDatabase(path)
        try:
            db.execute(moved, [position, "analytics"])
        finally:
            db.close()

    move(100)
    try:
        with server.client() as client:
            ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        body = ready.json()
        assert (body["ready"], body["ledger"]) == (True, "ok")
        assert body["projections"]["analytics"] == {"position": 100, "lag": 0, "ahead": True}
        assert body["projections"]["payment_history"]["ahead"] is False
    finally:
        move(64)
