"""Benchmark: the same traffic through a 1-shard and a 2-shard ledger, in one run.

Each ledger gets the same upstream messages through `evledger publish` (which routes them
by session when there are shards); then it is ingested, by one `evledger ingest` process
for 1 shard and by two at once (one consumer group) for 2 shards, projected by
`evledger project --until-idle` (one process; it steps the shards in turn), then rebuilt
by `evledger replay rebuild` (one process for 1 shard; for 2, a worker process per shard
rebuilds it, the parent merges them, compares with the live models and swaps once). Every
step is the real command in its own process, timed from start to exit; its CPU seconds
include its worker processes'.

    .venv/bin/python bench/shards_bench.py --days 2 [--rebuilds 3]

Needs `scripts/services up` (Kafka; the read models go to SQLite and DuckDB in a temporary
data dir). Prints one JSON object: seconds per step and shard count, and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo.traffic import TrafficShape, generate

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"


def timed(commands: list[list[str]], envs: list[dict[str, str]]) -> tuple[float, float]:
    """Seconds from starting the commands together until the last one exits (each must
    exit 0), and the CPU seconds they used together (on a machine busy with other work,
    parallel processes can only show their speed-up when cores are free)."""
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for command, env in zip(commands, envs, strict=True)
    ]
    for process in processes:
        _, errors = process.communicate(timeout=3600)
        if process.returncode != 0:
            raise SystemExit(f"{process.args} failed: {errors.decode()[-2000:]}")
    return time.perf_counter() - started, _children_cpu_s() - cpu_before


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(shards: int, traffic_file: Path, scratch: Path, rebuilds: int) -> dict[str, float]:
    prefix = f"bench-shards-{shards}-{uuid.uuid4().hex[:8]}"
    # The read models go to SQLite and DuckDB in the scratch dir, never to a shared
    # PostgreSQL schema that other runs write too (its rows would differ from the rebuild).
    base = {
        **{name: value for name, value in os.environ.items() if name != "EVLEDGER_PG_DSN"},
        "EVLEDGER_KAFKA_BOOTSTRAP": BOOTSTRAP,
        "EVLEDGER_TOPIC_PREFIX": prefix,
        "EVLEDGER_LEDGER_SHARDS": str(shards),
        "EVLEDGER_DATA_DIR": str(scratch / prefix / "reader"),
    }
    timed([[EVLEDGER, "publish", str(traffic_file)]], [base])
    ingest = [EVLEDGER, "ingest", "--until-idle", "--format", "json"]
    # One ingest process per shard, each with a data dir of its own as on its own machine.
    envs = [
        {**base, "EVLEDGER_DATA_DIR": str(scratch / prefix / f"ingest-{process}")}
        for process in range(shards)
    ]
    ingest_s, ingest_cpu_s = timed([ingest] * shards, envs)
    project = [EVLEDGER, "project", "--until-idle", "--format", "json"]
    project_s, project_cpu_s = timed([project], [base])
    rebuild = [EVLEDGER, "replay", "rebuild", "--no-progress", "--format", "json"]
    # The fastest of the rebuilds (each swaps in equal models): the least disturbed by
    # other work on a shared machine.
    rebuild_s, rebuild_cpu_s = min(timed([rebuild], [base]) for _ in range(rebuilds))
    return {
        "ingest_s": round(ingest_s, 2),
        "ingest_cpu_s": round(ingest_cpu_s, 2),
        "project_s": round(project_s, 2),
        "project_cpu_s": round(project_cpu_s, 2),
        "rebuild_s": round(rebuild_s, 2),
        "rebuild_cpu_s": round(rebuild_cpu_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2, help="Days of generated traffic.")
    parser.add_argument(
        "--rebuilds", type=int, default=1, help="Rebuild this many times; report the fastest."
    )
    args = parser.parse_args()
    messages = generate(seed=7, shape=TrafficShape(stations=60, customers=5000, days=args.days))
    with tempfile.TemporaryDirectory(prefix="evledger-shards-bench-") as scratch:
        traffic_file = Path(scratch) / "traffic.jsonl"
        traffic_file.write_text("".join(json.dumps(message) + "\n" for message in messages))
        one = run(1, traffic_file, Path(scratch), args.rebuilds)
        two = run(2, traffic_file, Path(scratch), args.rebuilds)
    print(
        json.dumps(
            {
                "messages": len(messages),
                "one_shard": one,
                "two_shards": two,
                "ingest_speedup": round(one["ingest_s"] / two["ingest_s"], 2),
                "project_speedup": round(one["project_s"] / two["project_s"], 2),
                "rebuild_speedup": round(one["rebuild_s"] / two["rebuild_s"], 2),
                "load_average_1m": round(os.getloadavg()[0], 1),
                "cores": os.cpu_count(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
