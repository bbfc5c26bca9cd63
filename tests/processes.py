"""Child processes in tests (ledger reader, writer): waiting for one to end, and a ledger
writer process that loses an answer."""

from __future__ import annotations

import contextlib
import os
import pickle
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

from store.writer_process import WriterSpec, run_writer


def gone(pid: int, within_s: float = 15.0) -> bool:
    """Whether the process ended within ``within_s`` (an ended child of the test's own
    process, not yet waited for, counts as ended)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            pass  # not ours: only its end counts
        time.sleep(0.05)
    return False


def serve_losing_an_answer(armed: Path, lost: Path, spec: WriterSpec, connection: Any) -> None:
    """A ledger writer process's entry point (``ProcessLedgerWriter(entry=...)``, with the
    two paths bound by ``functools.partial``) that does what store/writer_process.py's
    ``run_writer`` does, except once: the first commit that lands while ``armed`` exists is
    never answered, the process exits instead (``armed`` is renamed ``lost``, so that its
    replacement, and the test, know). The parent sees its child end with the request in
    flight, as when the child is killed between the broker's commit and its answer."""
    run_writer(spec, cast(Connection, _LosingAnAnswer(connection, armed, lost)))


class _LosingAnAnswer:
    """The child's end of the pipe, dropping one committed request's answer (see above)."""

    def __init__(self, connection: Connection, armed: Path, lost: Path) -> None:
        self._connection = connection
        self._armed = armed
        self._lost = lost

    def recv_bytes(self) -> bytes:
        return self._connection.recv_bytes()

    def send_bytes(self, blob: bytes) -> None:
        request_id, error = pickle.loads(blob)[:2]
        if request_id != 0 and error is None:  # a request's answer (0 answers the start)
            with contextlib.suppress(FileNotFoundError):  # not armed, or lost already
                self._armed.rename(self._lost)
                os._exit(1)  # the commit landed: its answer dies with the process
        self._connection.send_bytes(blob)
