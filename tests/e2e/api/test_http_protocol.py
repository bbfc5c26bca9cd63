"""`evledger serve`'s HTTP protocol (api/http_protocol.py) writes a response's head with its
body: a real uvicorn with it and one with uvicorn's own httptools protocol answer the same
bytes to raw HTTP/1.1 requests, and a response of known length reaches the client in one TCP
segment (the client's own count of segments with data, Linux's TCP_INFO), where uvicorn's
own protocol sends two. Bytes uvicorn cannot parse are answered with the API's 400 problem
document and a request id, where uvicorn's own protocol answers plain text."""

from __future__ import annotations

import json
import logging
import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from api.http_protocol import OneWriteProtocol
from api.observe import REQUEST_ID_HEADER
from tests.e2e.api.conftest import served

BODY = b'{"items":[' + b'{"n":1},' * 1000 + b'{"n":2}]}'


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers by path: a page of known length, a stream of chunks, a start and a failure."""
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/page":
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for piece in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/broken":
        headers = [(b"content-length", b"10")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        raise RuntimeError("the body never comes")
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@contextmanager
def connected(http: Any) -> Iterator[socket.socket]:
    """A keep-alive TCP connection to ``application`` served with protocol ``http``."""
    with served(application, http=http, date_header=False) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            yield connection


def exchange(connection: socket.socket, request: bytes) -> bytes:
    """Everything the server sends for ``request`` until it stops (a short quiet time) or
    closes the connection."""
    connection.sendall(request)
    received = b""
    connection.settimeout(30)
    while True:
        try:
            piece = connection.recv(1 << 20)
        except TimeoutError:
            return received
        if not piece:
            return received
        received += piece
        connection.settimeout(0.5)


def data_segments_in(connection: socket.socket) -> int:
    """Segments with data this connection has received (struct tcp_info's tcpi_data_segs_in,
    Linux 4.6 and later)."""
    info = connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return int(struct.unpack_from("I", info, 152)[0])


REQUESTS = [
    b"GET /page HTTP/1.1\r\nhost: test\r\n\r\n",
    b"HEAD /page HTTP/1.1\r\nhost: test\r\n\r\n",
    b"GET /stream HTTP/1.1\r\nhost: test\r\n\r\n",
    b"GET /nothing HTTP/1.1\r\nhost: test\r\n\r\n",
    b"GET /broken HTTP/1.1\r\nhost: test\r\n\r\n",
]


def test_the_same_bytes_as_uvicorns_own_protocol() -> None:
    answers = {}
    for http in ("httptools", OneWriteProtocol):
        with connected(http) as connection:
            answers[str(http)] = [exchange(connection, request) for request in REQUESTS]
    ours, uvicorns = answers[str(OneWriteProtocol)], answers["httptools"]
    assert ours == uvicorns
    assert ours[0].endswith(b"\r\n\r\n" + BODY)
    assert ours[1].startswith(b"HTTP/1.1 200 OK\r\n") and ours[1].endswith(b"\r\n\r\n")
    assert ours[2].endswith(b"4\r\none,\r\n4\r\ntwo,\r\n5\r\nthree\r\n0\r\n\r\n")
    # The head of a response whose body never came, then the connection closed.
    assert ours[4].startswith(b"HTTP/1.1 200 OK\r\n") and ours[4].endswith(b"\r\n\r\n")


@pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO's segment counts are Linux's")
@pytest.mark.parametrize(("http", "segments"), [("httptools", 2), (OneWriteProtocol, 1)])
def test_a_page_in_one_segment(http: Any, segments: int) -> None:
    with connected(http) as connection:
        for _ in range(3):
            before = data_segments_in(connection)
            assert exchange(connection, REQUESTS[0]).endswith(BODY)
            assert data_segments_in(connection) - before == segments


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nhost: test\r\n\r\n", "url is too long"),
        (
            b"GET /page HTTP/1.1\r\nhost: test\r\ncontent-length: abc\r\n\r\n",
            "Invalid character in Content-Length",
        ),
        (b"\x00\x01\x02 garbage\r\n\r\n", "Invalid method"),
    ],
)
def test_bytes_that_are_no_http_get_a_problem_document_with_a_request_id(
    request_bytes: bytes, reason: str
) -> None:
    with connected(OneWriteProtocol) as connection:
        answer = exchange(connection, request_bytes)
        assert connection.recv(1) == b""  # closed after it, as uvicorn does
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    document = json.loads(body)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"] == "application/problem+json"
    assert int(headers["content-length"]) == len(body)
    assert headers["connection"] == "close"
    assert document["status"] == 400 and document["title"] == "Bad Request"
    assert reason in document["detail"]
    assert len(headers[REQUEST_ID_HEADER.lower()]) == 32
    assert document["request_id"] == headers[REQUEST_ID_HEADER.lower()]


def test_a_bad_request_keeps_the_request_id_its_client_sent() -> None:
    sent = b"GET /page HTTP/1.1\r\nX-Request-ID: client-42-abc\r\ncontent-length: x\r\n\r\n"
    with connected(OneWriteProtocol) as connection:
        answer = exchange(connection, sent)
    assert b"\r\nx-request-id: client-42-abc\r\n" in answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["request_id"] == "client-42-abc"


def test_a_refused_url_is_not_repeated_back_and_the_refusal_is_logged_with_its_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = b"GET http://x:99999999/?key=SECRET HTTP/1.1\r\nhost: test\r\n\r\n"
    with (
        caplog.at_level(logging.WARNING, logger="evledger.api"),
        connected(OneWriteProtocol) as connection,
    ):
        answer = exchange(connection, sent)
    document = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert "invalid URL" in document["detail"] and b"SECRET" not in answer
    lines = [record.getMessage() for record in caplog.records if record.name == "evledger.api"]
    assert [line for line in lines if f"request_id={document['request_id']}" in line]
    assert not [line for line in lines if "SECRET" in line]
