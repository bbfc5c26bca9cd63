"""bench/cpu_share.py counts every thread of a process (not its main thread alone). CPU
accounts are compared with each other, never with a wall-clock time."""

from __future__ import annotations

import os
import threading
import time

from bench.cpu_share import times


def _spin(cpu_seconds: float, spent: list[float]) -> None:
    start = time.thread_time()
    while time.thread_time() - start < cpu_seconds:
        pass
    spent.append(time.thread_time() - start)


def test_a_process_run_time_counts_its_other_threads() -> None:
    before = times(os.getpid())
    spent: list[float] = []
    spinner = threading.Thread(target=_spin, args=(0.5, spent))
    spinner.start()
    spinner.join()
    after = times(os.getpid())
    assert before is not None and after is not None
    # The main thread only waited: the spinner's half second shows up (ticks of 10 ms).
    assert (after - before).running >= spent[0] - 0.05
