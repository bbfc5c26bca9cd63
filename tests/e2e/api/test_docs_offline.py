"""/docs works with no internet: headless Chromium, every host but 127.0.0.1 unresolvable,
opens a real server's docs page and sees the API's operations, having asked no other
host; Swagger UI's files need no key and keep the API's rules (problem 404, no query
parameters, one route label in the log and metrics)."""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.browser import chromium
from tests.e2e.api.conftest import Server

OPERATION = "/v1/customers/{customer_id}/payments"


def test_docs_page_shows_the_operations_without_internet(server: Server) -> None:
    from playwright.sync_api import sync_playwright

    asked: list[str] = []
    failed: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium(),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                # No name resolves but the server's: a CDN's file could not load.
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            ],
        )
        try:
            tab = browser.new_page()
            tab.on("request", lambda request: asked.append(request.url))
            tab.on("requestfailed", lambda request: failed.append(request.url))
            tab.goto(f"{server.url}/docs")
            tab.wait_for_selector(f'[data-path="{OPERATION}"]', timeout=30_000)
            assert OPERATION in tab.evaluate(
                "() => [...document.querySelectorAll('[data-path]')].map(e => e.dataset.path)"
            )
        finally:
            browser.close()
    server_host = urlsplit(server.url).netloc
    assert [url for url in asked if urlsplit(url).netloc != server_host] == []
    assert failed == []


def test_docs_files_keep_the_api_rules(server: Server) -> None:
    with server.client() as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "/docs/assets/swagger-ui-bundle.js" in page.text
        script = client.get("/docs/assets/swagger-ui-bundle.js")
        assert script.status_code == 200
        assert "javascript" in script.headers["content-type"]
        missing = client.get("/docs/assets/no-such-file.js")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        queried = client.get("/docs/assets/swagger-ui.css", params={"v": "1"})
        assert queried.status_code == 422
        assert "unknown query parameter 'v'" in queried.json()["detail"]
        assert client.get("/redoc").status_code == 404  # one docs page
        metrics = client.get("/metrics").text
    assert 'route="/docs/assets/{file}"' in metrics
    assert "swagger-ui-bundle.js" not in metrics
    assert "/docs/assets/{file} 200" in server.log.read_text()
