"""Chaos run: a day of traffic through publish -> ingest -> projectors on the three-node
cluster while a seeded schedule kill -9s ingest processes, projector processes and brokers
(at most one broker down at a time), restarting each; then proves the books from outside.

    .venv/bin/python bench/chaos.py --kills 100 --seed 7

Starts the cluster itself (scripts/services up --brokers 3) and uses the PostgreSQL of
scripts/services (a database of its own, dropped at the end). Bounded: it stops by itself
after --time-limit seconds at the latest, failing if the books were not done by then.
Prints kills by kind, the stall after ingest and broker kills (kill to the ledger's next
commit, while upstream keeps publishing), the events and the verdict (JSON); exit 0 only
if every check passed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_books import EVLEDGER, Verdict, base_env, judge, kafka_rows
from bench.chaos_plan import BROKER, INGEST, PROJECTOR, Kill, plan
from bootstrap.settings import load_settings
from consumers.producer import publish_file
from demo.traffic import TrafficShape, generate
from store.admin import TopicSpec, ensure_topic

ROOT = Path(__file__).resolve().parent.parent
SERVICES = str(ROOT / "scripts" / "services")


class ChaosFailed(RuntimeError):
    """The run could not reach the state it waits for within its time limit."""


def services(*args: str) -> str:
    result = subprocess.run(
        [SERVICES, *args, "--brokers", "3"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        raise ChaosFailed(
            f"scripts/services {' '.join(args)} failed: {result.stdout}{result.stderr}"
        )
    return result.stdout


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def check(self, waiting_for: str) -> None:
        if time.monotonic() > self.at:
            raise ChaosFailed(f"time limit reached while waiting for {waiting_for}")


class Worker:
    """One evledger process (ingest or project) that the run kills and restarts."""

    def __init__(self, kind: str, args: list[str], env: dict[str, str], logs: Path) -> None:
        self.kind = kind
        self.args = args
        self.env = env
        self.log = logs / f"{kind}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.unexpected_exits: list[int] = []

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [EVLEDGER, *self.args], env=self.env, stdout=output, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def keep_alive(self) -> None:
        """Restart it if it exited on its own (counted: it should not)."""
        if self.process is not None and self.process.poll() is not None:
            self.unexpected_exits.append(self.process.returncode)
            self.start()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=120)


class LedgerWatch(threading.Thread):
    """Samples the ledger's committed end; when it moved last is the stall measure."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True, name="ledger-watch")
        self.bootstrap = bootstrap
        self.topic = topic
        self.moves: list[float] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        from kafka import TopicPartition

        consumer = (
            load_settings()
            .kafka_connection(self.bootstrap)
            .consumer(
                isolation_level="read_committed",
                request_timeout_ms=5000,
            )
        )
        partition = TopicPartition(self.topic, 0)
        last = -1
        while not self.stopping.is_set():
            try:
                end = int(consumer.end_offsets([partition], timeout_ms=2000)[partition])
            except Exception:  # an election: no answer for now
                end = last
            if end > last:
                last = end
                self.moves.append(time.monotonic())
            self.stopping.wait(0.1)
        consumer.close()

    def next_move_after(self, moment: float) -> float | None:
        return next((m for m in self.moves if m > moment), None)


class Publisher(threading.Thread):
    """Publishes the day's messages in chunks, one chunk as the run starts and one after
    each kill, so that every kill meets fresh work, as upstream would keep sending; a chunk
    that fails (a broker died under it) is published again whole, which ingest must count
    as duplicates."""

    def __init__(
        self, messages: list[dict[str, Any]], env: dict[str, str], work: Path, chunks: int
    ) -> None:
        super().__init__(daemon=True, name="publisher")
        self.messages = messages
        self.env = env
        self.work = work
        self.chunks = max(1, chunks)
        self.kills = threading.Semaphore(0)
        self.republished = 0
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            size = -(-len(self.messages) // self.chunks)
            for n, at in enumerate(range(0, len(self.messages), size)):
                if n:
                    self.kills.acquire()
                path = self.work / f"chunk-{n}.jsonl"
                path.write_text(
                    "".join(json.dumps(m) + "\n" for m in self.messages[at : at + size])
                )
                topic = f"{self.env['EVLEDGER_TOPIC_PREFIX']}.ingest"
                while True:
                    try:
                        publish_file(
                            path,
                            load_settings().kafka_connection(self.env["EVLEDGER_KAFKA_BOOTSTRAP"]),
                            topic,
                        )
                        break
                    except Exception:
                        self.republished += 1
                        time.sleep(1)
        except BaseException as error:
            self.error = error
        finally:
            self.done.set()

    def release_all(self) -> None:
        for _ in range(self.chunks):
            self.kills.release()


def fresh_database(dsn: str) -> tuple[str, str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    name = f"chaos_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return name, make_conninfo("", **{**conninfo_to_dict(dsn), "dbname": name})


def drop_database(dsn: str, name: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def cluster_in_sync(bootstrap: str) -> bool:
    from store.cluster_health import cluster_health

    try:
        health = cluster_health(load_settings().kafka_connection(bootstrap))
    except Exception:
        return False
    return len(health.brokers) == 3 and not health.under_replicated


def group_offset(bootstrap: str, group: str, topic: str) -> int:
    """The ingest group's committed offset: how many ingest records it has consumed."""
    from kafka import TopicPartition

    admin = load_settings().kafka_connection(bootstrap).admin(request_timeout_ms=5000)
    try:
        found = admin.list_group_offsets({group: None})[group].get(TopicPartition(topic, 0))
        return int(found.offset) if found is not None else 0
    finally:
        admin.close()


def topic_end(bootstrap: str, topic: str) -> int:
    from kafka import TopicPartition

    consumer = load_settings().kafka_connection(bootstrap).consumer()
    try:
        partition = TopicPartition(topic, 0)
        return int(consumer.end_offsets([partition])[partition])
    finally:
        consumer.close()


def projected(env: dict[str, str]) -> dict[str, int]:
    import psycopg

    with psycopg.connect(env["EVLEDGER_PG_DSN"]) as connection:
        exists = connection.execute("SELECT to_regclass('projection_tracking')").fetchone()
        if exists is None or exists[0] is None:
            return {}
        query = "SELECT projection_name, notification_id FROM projection_tracking"
        rows = connection.execute(query).fetchall()
    return {str(name): int(position) for name, position in rows}


class ChaosRun:
    """One run: the cluster, a database and topics of its own, the workers, the schedule."""

    def __init__(self, kills: int, seed: int, time_limit: float, shape: TrafficShape) -> None:
        self.kills = kills
        self.seed = seed
        self.deadline = Deadline(time_limit)
        self.started = time.monotonic()
        services("up")
        self.bootstrap: str = json.loads(services("status", "--json"))["bootstrap"]
        self.service_env = dict(
            line.removeprefix("export ").split("=", 1)
            for line in services("env").splitlines()
            if "=" in line
        )
        self.messages = generate(seed=seed, shape=shape)
        self.schedule = plan(kills, seed)
        self.work = Path(tempfile.mkdtemp(prefix="evledger-chaos-"))
        self.db_name, dsn = fresh_database(self.service_env["EVLEDGER_PG_DSN"])
        self.prefix = f"chaos-{seed}-{uuid.uuid4().hex[:6]}"
        self.env = {
            **base_env(),
            **self.service_env,
            "EVLEDGER_PG_DSN": dsn,
            "EVLEDGER_TOPIC_PREFIX": self.prefix,
            "EVLEDGER_DATA_DIR": str(self.work / "data"),
            # Longer than an election (about 4 s here), so a kill costs one wait at most.
            "EVLEDGER_KAFKA_TIMEOUT_S": "10",
        }
        self.workers = {
            INGEST: Worker(INGEST, ["ingest", "--batch-size", "10"], self.env, self.work),
            PROJECTOR: Worker(PROJECTOR, ["project"], self.env, self.work),
        }
        self.watch = LedgerWatch(self.bootstrap, f"{self.prefix}.ledger")
        self.publisher = Publisher(self.messages, self.env, self.work, chunks=kills + 1)
        self.done: list[tuple[Kill, float]] = []
        self.restarting: threading.Thread | None = None

    def say(self, line: str) -> None:
        print(f"chaos: {line}", flush=True)

    def run(self) -> dict[str, Any]:
        self.say(
            f"{self.kills} kills (seed {self.seed}), {len(self.messages)} messages, "
            f"topics {self.prefix}.*, logs in {self.work}"
        )
        # Topics first (with the cluster's replication), so the publisher has somewhere to go.
        for suffix in ("ingest", "ingest.dlq", "ledger"):
            ensure_topic(
                load_settings().kafka_connection(self.bootstrap),
                TopicSpec(f"{self.prefix}.{suffix}", 3, 2),
            )
        for worker in self.workers.values():
            worker.start()
        self.watch.start()
        self.publisher.start()
        try:
            t0 = time.monotonic()
            for kill in self.schedule:
                while time.monotonic() < t0 + kill.at_s:
                    self.keep_alive()
                    time.sleep(0.05)
                at = self.kill_broker(kill) if kill.kind == BROKER else self.kill_worker(kill)
                self.done.append((kill, at))
                self.publisher.kills.release()
                node = f" node {kill.node}" if kill.node else ""
                self.say(f"{at - t0:7.1f}s kill -9 {kill.kind}{node}")
            committed = self.finish()
            exits = {kind: worker.stop() for kind, worker in self.workers.items()}
            self.watch.stopping.set()
            self.say("checking the books")
            verdict = judge(self.env, self.messages, self.work / "judge", committed)
            verdict.check("ingest and projector stopped cleanly", set(exits.values()) == {0}, exits)
        finally:
            self.watch.stopping.set()
            for worker in self.workers.values():
                if worker.process is not None and worker.process.poll() is None:
                    worker.process.kill()
            if self.restarting is not None:
                self.restarting.join(300)
            drop_database(self.service_env["EVLEDGER_PG_DSN"], self.db_name)
        return self.report(verdict)

    def keep_alive(self) -> None:
        for worker in self.workers.values():
            worker.keep_alive()

    def kill_worker(self, kill: Kill) -> float:
        worker = self.workers[kill.kind]
        worker.keep_alive()
        worker.kill()
        at = time.monotonic()
        time.sleep(kill.down_s)
        worker.start()
        return at

    def kill_broker(self, kill: Kill) -> float:
        # At most one broker down: the last one must be back and every replica in sync.
        self.wait_restarted()
        while not cluster_in_sync(self.bootstrap):
            self.deadline.check("the cluster to be in sync before the next broker kill")
            self.keep_alive()
            time.sleep(0.2)
        brokers = json.loads(services("status", "--json"))["brokers"]
        pid = next(b["pid"] for b in brokers if b["node_id"] == kill.node)
        os.kill(int(pid), signal.SIGKILL)
        at = time.monotonic()

        def restart() -> None:
            time.sleep(kill.down_s)
            services("up", "--node", str(kill.node))

        self.restarting = threading.Thread(target=restart, daemon=True)
        self.restarting.start()
        return at

    def wait_restarted(self) -> None:
        while self.restarting is not None and self.restarting.is_alive():
            self.deadline.check("a broker restart")
            self.keep_alive()
            self.restarting.join(0.2)

    def finish(self) -> int:
        """Everything back, published, consumed and projected; the ingest group's offset."""
        self.wait_restarted()
        self.publisher.release_all()
        while not self.publisher.done.is_set():
            self.deadline.check("the publisher")
            self.keep_alive()
            time.sleep(0.2)
        if self.publisher.error is not None:
            raise ChaosFailed(f"publishing failed: {self.publisher.error!r}")
        while not cluster_in_sync(self.bootstrap):
            self.deadline.check("the cluster to be in sync")
            time.sleep(0.5)
        topic = f"{self.prefix}.ingest"
        end = topic_end(self.bootstrap, topic)
        committed = 0
        while committed < end:
            self.keep_alive()
            committed = group_offset(self.bootstrap, topic, topic)
            self.deadline.check(f"ingest to consume the topic ({committed}/{end})")
            time.sleep(0.5)
        events = len(kafka_rows(self.env, self.work / "reader"))
        positions: dict[str, int] = {}
        while len(positions) < 2 or min(positions.values()) < events:
            self.keep_alive()
            self.deadline.check(f"the projectors to reach {events} ({positions})")
            time.sleep(0.5)
            positions = projected(self.env)
        return committed

    def report(self, verdict: Verdict) -> dict[str, Any]:
        stalls: dict[str, list[float]] = defaultdict(list)
        intervals: list[tuple[float, float]] = []
        for kill, at in self.done:
            if kill.kind == PROJECTOR:
                continue  # projectors do not write the ledger: their kills stall no commit
            moved = self.watch.next_move_after(at)
            if moved is not None:
                stalls[kill.kind].append(moved - at)
                intervals.append((at, moved))
        return {
            "command": f"bench/chaos.py --kills {self.kills} --seed {self.seed}",
            "kills": dict(Counter(kill.kind for kill, _ in self.done)),
            "stall_s": {
                kind: {
                    "total": round(sum(v), 2),
                    "max": round(max(v), 2),
                    "mean": round(sum(v) / len(v), 2),
                }
                for kind, v in stalls.items()
            },
            # Per kill, stalls overlap (a kill during another's stall): the sum over kills,
            # and the wall time during which some kill's stall was running.
            "total_stall_s": round(sum(sum(v) for v in stalls.values()), 2),
            "stalled_wall_s": round(_union(intervals), 2),
            "messages": len(self.messages),
            "republished_chunks": self.publisher.republished,
            "events": verdict.notes.get("events"),
            "unexpected_exits": {k: w.unexpected_exits for k, w in self.workers.items()},
            "checks": verdict.checks,
            "notes": {k: v for k, v in verdict.notes.items() if k != "events"},
            "result": "PASS" if verdict.passed else "FAIL",
            "elapsed_s": round(time.monotonic() - self.started, 1),
            "logs": str(self.work),
        }


def _union(intervals: list[tuple[float, float]]) -> float:
    """The length of the union of [start, end) intervals."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-limit", type=float, default=1200.0, help="seconds, at most")
    parser.add_argument("--stations", type=int, default=TrafficShape.stations)
    parser.add_argument("--customers", type=int, default=TrafficShape.customers)
    args = parser.parse_args()
    shape = TrafficShape(stations=args.stations, customers=args.customers, days=1)
    try:
        report = ChaosRun(args.kills, args.seed, args.time_limit, shape).run()
    except ChaosFailed as failed:
        print(f"chaos: FAIL: {failed}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(report, indent=2))
    sys.exit(0 if report["result"] == "PASS" else 1)


if __name__ == "__main__":
    main()
