"""The listening socket of `evledger serve --workers N`, one per worker: each worker process
listens on a socket of its own, bound with SO_REUSEPORT to the same address, and the kernel
spreads new connections over them by a hash of each connection's addresses.

Uvicorn hands every worker the one socket its parent bound, and the worker that wakes first
accepts every connection waiting; keep-alive clients then stay where they landed. In the
history benchmark 37 of 50 connections went to one of two workers, whose queue was three
times as long as the other's and set the tail latency of all.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

# Linux balances connections over a group of SO_REUSEPORT sockets; elsewhere the option is
# missing (Windows) or does not balance (macOS), and uvicorn's shared socket serves.
BALANCES = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


class WorkerSocket(socket.socket):
    """Bound, never listened on in the parent: it reserves the address and takes no
    connections. Sent to a worker process (pickled by uvicorn's supervisor, at start and at
    every restart), it arrives as a new socket of that worker's own on the same address,
    which the worker's server listens on."""

    @classmethod
    def bound(cls, host: str, port: int) -> WorkerSocket:
        """The parent's socket. An address another server listens on is refused (OSError)
        even when that server set SO_REUSEPORT too: joining its group would split clients
        between two deployments."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
        return cls._joined(host, port)

    @classmethod
    def _joined(cls, host: str, port: int) -> WorkerSocket:
        sock = cls(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        return sock

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        host, port = self.getsockname()[:2]
        return (_worker_socket, (host, port))


def _worker_socket(host: str, port: int) -> WorkerSocket:
    """A worker's own socket on the parent's address. If it cannot be bound the worker exits
    as failing to start, so uvicorn's supervisor stops instead of restarting it forever."""
    from uvicorn.config import STARTUP_FAILURE

    try:
        return WorkerSocket._joined(host, port)
    except OSError as error:
        print(f"evledger serve: cannot listen on {host}:{port}: {error.strerror}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
