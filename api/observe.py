"""Per request: a request id header, one access-log line and Prometheus metrics, all
named by the route's template (never the path itself, which holds customer ids)."""

from __future__ import annotations

import logging
import os
import re
import time
import traceback
from collections.abc import MutableMapping
from typing import Any

from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Counter, Histogram

from api.problems import problem_response

log = logging.getLogger("evledger.api")
REQUEST_ID_HEADER = "X-Request-ID"
ID_HEADER = REQUEST_ID_HEADER.lower().encode()
_INCOMING_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")
# Any body larger than this is refused: before it is read when its Content-Length says so,
# else as it is read (api/routes_refund_requests.py). A refund request is ~300 bytes.
MAX_BODY_BYTES = 16 * 1024


def configure_logging() -> None:
    """The server's log: time, logger and message on stderr, one line per request. What the
    format does not print is not gathered either (the logging HOWTO's optimisations): the
    caller's file and line, thread and process names cost more than the line itself."""
    handler = logging.StreamHandler()
    handler.setFormatter(_LogFormatter("%(asctime)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging._srcfile = None  # documented in the HOWTO: no findCaller() per line
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class _LogFormatter(logging.Formatter):
    """The standard format, with each second's date and time written once, not per line."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(  # noqa: N802 (logging's name)
        self, record: logging.LogRecord, datefmt: str | None = None
    ) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second, text = self._second
        if int(record.created) != second:
            second = int(record.created)
            text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = (second, text)  # one assignment: threads see a whole pair
        return f"{text},{int(record.msecs):03d}"  # as logging.Formatter.default_msec_format


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "evledger_api_requests",
            "HTTP requests by route template, method and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "evledger_api_request_seconds",
            "Time to answer, by route template",
            ["method", "route"],
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
            registry=self.registry,
        )
        self.pages_per_statement = Histogram(
            "evledger_api_history_pages_per_statement",
            "History pages asked for with one statement (api/page_batches.py)",
            buckets=(1, 2, 4, 8, 16, 32),
            registry=self.registry,
        )
        # Each label set's children, looked up once: labels() costs a lock and a key each time.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """One answered request."""
        children = self._children.get((method, route, status))
        if children is None:
            children = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
            self._children[(method, route, status)] = children
        children[0].inc()
        children[1].observe(seconds)


def request_id_of(incoming: bytes) -> str:
    """The request's id: the client's ``X-Request-ID`` if it is a plain one, else a new one."""
    value = incoming.decode("latin-1")
    if value and _INCOMING_ID.match(value):
        return value
    # 32 hex digits of the system's randomness, as uuid4().hex but without a UUID object
    # (a fifth of the time; ids stay unpredictable, which the random module's would not be).
    return os.urandom(16).hex()


def answered(
    metrics: ApiMetrics, method: str, route: str, status: int, *, started: float, request_id: str
) -> None:
    """An answered request's metrics and access-log line (``started``: its perf_counter)."""
    elapsed = time.perf_counter() - started
    metrics.observe(method, route, status, elapsed)
    log.info("%s %s %s %.1fms request_id=%s", method, route, status, elapsed * 1000, request_id)


def unhandled(error: Exception, request_id: str) -> JSONResponse:
    """An error no handler answered: its log line, and the 500 problem to answer with."""
    # Logged without its message or values, which may hold customer data.
    log.error(
        "unhandled %s request_id=%s at %s",
        type(error).__name__,
        request_id,
        " < ".join(
            f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
            for frame in reversed(traceback.extract_tb(error.__traceback__))
        ),
    )
    return problem_response(500, f"an internal error; quote request id {request_id}", request_id)


def _route_template(scope: dict[str, Any]) -> str:
    route = scope.get("route")
    # Without convertors: `{payment_id}` for `{payment_id:id}`, as OpenAPI names it.
    path = getattr(route, "path_format", None)
    return str(path) if path else "(unmatched)"


class ObserveMiddleware:
    """Pure ASGI, so it sees every response, problems and crashes included."""

    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        started = time.perf_counter()
        the_id = request_id_of(headers.get(ID_HEADER, b""))
        scope.setdefault("state", {})["request_id"] = the_id
        status = 500
        id_header = (ID_HEADER, the_id.encode())
        started_response = False

        async def send_tracked(message: MutableMapping[str, Any]) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                started_response = True
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        length = headers.get(b"content-length", b"0")
        try:
            too_large = int(length) > MAX_BODY_BYTES
        except ValueError:
            too_large = False

        try:
            if too_large:
                response = problem_response(
                    413, f"the body is larger than {MAX_BODY_BYTES} bytes", the_id
                )
                await response(scope, receive, send_tracked)
            else:
                await self.app(scope, receive, send_tracked)
        except Exception as error:
            response = unhandled(error, the_id)
            if not started_response:
                await response(scope, receive, send_tracked)
        finally:
            method = str(scope.get("method", ""))
            answered(
                self.metrics,
                method,
                _route_template(scope),
                status,
                started=started,
                request_id=the_id,
            )
