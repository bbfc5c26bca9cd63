"""The history pages' fast path: the outermost ASGI layer, which answers the common,
well-formed customer or station page (a cached key of a reader role, known query parameters
with plain values, no body) itself, with its request id, access-log line and metrics, and
without FastAPI's middleware, routing, dependency solving and validation, which cost about
as much CPU as the page's query. Anything else, bad input included, goes on to the FastAPI
application unchanged, so the API's contract (OpenAPI, problem documents) has one
definition; the answer itself comes from the routes' own `history_page`, so both give the
same bytes and headers. A page that fails once asked for (the database down or busy, a
cursor it never handed out, a bug) is answered here as the application answers it: its
problem document, or an unexpected error's log line and 500; never asked for twice."""

from __future__ import annotations

import re
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.responses import Response

from api.auth import key_lookup
from api.observe import ID_HEADER, ApiMetrics, answered, request_id_of, unhandled
from api.params import ID_PATTERN, MAX_PAGE
from api.problems import Problem, problem_response
from api.raw_ids import segment_id, with_segmented_path
from api.routes_read import (
    READER_ROLES,
    customer_payments,
    history_filter,
    history_page,
    station_payments,
)
from api.schemas import JSON
from api.state import ApiState
from projections.payment_history import HistoryFilter

_PAGE_PATH = re.compile(r"^/v1/(customers|stations)/([^/]+)/payments$")
_ID = re.compile(ID_PATTERN)
_LIMIT = re.compile(r"^[0-9]{1,3}$")
# Each query parameter's longest plain value (the routes' own bounds); longer goes the long way.
_LONGEST = {"limit": 3, "after": 1000, "from": 64, "to": 64}
_CONTENT_TYPE = (b"content-type", JSON.encode())
# A request with any of these has a body: ObserveMiddleware's size check decides on it.
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


def _templates(routes: list[Any]) -> dict[str, str]:
    """The history routes' templates by the collection they page (for log and metrics)."""
    endpoints: dict[Any, str] = {customer_payments: "customers", station_payments: "stations"}
    return {
        endpoints[route.endpoint]: route.path_format
        for route in routes
        if isinstance(route, APIRoute) and route.endpoint in endpoints
    }


class HistoryFastPath:
    """Answers plain history pages itself; passes everything else on to ``app``."""

    def __init__(self, app: Any, state: ApiState, routes: list[Any], metrics: ApiMetrics) -> None:
        self.app = app
        self.state = state
        self.templates = _templates(routes)
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            # The outermost layer: ids are told apart on the raw path from here on.
            scope = with_segmented_path(scope)
            found = _PAGE_PATH.match(scope["path"]) if scope["method"] == "GET" else None
            if found is not None and await self._answered(
                scope, receive, send, found[1], segment_id(found[2])
            ):
                return
        await self.app(scope, receive, send)

    async def _answered(
        self, scope: dict[str, Any], receive: Any, send: Any, collection: str, owner: str
    ) -> bool:
        """Whether the request was plain and is answered; if not, nothing was sent."""
        started = time.perf_counter()
        authorization = None
        incoming_id = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value if authorization is None else authorization
            elif name == ID_HEADER:
                incoming_id = value  # the last one, as ObserveMiddleware reads it
            elif name in _BODY_HEADERS:
                return False
        if authorization is None or not self._reader(authorization) or not _ID.match(owner):
            return False
        wanted = _wanted(scope, collection, owner)
        if wanted is None:
            return False
        the_id = request_id_of(incoming_id)
        id_header = (ID_HEADER, the_id.encode())
        status = 500
        try:
            # From here on the request is answered here, errors included: once only, as
            # the application would answer it, within one pool wait.
            try:
                document = await history_page(self.state, scope["path"], wanted)
            except Exception as error:
                response = _problem(error, the_id)
                status = response.status_code

                async def send_with_id(message: MutableMapping[str, Any]) -> None:
                    if message["type"] == "http.response.start":
                        message["headers"] = [*message["headers"], id_header]
                    await send(message)

                await response(scope, receive, send_with_id)
                return True
            headers = [
                (b"content-length", str(len(document)).encode()),
                _CONTENT_TYPE,
                id_header,
            ]
            status = 200
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": document})
        finally:
            template = self.templates[collection]
            answered(self.metrics, "GET", template, status, started=started, request_id=the_id)
        return True

    def _reader(self, authorization: bytes) -> bool:
        """A bearer key that was verified moments ago, of a role that reads payments."""
        scheme, presented = get_authorization_scheme_param(authorization.decode("latin-1"))
        if scheme.lower() != "bearer" or not presented:
            return False
        key = self.state.key_cache.current(presented, key_lookup(self.state, presented))
        return key is not None and key.role in READER_ROLES


def _wanted(scope: dict[str, Any], collection: str, owner: str) -> HistoryFilter | None:
    """The page asked for, or None when the request is not plain (the routes answer it,
    bad input included, as their problem document)."""
    query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    values = dict(query)
    if len(values) != len(query) or not all(
        0 < len(value) <= _LONGEST.get(name, -1) for name, value in query
    ):
        return None  # unknown, repeated, empty or oversized parameters
    limit = values.get("limit", "50")
    if _LIMIT.match(limit) is None or not 1 <= int(limit) <= MAX_PAGE:
        return None
    try:
        return history_filter(
            collection,
            owner,
            period_from=values.get("from"),
            period_to=values.get("to"),
            limit=int(limit),
            after=values.get("after"),
        )
    except Problem:
        return None


def _problem(error: Exception, request_id: str) -> Response:
    """The answer to a page that failed: the problem document the application's handler
    gives (a 503 when the database is down or busy, a 400 for a cursor it never handed
    out), or, for anything unexpected, its log line and 500 (api/observe.py)."""
    if isinstance(error, Problem):
        return problem_response(
            error.status, error.detail, request_id, headers=error.headers, errors=error.errors
        )
    return unhandled(error, request_id)
