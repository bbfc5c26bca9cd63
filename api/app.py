"""The ASGI application: routes, problem documents for every error, request ids, metrics."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api import (
    docs_page,
    routes_analytics,
    routes_audit,
    routes_ops,
    routes_read,
    routes_refund_requests,
)
from api.auth import KeyCache
from api.history_fast import HistoryFastPath
from api.observe import ApiMetrics, ObserveMiddleware, configure_logging
from api.page_batches import PageBatches
from api.params import no_unknown_query
from api.problems import ProblemDocument, problem_response
from api.refund_requests import RefundPublisher
from api.state import ApiState
from api.views import ViewsDatabase
from bootstrap import Root, bootstrap, load_settings
from bootstrap.ledgers import NeedsKafka
from projections.gc_pacing import fewer_collections

log = logging.getLogger("evledger.api")

DESCRIPTION = """\
The evledger read side: payment history, refund status, audit trail and analytics, and
support's refund requests. Send `Authorization: Bearer KEY` (keys from `evledger apikey
create --role support|auditor|analyst`). Amounts are integer minor units of `currency`.
Errors are `application/problem+json`; every response carries `X-Request-ID`.
"""


def _request_id(request: Request) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value is not None else None


def _validation_detail(error: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    errors = [
        {"field": ".".join(str(part) for part in item["loc"]), "reason": item["msg"]}
        for item in error.errors()
    ]
    first = errors[0] if errors else {"field": "", "reason": "invalid request"}
    return f"`{first['field']}`: {first['reason']}", errors


def _install_handlers(app: FastAPI) -> None:
    from api.problems import Problem

    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> JSONResponse:
        return problem_response(
            problem.status,
            problem.detail,
            _request_id(request),
            headers=problem.headers,
            errors=problem.errors,
        )

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        detail, errors = _validation_detail(error)
        return problem_response(422, detail, _request_id(request), errors=errors)

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, error: HTTPException) -> JSONResponse:
        detail = {404: "no such endpoint; see /docs", 405: "method not allowed here"}.get(
            error.status_code, str(error.detail)
        )
        return problem_response(
            error.status_code, detail, _request_id(request), headers=dict(error.headers or {})
        )


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """An optional parameter's schema without its `null` branch: a query string or header
    is absent or a string, never JSON null, and clients should not be told otherwise."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [branch for branch in branches if branch.get("type") != "null"]
    if len(kept) != 1:
        return schema
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    return {**kept[0], **rest}


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for parameter in operation.get("parameters", []):
                    parameter["schema"] = _without_null(parameter.get("schema", {}))
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["ProblemDocument"] = ProblemDocument.model_json_schema()
        app.openapi_schema = schema
    return app.openapi_schema


def _refund_publisher(root: Root) -> RefundPublisher | None:
    try:
        return RefundPublisher(root.ledger.kafka("POST /v1/refunds"))
    except NeedsKafka:
        return None  # the embedded default has no ingest topic: the route says so


# Connections of the event loop's pool (history pages), per worker. More do not answer
# sooner: past a few queries at once, PostgreSQL's backends only take turns on the same
# cores. On two cores with 50 clients, 4 gave 35-50% more pages/s than 20 (less CPU in
# PostgreSQL and the server), and 2 less CPU per page again than 4 (batches twice as large,
# two backends fewer taking turns with the worker): worker 0.18-0.20 ms against 0.21-0.24,
# PostgreSQL 0.11-0.12 against 0.12-0.15, p99 52-77 ms against 100-108 on a machine loaded
# by other work (bench/api_bench.py --workers 1, 4 alternated runs; ARCHITECTURE.md). On
# the quiet machine 1 against 2 (four alternated pairs): the same pages/s or more, p99 16-22
# ms against 20-32. One worker's Python cannot keep a second backend busy: with batches of
# ten pages a statement's share is ~0.1 ms a page against the worker's ~0.15, so the
# second connection only split the batches and added a backend taking turns on the cores.
# Pages beyond it wait in the page batches' queue (api/page_batches.py).
ASYNC_POOL_SIZE = 1


def create_app(root: Root | None = None, pool_size: int = 20) -> HistoryFastPath:
    """The API: FastAPI's application behind the history pages' fast path."""
    root = root or bootstrap(load_settings())
    async_size = min(pool_size, ASYNC_POOL_SIZE)
    views = ViewsDatabase(
        root.views.lender(pool_size), root.views.async_lender(async_size), root.views.describe()
    )
    metrics = ApiMetrics()
    state = ApiState(
        root=root,
        views=views,
        pages=PageBatches(views, async_size, metrics.pages_per_statement.observe),
        key_cache=KeyCache(),
        ledger_heads=[root.ledger.shard(shard).head() for shard in range(root.ledger.shards)],
        publisher=_refund_publisher(root),
    )
    state.extras["metrics"] = metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Not waited for: the port opens (and /healthz answers) whatever the database does.
        await state.views.open(state.ensure_tables)
        log.info(
            "serving the read side: views in %s, ledger in %s",
            state.views.kind,
            root.ledger.description,
        )
        try:
            # What start-up built lives as long as the worker: frozen, a full collection no
            # longer walks it. Under load a page's objects outlive young collections (its
            # request waits for a pool connection), reach the oldest generation and set off
            # full collections of the whole heap, each a pause of every request in flight.
            with fewer_collections():
                yield
        finally:
            await state.close()

    app = FastAPI(
        title="evledger read API",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=[Depends(no_unknown_query)],
        # FastAPI's own OpenTelemetry layer asked, on every request, whether a provider was
        # configured (3% of a history page's CPU); /metrics and the access log are ours, and
        # its logs would carry exception messages, which may hold customer data.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # One docs page, served without a CDN (api/docs_page.py); no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.api = state
    _install_handlers(app)
    docs_page.install(app)
    for module in (
        routes_read,
        routes_refund_requests,
        routes_audit,
        routes_analytics,
        routes_ops,
    ):
        app.include_router(module.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    app.add_middleware(ObserveMiddleware, metrics=metrics)
    return HistoryFastPath(app, state, routes_read.router.routes, metrics)


def app_from_environment() -> HistoryFastPath:
    """For `uvicorn --factory api.app:app_from_environment` (several worker processes)."""
    configure_logging()
    return create_app()
