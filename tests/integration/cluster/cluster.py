"""The three-node test cluster from outside: start it, find leaders and coordinators, kill
and restart nodes, wait for replicas to catch up. Driven through scripts/services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from store.cluster_health import ClusterHealth, cluster_health
from store.kafka_clients import KafkaConnection

ROOT = Path(__file__).resolve().parents[3]
SERVICES = ROOT / "scripts" / "services"
BROKERS = 3
# Generous bounds on waits for the cluster: they only turn a hang into a readable failure.
WAIT_S = 180.0


class ClusterError(AssertionError):
    """The cluster did not reach the state a test waits for."""


def services(*args: str, timeout: float = 300) -> str:
    """Run scripts/services with --brokers 3; its stdout, or a failure with its output."""
    result = subprocess.run(
        [str(SERVICES), *args, "--brokers", str(BROKERS)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise ClusterError(
            f"scripts/services {' '.join(args)} --brokers {BROKERS} failed:\n"
            f"{result.stdout}{result.stderr}"
        )
    return result.stdout


def wait_for(what: str, condition: Callable[[], bool], timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ClusterError(f"gave up waiting for {what}")
        time.sleep(0.2)


class Cluster:
    """The cluster scripts/services runs; every node is expected up between tests."""

    def __init__(self) -> None:
        self.status = json.loads(services("status", "--json"))
        self.bootstrap: str = self.status["bootstrap"]

    def refresh(self) -> dict[str, Any]:
        self.status = json.loads(services("status", "--json"))
        return self.status

    def pid(self, node: int) -> int | None:
        for broker in self.refresh()["brokers"]:
            if broker["node_id"] == node:
                return int(broker["pid"]) if broker["pid"] is not None else None
        raise ClusterError(f"no node {node} in the cluster")

    def running(self) -> list[int]:
        return [b["node_id"] for b in self.refresh()["brokers"] if b["running"]]

    def kill(self, node: int) -> None:
        """kill -9 one node, and wait until its process is gone."""
        pid = self.pid(node)
        if pid is None:
            raise ClusterError(f"node {node} is not running")
        os.kill(pid, signal.SIGKILL)
        wait_for(f"node {node} (pid {pid}) to die", lambda: not _alive(pid), 30)

    def start(self, node: int | None = None) -> None:
        """Start one stopped node (or every stopped node) and wait until it is a live broker."""
        services("up", *(["--node", str(node)] if node is not None else []))

    def start_in_background(self, node: int) -> subprocess.Popen[str]:
        """Restart a node while the test goes on; finish with `started`."""
        return subprocess.Popen(
            [str(SERVICES), "up", "--node", str(node), "--brokers", str(BROKERS)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @staticmethod
    def started(starting: subprocess.Popen[str]) -> None:
        output, _ = starting.communicate(timeout=300)
        if starting.returncode != 0:
            raise ClusterError(f"restarting a node failed:\n{output}")

    def health(self, topics: list[str] | None = None) -> ClusterHealth:
        return cluster_health(KafkaConnection(self.bootstrap), topics)

    def leader(self, topic: str) -> int:
        state = self.health([topic]).partition(topic)
        if state is None or state.leader < 0:
            raise ClusterError(f"{topic} has no leader")
        return state.leader

    def active_controller(self) -> int:

        admin = KafkaConnection(self.bootstrap).admin()
        try:
            quorum = admin.describe_metadata_quorum()
        finally:
            admin.close()
        return int(quorum["topics"][0]["partitions"][0]["leader_id"])

    def transaction_coordinator(self, transactional_id: str) -> int:

        admin = KafkaConnection(self.bootstrap).admin()
        try:
            return int(admin.describe_transactions([transactional_id])[transactional_id][0])
        finally:
            admin.close()

    def wait_in_sync(self, topics: list[str] | None = None) -> None:
        """Until every node is a live broker and every replica of `topics` (None: all
        topics, internal ones included) is in its partition's ISR."""

        def in_sync() -> bool:
            try:
                health = self.health(topics)
            except Exception:  # a broker mid-restart: ask again
                return False
            return len(health.brokers) == BROKERS and not health.under_replicated

        wait_for(
            f"all {BROKERS} brokers live and every replica of {topics or 'all'} in sync", in_sync
        )

    def heal(self) -> None:
        """Every node running and every replica in sync: the state each test starts from."""
        self.start()
        self.wait_in_sync()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
