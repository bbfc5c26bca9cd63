"""A page the fast path has asked for is answered there, once, whatever happens: with the
database down, a cached key's page is the application's 503 problem document with the
request id, one access-log line, and the request never reaches the FastAPI application
(which would borrow from the pool a second time and double the wait)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.history_fast import HistoryFastPath
from api.keys import ApiKey, Role
from bootstrap import Settings, bootstrap
from tests.e2e.api.conftest import free_port, served


@dataclass
class DownApi:
    url: str
    fast: HistoryFastPath
    passed_on: list[str]  # the paths the fast path passed on to the application


@pytest.fixture
def down_api(tmp_path: Path) -> Iterator[DownApi]:
    # Nothing listens on this port: PostgreSQL is "down".
    dsn = f"postgresql://evledger:evledger@127.0.0.1:{free_port()}/evledger"
    fast = create_app(bootstrap(Settings(data_dir=tmp_path / "data", pg_dsn=dsn)))
    application = fast.app
    passed_on: list[str] = []

    async def watched(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            passed_on.append(scope["path"])
        await application(scope, receive, send)

    fast.app = watched
    with served(fast) as url:
        yield DownApi(url, fast, passed_on)


def test_a_cached_key_s_page_without_the_database_is_one_503(
    down_api: DownApi, caplog: pytest.LogCaptureFixture
) -> None:
    presented = f"evk_test_{uuid.uuid4().hex}"
    request_id = f"down-{uuid.uuid4().hex}"
    key = ApiKey("test-key", "test", Role.support, datetime.now(UTC), None)
    down_api.fast.state.key_cache.put(presented, key)  # as if verified moments ago
    with caplog.at_level(logging.INFO, logger="evledger.api"):
        answer = httpx.get(
            f"{down_api.url}/v1/customers/C1/payments",
            headers={"Authorization": f"Bearer {presented}", "X-Request-ID": request_id},
            timeout=60,
        )
        # The access-log line is written after the answer is sent: wait for it, boundedly.
        deadline = time.monotonic() + 10
        while not (
            lines := [r.getMessage() for r in caplog.records if request_id in r.getMessage()]
        ):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["x-request-id"] == request_id
    assert answer.json()["request_id"] == request_id
    assert "database" in answer.json()["detail"]
    assert down_api.passed_on == []
    assert len(lines) == 1
    assert lines[0].startswith("GET /v1/customers/{customer_id}/payments 503 ")
