"""The API on the embedded default: SQLite views and keys in the data dir, no services."""

from __future__ import annotations

import os
from pathlib import Path

import httpx

from bootstrap import Settings, bootstrap
from domain.application import BillingApplication
from tests.e2e.api.conftest import FORGED_CURSOR, Server, start_server, stop_server
from tests.unit.projections.scenario import build_ledger


def test_embedded_default(tmp_path: Path) -> None:
    settings = Settings.embedded_in(tmp_path / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    build_ledger(app)
    app.close()
    with bootstrap(settings).projector() as runner:
        runner.run_until_idle()
    env = {key: value for key, value in os.environ.items() if not key.startswith("EVLEDGER_")}
    env["EVLEDGER_DATA_DIR"] = str(tmp_path / "data")
    server = Server("", env, tmp_path / "serve.log", "")
    key = server.cli("apikey", "create", "--role", "auditor", "--name", "local").stdout.strip()
    process, url = start_server(env, tmp_path / "serve.log")
    try:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            page = client.get("/v1/stations/ST-A/payments", params={"limit": 1}).json()
            assert [item["payment_id"] for item in page["items"]] == ["P3"]
            assert [i["payment_id"] for i in client.get(page["next"]).json()["items"]] == ["P1"]
            for _ in ("the routes", "the fast path, the key now cached"):
                forged = client.get("/v1/stations/ST-A/payments", params={"after": FORGED_CURSOR})
                assert forged.status_code == 400, forged.text
                assert "not a cursor" in forged.json()["detail"]
            assert client.get("/v1/refunds/R1").json()["status"] == "issued"
            trail = client.get("/v1/audit/trail/S1").json()
            assert trail["kinds"] == ["session"]
            ready = client.get("/readyz").json()
            assert ready["ledger_position"] == 64
            assert ready["projections"]["refund_status"] == {
                "position": 64,
                "lag": 0,
                "ahead": False,
            }
    finally:
        stop_server(process)
