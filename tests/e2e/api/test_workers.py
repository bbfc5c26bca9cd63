"""`evledger serve --workers N`: each worker listens on a socket of its own (SO_REUSEPORT),
so the kernel spreads keep-alive connections over the workers instead of the first one
awake taking them all."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from http.client import HTTPConnection
from pathlib import Path

from projections.databases.postgres import drop_schema
from tests.e2e.api.conftest import (
    EVLEDGER,
    environment,
    schema_dsn,
    start_server,
    stop_server,
)

_LISTEN, _ESTABLISHED = "0A", "01"


def _sockets(port: int) -> dict[str, str]:
    """Inode -> TCP state of every IPv4 socket whose local port is ``port``."""
    found: dict[str, str] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            found[fields[9]] = fields[3]
    return found


def _workers(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                children.append(int(stat.parent.name))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return children


def _inodes(pid: int) -> set[str]:
    held = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            held.add(target[len("socket:[") : -1])
    return held


def _until_listening(port: int, sockets: int) -> None:
    deadline = time.monotonic() + 60
    while list(_sockets(port).values()).count(_LISTEN) < sockets:
        assert time.monotonic() < deadline, f"fewer than {sockets} sockets listen on {port}"
        time.sleep(0.2)


def _ask(connection: HTTPConnection) -> int:
    connection.request("GET", "/healthz")
    response = connection.getresponse()
    response.read()
    return response.status


def test_each_worker_listens_and_takes_connections(pg_dsn: str, tmp_path: Path) -> None:
    schema = f"test_api_workers_{uuid.uuid4().hex[:10]}"
    env = environment(tmp_path / "data", schema_dsn(pg_dsn, schema))
    process, url = start_server(env, tmp_path / "serve.log", "--workers", "2")
    connections: list[HTTPConnection] = []
    try:
        port = int(url.rsplit(":", 1)[1])
        _until_listening(port, 2)  # /healthz answered once the first worker was up
        for _ in range(16):
            connections.append(HTTPConnection("127.0.0.1", port, timeout=30))
            assert _ask(connections[-1]) == 200
        states = _sockets(port)
        held = {pid: _inodes(pid) & set(states) for pid in _workers(process.pid)}
        listening = {
            pid: [i for i in inodes if states[i] == _LISTEN] for pid, inodes in held.items()
        }
        serving = {
            pid: [i for i in inodes if states[i] == _ESTABLISHED] for pid, inodes in held.items()
        }
        # One listening socket per worker (uvicorn alone shares one among all).
        assert sorted(len(found) for found in listening.values() if found) == [1, 1], listening
        assert len({inode for found in listening.values() for inode in found}) == 2
        # Every connection is a worker's, and the kernel gave both workers some (a hash of
        # the connections' ports: all 16 on one worker has odds of 1 in 32,768).
        assert sum(len(found) for found in serving.values()) == 16, serving
        assert len([found for found in serving.values() if found]) == 2, serving
        # Every connection still answers: none sits in a queue that no worker accepts from.
        assert [_ask(connection) for connection in connections] == [200] * 16
    finally:
        for connection in connections:
            connection.close()
        stop_server(process)
        drop_schema(pg_dsn, schema)


def _second_serve(port: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = environment(tmp_path / "second", "postgresql://nobody@127.0.0.1:1/none")
    return subprocess.run(
        [EVLEDGER, "serve", "--port", str(port), "--workers", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_second_serve_does_not_join_the_first(pg_dsn: str, tmp_path: Path) -> None:
    # Both bind with SO_REUSEPORT: without a check the second would join the first's group
    # and the kernel would split clients between two deployments.
    schema = f"test_api_workers_{uuid.uuid4().hex[:10]}"
    env = environment(tmp_path / "data", schema_dsn(pg_dsn, schema))
    process, url = start_server(env, tmp_path / "serve.log", "--workers", "2")
    try:
        port = int(url.rsplit(":", 1)[1])
        _until_listening(port, 2)
        done = _second_serve(port, tmp_path)
        assert done.returncode == 3, done.stderr
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
        assert list(_sockets(port).values()).count(_LISTEN) == 2
    finally:
        stop_server(process)
        drop_schema(pg_dsn, schema)


def test_a_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = _second_serve(port, tmp_path)
    assert done.returncode == 3, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr
