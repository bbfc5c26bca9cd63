"""The API's one docs page, /docs: Swagger UI over /openapi.json, its script, style and icon
served by this process from the fastapi-offline package, so that the page works where the
server has no internet (FastAPI's own page loads them from a CDN). FastAPI's self-hosting
recipe: its docs routes off, a route of ours and StaticFiles. No key is needed for either."""

from __future__ import annotations

from importlib.resources import files
from types import SimpleNamespace
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.params import refuse_query_outside

ASSETS = "/docs/assets"


class _Assets(StaticFiles):
    """Swagger UI's files, named in the access log and metrics by one template (Starlette
    gives a mounted app no route) and, like every endpoint, refusing query parameters."""

    _route = SimpleNamespace(path_format=f"{ASSETS}/{{file}}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        refuse_query_outside((name for name, _ in query), frozenset())
        await super().__call__(scope, receive, send)


def install(app: FastAPI) -> None:
    """/docs and its files on ``app``, made with ``docs_url=None, redoc_url=None``."""
    app.mount(ASSETS, _Assets(directory=str(files("fastapi_offline") / "static")))

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS}/favicon.png",
            oauth2_redirect_url=None,  # keys are bearer tokens; no OAuth2 sign-in to return to
        )
