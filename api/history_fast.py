"""The history pages' fast path: a pure ASGI layer that answers the common, well-formed
customer or station page (a cached key of a reader role, known query parameters with plain
values) without FastAPI's routing, dependency solving and validation, which cost about as
much CPU as the page's query. Anything else, every error included, goes on to the FastAPI
routes unchanged, so the API's contract (OpenAPI, problem documents) has one definition;
the answer itself comes from the routes' own `history_page`, so both give the same bytes."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import URL
from starlette.responses import Response

from api.params import ID_PATTERN, MAX_PAGE
from api.problems import Problem
from api.routes_read import (
    READER_ROLES,
    customer_payments,
    history_filter,
    history_page,
    station_payments,
)
from api.schemas import JSON
from api.state import ApiState

_PAGE_PATH = re.compile(r"^/v1/(customers|stations)/([^/]+)/payments$")
_ID = re.compile(ID_PATTERN)
_LIMIT = re.compile(r"^[0-9]{1,3}$")
# Each query parameter's longest plain value (the routes' own bounds); longer goes the long way.
_LONGEST = {"limit": 3, "after": 1000, "from": 64, "to": 64}


def _routes(routes: list[Any]) -> dict[str, APIRoute]:
    """The history routes by the collection they page (for the access log and metrics)."""
    endpoints: dict[Any, str] = {customer_payments: "customers", station_payments: "stations"}
    return {
        endpoints[route.endpoint]: route
        for route in routes
        if isinstance(route, APIRoute) and route.endpoint in endpoints
    }


class HistoryFastPath:
    """Answers plain history pages itself; passes everything else on to ``app``."""

    def __init__(self, app: Any, state: ApiState, routes: list[Any]) -> None:
        self.app = app
        self.state = state
        self.routes = _routes(routes)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            found = _PAGE_PATH.match(scope["path"])
            if found is not None:
                scope["route"] = self.routes[found[1]]  # named so even if it crashes
                document = await self._page(scope, found[1], found[2])
                if document is not None:
                    await Response(document, media_type=JSON)(scope, receive, send)
                    return
                del scope["route"]
        await self.app(scope, receive, send)

    async def _page(self, scope: dict[str, Any], collection: str, owner: str) -> bytes | None:
        """The page's document, or None when the request is not plain (the routes answer)."""
        if not self._reader(scope) or _ID.match(owner) is None:
            return None
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
            wanted = history_filter(
                collection,
                owner,
                period_from=values.get("from"),
                period_to=values.get("to"),
                limit=int(limit),
                after=values.get("after"),
            )
            return await history_page(self.state, URL(scope=scope).path, wanted)
        except Problem:
            return None  # the routes answer it again, as their problem document

    def _reader(self, scope: dict[str, Any]) -> bool:
        """A bearer key that was verified moments ago, of a role that reads payments."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, presented = get_authorization_scheme_param(value.decode("latin-1"))
                if scheme.lower() != "bearer" or not presented:
                    return False
                key = self.state.key_cache.get(presented)
                return key is not None and key.role in READER_ROLES
        return False
