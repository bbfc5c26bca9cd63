"""evledger on the cluster as operators run it: real `evledger` subprocesses with EVLEDGER_*
settings pointing at the cluster, and outside checks of what they left behind."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from kafka import TopicPartition

from demo.traffic import TrafficShape, generate
from store.kafka_clients import KafkaConnection
from tests.integration.consumers.test_ingest_kafka import expected_ledger, kafka_ledger

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
# Long enough for a leader election (about 4 s on the test cluster), short enough that a
# majority of brokers down is reported within seconds.
KAFKA_TIMEOUT_S = "10"
_SUMMARY = re.compile(
    r"stopped: consumed (\d+), applied (\d+), duplicates (\d+), "
    r"rejected (\d+), dead-lettered (\d+)"
)


def day_of_traffic(seed: int, stations: int = 5, customers: int = 60) -> list[dict[str, Any]]:
    return generate(seed=seed, shape=TrafficShape(stations=stations, customers=customers))


class Pipeline:
    """One test's topics (unique prefix), PostgreSQL database, data dir and processes."""

    def __init__(self, bootstrap: str, pg_dsn: str, workdir: Path, name: str) -> None:
        self.bootstrap = bootstrap
        self.workdir = workdir
        self.prefix = f"it-cluster-{name}-{uuid.uuid4().hex[:8]}"
        self.env = {
            **os.environ,
            "EVLEDGER_KAFKA_BOOTSTRAP": bootstrap,
            "EVLEDGER_KAFKA_REPLICATION_FACTOR": "3",
            "EVLEDGER_KAFKA_MIN_INSYNC_REPLICAS": "2",
            "EVLEDGER_KAFKA_TIMEOUT_S": KAFKA_TIMEOUT_S,
            "EVLEDGER_PG_DSN": pg_dsn,
            "EVLEDGER_TOPIC_PREFIX": self.prefix,
            "EVLEDGER_DATA_DIR": str(workdir / "data"),
        }
        self._watcher: Any = None

    @property
    def ledger_topic(self) -> str:
        return f"{self.prefix}.ledger"

    @property
    def ingest_topic(self) -> str:
        return f"{self.prefix}.ingest"

    @property
    def transactional_id(self) -> str:
        return f"{self.ledger_topic}.writer"

    def evledger(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EVLEDGER, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def publish(self, messages: list[dict[str, Any]], name: str = "upstream") -> None:
        path = self.workdir / f"{name}.jsonl"
        path.write_text("".join(json.dumps(m) + "\n" for m in messages))
        result = self.evledger("publish", str(path))
        assert result.returncode == 0, result.stderr

    def start(self, command: str = "run", batch_size: int = 10) -> subprocess.Popen[bytes]:
        """`evledger run` (or `ingest`) in the background, its output in files (a pipe
        nobody reads would block it)."""
        log = self.workdir / f"{command}.log"
        with log.open("ab") as output:
            return subprocess.Popen(
                [EVLEDGER, command, "--batch-size", str(batch_size)],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )

    def log(self, command: str = "run") -> str:
        return (self.workdir / f"{command}.log").read_text(errors="replace")

    def stop(self, process: subprocess.Popen[bytes], command: str = "run") -> dict[str, int]:
        """SIGTERM, a clean exit, and the counters it printed."""
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=120) == 0, self.log(command)[-3000:]
        match = _SUMMARY.findall(self.log(command))
        assert match, self.log(command)[-3000:]
        consumed, applied, duplicates, rejected, dead = (int(n) for n in match[-1])
        return {
            "consumed": consumed,
            "applied": applied,
            "duplicates": duplicates,
            "rejected": rejected,
            "dead_lettered": dead,
        }

    # --- watching from outside ----------------------------------------------------------

    def ledger_end(self) -> int | None:
        """The ledger's last stable offset (what read_committed readers can see), or None
        while no broker can say."""
        if self._watcher is None:
            self._watcher = KafkaConnection(self.bootstrap).consumer(
                isolation_level="read_committed",
                request_timeout_ms=5000,
            )
        partition = TopicPartition(self.ledger_topic, 0)
        try:
            return int(self._watcher.end_offsets([partition], timeout_ms=3000)[partition])
        except Exception:  # an election in progress: no answer yet
            return None

    def wait_ledger_past(self, offset: int, process: subprocess.Popen[bytes]) -> None:
        """Until the committed ledger passes `offset`."""
        self.watch_ledger(offset, process)

    def watch_ledger(self, offset: int, process: subprocess.Popen[bytes]) -> float:
        """Until the committed ledger passes `offset`; the longest time it stood still."""
        deadline = time.monotonic() + 180
        last_end, last_move, longest = -1, time.monotonic(), 0.0
        while True:
            end = self.ledger_end()
            now = time.monotonic()
            if end is not None and end > last_end:
                longest = max(longest, now - last_move)
                last_end, last_move = end, now
            if end is not None and end > offset:
                return longest
            assert process.poll() is None, f"evledger exited:\n{self.log()[-3000:]}"
            assert now < deadline, f"ledger stuck at {end}"
            time.sleep(0.05)

    def projected(self) -> dict[str, int]:
        """Each read model's position; PostgreSQL's while `run` holds DuckDB's lock, DuckDB's
        too once it has stopped."""
        import duckdb
        import psycopg

        query = "SELECT projection_name, notification_id FROM projection_tracking"
        positions: dict[str, int] = {}
        with psycopg.connect(self.env["EVLEDGER_PG_DSN"]) as connection:
            exists = connection.execute("SELECT to_regclass('projection_tracking')").fetchone()
            if exists is not None and exists[0] is not None:
                positions.update(connection.execute(query).fetchall())
        analytics = Path(self.env["EVLEDGER_DATA_DIR"]) / "analytics.duckdb"
        try:
            with duckdb.connect(str(analytics), read_only=True) as connection:
                positions.update(connection.execute(query).fetchall())
        except duckdb.Error:  # locked by the running projector, or not there yet
            pass
        return {str(name): int(position) for name, position in positions.items()}

    def wait_projected(self, events: int, process: subprocess.Popen[bytes]) -> None:
        """Until the PostgreSQL read models hold all `events` ledger events. The projector
        applies each batch to every model in one step, and SIGTERM ends it between steps,
        so DuckDB holds them too once `run` has stopped."""
        deadline = time.monotonic() + 180
        while True:
            positions = self.projected()
            if len(positions) >= 2 and min(positions.values()) >= events:
                return
            assert process.poll() is None, f"evledger exited:\n{self.log()[-3000:]}"
            assert time.monotonic() < deadline, f"read models stuck at {positions}"
            time.sleep(0.3)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()

    # --- the verdict ----------------------------------------------------------------------

    def check_books(self, traffic: list[dict[str, Any]], counters: dict[str, int]) -> None:
        """What a run without any failure gives: the same ledger event for event, counters
        that account for every message once, read models at the ledger's end and equal to a
        fresh rebuild, and an audit that passes."""
        expected = expected_ledger(traffic)
        assert self.projected() == {
            "payment_history": len(expected),
            "refund_status": len(expected),
            "analytics": len(expected),
        }
        assert counters["applied"] == len(traffic), counters
        assert counters["dead_lettered"] == 0, counters
        # A batch whose commit landed unacknowledged is read again: only as duplicates.
        assert counters["consumed"] == len(traffic) + counters["duplicates"], counters
        assert kafka_ledger(self.env) == expected
        replay = self.evledger("replay", "rebuild", "--projection", "all", "--format", "json")
        assert replay.returncode == 0, replay.stderr
        rows = json.loads(replay.stdout)
        assert rows and all(row["equal"] == "yes" for row in rows), replay.stdout
        audit = self.evledger("audit", "verify", "--format", "json")
        assert audit.returncode == 0, audit.stdout + audit.stderr
