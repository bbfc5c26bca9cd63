"""uvicorn's httptools protocol, writing a response's head (status line and headers) and its
first body piece with one system call: `evledger serve` names it as its HTTP protocol.

uvicorn writes the head as soon as the application sends `http.response.start`, then the
body when it comes: two sends, two TCP segments (uvloop sets TCP_NODELAY) and, for the
client, two wake-ups, where a page's body follows its head within microseconds. Here a head
whose length is given (``content-length``, the API's every response but a stream's) waits
for the body's first piece and goes out with it; any other write, closing the connection
and the end of a `send` that wrote no body (a HEAD request, an error) send it first, so the
bytes on the wire are uvicorn's own, in its order, but in one case: a request that cannot
be parsed arriving (pipelined) while a response's head is held. uvicorn then sends that
head, whose body never follows, and its 400 response; here the held head is dropped and the
400 goes out alone (the protocol writes it to the connection's transport, not the cycle's).
Either way the connection closes after the 400 and the pending response is not delivered.

That 400, which uvicorn writes before any application sees the request (bytes that are no
HTTP/1.1: a request line too long, ``Content-Length: abc``, garbage), is the API's problem
document with its ``X-Request-ID`` here, where uvicorn's is a line of plain text.

It relies on uvicorn's internals (`RequestResponseCycle` and its ``transport``), not a
public API: pyproject pins uvicorn's minor version, and tests/e2e/api/test_http_protocol.py
counts the segments of a response."""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from api.observe import ID_HEADER, request_id_of
from api.problems import problem_response

log = logging.getLogger("evledger.api")
# The parser's words about the bytes, at most this long: they never need to be longer.
REASON_CHARACTERS = 120

_LENGTH = b"content-length"


class _HeadHeld:
    """A connection's transport for one response: a write made while ``holding`` is kept
    and sent in front of the next write, or on `flush` or `close`."""

    __slots__ = ("_head", "_transport", "holding")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._head = b""
        self.holding = False

    def write(self, data: bytes) -> None:
        if self.holding:
            self._head += data
            return
        if self._head:
            data, self._head = self._head + data, b""
        self._transport.write(data)

    def flush(self) -> None:
        if self._head:
            head, self._head = self._head, b""
            self._transport.write(head)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, ...
        return getattr(self._transport, name)


class _OneWriteCycle(RequestResponseCycle):
    """uvicorn's cycle, its head held until the body's first write (`_HeadHeld`)."""

    transport: _HeadHeld  # type: ignore[assignment]

    async def send(self, message: Any) -> None:
        holding = (
            not self.response_started
            and message["type"] == "http.response.start"
            and any(name.lower() == _LENGTH for name, _ in message.get("headers", ()))
        )
        self.transport.holding = holding
        try:
            await super().send(message)
        finally:
            self.transport.holding = False
            if not holding:
                self.transport.flush()


class OneWriteProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose responses' heads go out with their bodies."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        # A new request's cycle (not yet run: its task starts on the loop's next turn) is
        # made ours; an upgrade makes none.
        if type(cycle) is RequestResponseCycle:
            cycle.__class__ = _OneWriteCycle
            cycle.transport = _HeadHeld(cycle.transport)  # type: ignore[assignment]

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes it cannot parse (``msg``, its own text), as the API's
        400 problem document with a request id (the client's, if its header was read
        before the error), then the connection closed, as uvicorn does."""
        reason = _reason(sys.exc_info()[1])  # called while uvicorn handles the parser's error
        # uvicorn's ``headers`` are None until the connection's first request begins.
        the_id = request_id_of(
            next(
                (value for name, value in reversed(self.headers or []) if name == ID_HEADER),
                b"",
            )
        )
        said = f" ({reason})" if reason else ""
        detail = f"not a valid HTTP/1.1 request{said}; the connection is closed"
        # uvicorn's own line for it names no request: this one is what a quoted id finds.
        log.warning("refused bytes that are no HTTP/1.1%s request_id=%s", said, the_id)
        response = problem_response(400, detail, the_id)
        content = [STATUS_LINE[400]]
        headers = [
            *self.server_state.default_headers,
            *response.raw_headers,
            (ID_HEADER, the_id.encode()),
            (b"connection", b"close"),
        ]
        for name, value in headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([b"\r\n", bytes(response.body)])
        self.transport.write(b"".join(content))
        self.transport.close()


def _reason(error: BaseException | None) -> str:
    """Why the parser refused the bytes, for the client: its own words, or those of the
    parser's URL check under uvicorn's callback (a URL over 64 KiB); nothing for any other
    error in uvicorn's callbacks (its text is about the server, not the request)."""
    if error is None:
        return ""
    inner = error.__context__
    refused = inner if inner is not None else error
    if not isinstance(refused, httptools.HttpParserError):
        return ""
    if isinstance(refused, httptools.HttpParserInvalidURLError) and "too long" not in str(refused):
        # Its text repeats the URL, whose query may hold what belongs in no answer or log.
        return "invalid URL"
    return str(refused)[:REASON_CHARACTERS]
