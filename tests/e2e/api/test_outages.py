"""With its database unreachable the server still starts, says so on /readyz and answers
503 problems, and never logs the DSN's password."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.api.conftest import Server, environment, free_port, start_server, stop_server

PASSWORD = "not-the-real-pw-4f9c"


@pytest.fixture(scope="module")
def down_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root: Path = tmp_path_factory.mktemp("api-down")
    # Nothing listens on this port: PostgreSQL is "down".
    dsn = f"postgresql://evledger:{PASSWORD}@127.0.0.1:{free_port()}/evledger"
    env = environment(root / "data", dsn)
    process, url = start_server(env, root / "serve.log")
    try:
        yield Server(url, env, root / "serve.log", dsn)
    finally:
        stop_server(process)


def test_not_ready_and_503_problems(down_server: Server) -> None:
    key = "evk_0123456789ab_" + "A" * 43
    with down_server.client(Authorization=f"Bearer {key}") as client:
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        body = ready.json()
        assert body["ready"] is False
        assert body["views_database"].startswith("unavailable")
        # Which database, and what is wrong with it.
        assert "PostgreSQL evledger at 127.0.0.1" in body["views_database"]
        assert "Connection refused" in body["views_database"]
        assert body["projections"]["payment_history"] == {
            "position": None,
            "lag": None,
            "ahead": False,
        }
        answer = client.get("/v1/customers/C1/payments")
        assert answer.status_code == 503
        assert answer.headers["content-type"] == "application/problem+json"
        assert "database" in answer.json()["detail"]
        assert int(answer.headers["retry-after"]) > 0
        assert PASSWORD not in answer.text
    log = down_server.log.read_text()
    assert PASSWORD not in log
    assert key not in log
