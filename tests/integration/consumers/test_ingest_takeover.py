"""A second ingest on the same ledger takes over from an idle first one: the first notices
by itself within seconds, exits with one line and status 3 (no traceback), the second goes
on, and the ledger holds every message exactly once. Real Kafka, `evledger ingest` processes.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from demo.traffic import generate
from tests.integration.consumers.test_ingest_kafka import (
    EVLEDGER,
    SHAPE,
    expected_ledger,
    kafka_ledger,
    publish,
    write_jsonl,
)

EXIT_TAKEN_OVER = 3


def start_ingest(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [EVLEDGER, "ingest", "--format", "json"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )


def wait_for_ledger(env: dict[str, str], expected: list[Any], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if len(kafka_ledger(env)) >= len(expected):
            return
        time.sleep(1)
    raise AssertionError(f"the ledger did not reach {len(expected)} events")


def assert_one_line_exit(process: subprocess.Popen[bytes], log: Path) -> None:
    status = process.wait(timeout=60)
    err = log.read_text()
    assert status == EXIT_TAKEN_OVER, err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("evledger: another ingest took over the ledger writer; stopping"), err


def test_an_idle_ingest_taken_over_exits_by_itself_with_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    traffic = generate(seed=5, shape=SHAPE)[:240]
    first, second = traffic[:120], traffic[120:]
    publish(env, write_jsonl(tmp_path / "first.jsonl", first))
    a_log, b_log = tmp_path / "a.stderr", tmp_path / "b.stderr"
    a = start_ingest(env, a_log)
    b: subprocess.Popen[bytes] | None = None
    try:
        wait_for_ledger(env, expected_ledger(first), 120)
        time.sleep(2)  # idle: nothing left to commit
        assert a.poll() is None, a_log.read_text()
        b = start_ingest(env, b_log)
        # A has nothing to commit, so only its own check can tell it; a generous bound.
        assert_one_line_exit(a, a_log)
        # B keeps working: the rest of the traffic arrives after A has gone.
        publish(env, write_jsonl(tmp_path / "second.jsonl", second))
        expected = expected_ledger(traffic)
        wait_for_ledger(env, expected, 120)
        assert b.poll() is None, b_log.read_text()
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0, b_log.read_text()
        assert kafka_ledger(env) == expected  # nothing lost, nothing twice
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_a_taken_over_ingest_with_records_to_commit_exits_with_one_line(
    env: dict[str, str], tmp_path: Path
) -> None:
    traffic = generate(seed=6, shape=SHAPE)[:240]
    first, second = traffic[:120], traffic[120:]
    publish(env, write_jsonl(tmp_path / "first.jsonl", first))
    a_log, b_log = tmp_path / "a.stderr", tmp_path / "b.stderr"
    a = start_ingest(env, a_log)
    b: subprocess.Popen[bytes] | None = None
    try:
        wait_for_ledger(env, expected_ledger(first), 120)
        a.send_signal(signal.SIGSTOP)  # A still believes it owns the partitions
        b = start_ingest(env, b_log)
        time.sleep(8)  # B has taken the writer and the membership over
        b.send_signal(signal.SIGSTOP)
        publish(env, write_jsonl(tmp_path / "second.jsonl", second))
        a.send_signal(signal.SIGCONT)  # A reads the new records, and cannot commit them
        assert_one_line_exit(a, a_log)
        b.send_signal(signal.SIGCONT)
        expected = expected_ledger(traffic)
        wait_for_ledger(env, expected, 120)
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0, b_log.read_text()
        assert kafka_ledger(env) == expected  # nothing lost, nothing twice
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait()
