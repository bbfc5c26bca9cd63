"""The chaos run's verdict, from outside: the ledger against a clean in-memory run, the
read models against a fresh rebuild, the audit, and the ingest accounting from the topics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bootstrap.settings import load_settings
from tests.ledger_compare import expected_ledger, kafka_ledger_rows

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


@dataclass
class Verdict:
    checks: dict[str, bool] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, note: Any = None) -> None:
        self.checks[name] = ok
        if note is not None:
            self.notes[name] = note

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(self.checks.values())


def kafka_rows(env: dict[str, str], data_dir: Path) -> list[tuple[Any, ...]]:
    return kafka_ledger_rows(
        env["EVLEDGER_KAFKA_BOOTSTRAP"], env["EVLEDGER_TOPIC_PREFIX"], data_dir
    )


def topic_values(bootstrap: str, topic: str) -> list[bytes]:
    """Every committed record value of a one-partition topic."""
    from kafka import TopicPartition

    consumer = (
        load_settings()
        .kafka_connection(bootstrap)
        .consumer(isolation_level="read_committed", enable_auto_commit=False)
    )
    partition = TopicPartition(topic, 0)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        values: list[bytes] = []
        while consumer.position(partition) < end:
            values.extend(r.value for r in consumer.poll(timeout_ms=500).get(partition, []))
        return values
    finally:
        consumer.close()


def _event_ids(values: list[bytes]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for value in values:
        try:
            ids[str(json.loads(value)["event_id"])] += 1
        except (ValueError, KeyError, TypeError):
            ids["<unreadable>"] += 1
    return ids


def judge(
    env: dict[str, str], messages: list[dict[str, Any]], data_dir: Path, committed: int
) -> Verdict:
    """`committed` is the ingest group's committed offset: how many records it consumed."""
    verdict = Verdict()
    prefix = env["EVLEDGER_TOPIC_PREFIX"]
    bootstrap = env["EVLEDGER_KAFKA_BOOTSTRAP"]

    expected = expected_ledger(messages)
    actual = kafka_rows(env, data_dir)
    verdict.notes["events"] = len(actual)
    verdict.check(
        "ledger equals a clean run", actual == expected, f"{len(actual)} vs {len(expected)} events"
    )
    processed = Counter(
        row[3]["event_id"] for row in actual if row[1].endswith("ProcessedMessage.Recorded")
    )
    once = all(count == 1 for count in processed.values())
    verdict.check(
        "each event_id once in the ledger",
        once and set(processed) == {m["event_id"] for m in messages},
        f"{len(processed)} event_ids",
    )

    # consumed = applied + duplicates + dead-lettered, from the topics alone: every record
    # consumed (the group's offset is the topic's end), each distinct event_id applied once
    # or dead-lettered once, and every other record a repeat of one of them.
    ingested = topic_values(bootstrap, f"{prefix}.ingest")
    dead = topic_values(bootstrap, f"{prefix}.ingest.dlq")
    consumed = committed
    applied = len(processed)
    duplicates = len(ingested) - len(_event_ids(ingested))
    verdict.notes["accounting"] = {
        "consumed": consumed,
        "applied": applied,
        "duplicates": duplicates,
        "dead_lettered": len(dead),
        "published": len(ingested),
    }
    verdict.check(
        "consumed = applied + duplicates + dead-lettered",
        consumed == len(ingested) == applied + duplicates + len(dead),
        verdict.notes["accounting"],
    )

    replay = subprocess.run(
        [EVLEDGER, "replay", "rebuild", "--projection", "all", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    try:
        rows = json.loads(replay.stdout)
    except ValueError:
        rows = []
    verdict.check(
        "read models equal a fresh rebuild",
        replay.returncode == 0 and bool(rows) and all(r["equal"] == "yes" for r in rows),
        [f"{r['projection']}.{r['table']}: {r['live_rows']} rows {r['equal']}" for r in rows]
        or replay.stderr[-500:],
    )
    audit = subprocess.run(
        [EVLEDGER, "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    verdict.check(
        "audit verify passes",
        audit.returncode == 0,
        (audit.stdout + audit.stderr)[-300:] if audit.returncode else None,
    )
    return verdict


def base_env() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith("EVLEDGER_")}
