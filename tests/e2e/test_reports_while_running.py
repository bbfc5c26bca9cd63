"""Analysts read while the pipeline writes: `evledger run` (real Kafka and PostgreSQL) keeps
ingesting and projecting while reports and queries run side by side, and neither side
fails or waits for the other."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from demo.traffic import TrafficShape, generate
from tests.e2e.test_run import fresh_database  # noqa: F401  (a fixture)

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def _publish(env: dict[str, str], messages: list[dict[str, object]], path: Path) -> None:
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    published = subprocess.run(
        [EVLEDGER, "publish", str(path)], env=env, capture_output=True, text=True, check=False
    )
    assert published.returncode == 0, published.stderr


def _report(env: dict[str, str]) -> dict[str, object] | None:
    """One report; None only before the projector made its first copy."""
    result = subprocess.run(
        [EVLEDGER, "analytics", "report", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 1 and "no analytics database" in result.stderr:
        return None
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_reports_run_side_by_side_with_the_pipeline(
    kafka_bootstrap: str,
    fresh_database: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    traffic = generate(seed=11, shape=TrafficShape(stations=3, customers=40, days=2))
    sessions = {m["session_id"] for m in traffic if m["type"] == "session.started"}
    env = {
        **os.environ,
        "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "EVLEDGER_PG_DSN": fresh_database,
        "EVLEDGER_TOPIC_PREFIX": f"it-read-{uuid.uuid4().hex[:8]}",
        "EVLEDGER_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "120",
    }
    half = len(traffic) // 2
    _publish(env, traffic[:half], tmp_path / "first.jsonl")
    process = subprocess.Popen(
        [EVLEDGER, "run", "--batch-size", "200"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[int] = []
    try:
        deadline = time.monotonic() + 240
        second_half_sent = False
        while not seen or seen[-1] < len(sessions):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, f"reports saw {seen}, not {len(sessions)}"
            document = _report(env)
            if document is None:
                continue
            headline = document["headline"]
            sections = document["sections"]
            assert isinstance(headline, dict) and isinstance(sections, dict)
            # Each report is one consistent state: its parts agree with its headline.
            days = sections["revenue_by_day"]
            assert sum(day["gross_minor"] for day in days) == headline["gross_minor"]
            assert sum(day["sessions"] for day in days) == headline["sessions"]
            assert headline["books_balanced"] is True
            seen.append(int(headline["sessions"]))
            if not second_half_sent and seen[-1] > 0:
                _publish(env, traffic[half:], tmp_path / "second.jsonl")
                second_half_sent = True
        # A query works as well while the pipeline still runs.
        query = subprocess.run(
            [EVLEDGER, "analytics", "query", "SELECT count(*) AS n FROM fact_sessions",
             "--format", "json"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert query.returncode == 0, query.stderr
        assert json.loads(query.stdout) == [{"n": len(sessions)}]
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert seen == sorted(seen), "a later report saw less than an earlier one"
    assert len(set(seen)) > 1, f"every report saw the same state: {seen}"
    # The projector never had to wait or retry because of a reader.
    assert "retry" not in stderr, stderr
    assert f"consumed {len(traffic)}" in stdout
