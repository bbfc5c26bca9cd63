"""The chaos run (bench/chaos.py) with at least ten kills, as CI runs it: the books from
outside must be exact after kill -9 of ingest processes, projector processes and brokers."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.integration.cluster.cluster import ROOT, Cluster

KILLS = 12


def test_chaos_run_with_kills_leaves_exact_books(healthy_cluster: Cluster) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "chaos.py"),
            "--kills",
            str(KILLS),
            "--seed",
            "11",
            "--time-limit",
            "600",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(result.stdout[result.stdout.index("{") :])
    print(
        f"\nchaos: kills {report['kills']}, total stall {report['total_stall_s']}s, "
        f"{report['events']} events, {report['result']}"
    )
    assert sum(report["kills"].values()) == KILLS
    assert report["result"] == "PASS" and all(report["checks"].values()), report["checks"]
    assert report["unexpected_exits"] == {"ingest": [], "projector": []}, report
