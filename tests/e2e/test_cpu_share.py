"""bench/cpu_share.py counts every thread of a process (not its main thread alone) and the
PostgreSQL backends of connections opened after its watch began. CPU accounts are compared
with each other, never with a wall-clock time."""

from __future__ import annotations

import os
import re
import threading
import time

import psycopg

from bench.cpu_share import Watch, times


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


def test_a_backend_connected_after_the_watch_began_is_counted(pg_dsn: str) -> None:
    port = int(psycopg.conninfo.conninfo_to_dict(pg_dsn).get("port") or 5432)
    watch = Watch(os.getpid(), 0, port)  # this process, as a server of one worker
    with psycopg.connect(pg_dsn) as db:
        db.execute("select count(*) from generate_series(1, 3000000)").fetchone()
        report = watch.report(1.0, 1)
    backends = re.search(r"PostgreSQL backends x1: ([0-9.]+) ms on a CPU", report)
    assert backends is not None, report
    assert float(backends.group(1)) > 0, report
