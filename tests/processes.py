"""Waiting for a process to end, in tests of the child processes (ledger reader, writer)."""

from __future__ import annotations

import os
import time


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
