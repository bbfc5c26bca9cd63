"""`evledger ingest --file` on the embedded default: counters, dead letters, re-ingest."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from demo.traffic import TrafficShape, generate

EVLEDGER = str(Path(sys.executable).with_name("evledger"))


def ingest(data_dir: Path, path: Path) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env["EVLEDGER_DATA_DIR"] = str(data_dir)
    result = subprocess.run(
        [EVLEDGER, "ingest", "--file", str(path), "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (counters,) = json.loads(result.stdout)
    return dict(counters)


def test_a_file_ingested_twice_changes_the_ledger_once_and_dead_letters_each_bad_line_once(
    tmp_path: Path,
) -> None:
    good = generate(seed=2, shape=TrafficShape(stations=2, customers=10))
    bad = [b'{"type": "payment.captured", "event_id": 1}', b"\xff\xfe not text", b"[]"]
    path = tmp_path / "upstream.jsonl"
    lines = (
        [json.dumps(m).encode() for m in good[:10]]
        + bad
        + [json.dumps(m).encode() for m in good[10:]]
    )
    path.write_bytes(b"\n".join(lines) + b"\n")
    data_dir = tmp_path / "data"

    first = ingest(data_dir, path)
    again = ingest(data_dir, path)

    assert first == {
        "consumed": len(good) + len(bad),
        "applied": len(good),
        "duplicates": 0,
        "rejected": first["rejected"],
        "dead_lettered": len(bad),
    }
    assert again["applied"] == 0
    assert again["duplicates"] == len(good)
    assert again["dead_lettered"] == len(bad)
    letters = [json.loads(line) for line in (data_dir / "dead-letters.jsonl").open()]
    assert [base64.b64decode(letter["value_base64"]) for letter in letters] == bad
    assert [letter["line"] for letter in letters] == [11, 12, 13]
    assert letters[0]["field"] == "event_id"


def test_rejections_that_named_no_aggregate_show_in_the_analytics(tmp_path: Path) -> None:
    base = {"occurred_at": "2026-03-02T10:00:00Z"}
    messages = [
        {**base, "type": "session.stopped", "event_id": "stop-ghost", "session_id": "S-GHOST",
         "meter_stop_wh": 100},
        {**base, "type": "payment.captured", "event_id": "cap-ghost", "payment_id": "P-GHOST",
         "amount_minor": 500},
    ]  # fmt: skip
    path = tmp_path / "upstream.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    data_dir = tmp_path / "data"
    assert ingest(data_dir, path)["rejected"] == 2
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env["EVLEDGER_DATA_DIR"] = str(data_dir)
    for args in (
        ["project", "--until-idle"],
        ["analytics", "query", "SELECT event_id, message_type, reason FROM rejections"
         " ORDER BY event_id", "--format", "json"],
    ):  # fmt: skip
        result = subprocess.run(
            [EVLEDGER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["event_id"], r["message_type"]) for r in rows] == [
        ("cap-ghost", "payment.captured"),
        ("stop-ghost", "session.stopped"),
    ]
    assert rows[0]["reason"].startswith("unknown payment P-GHOST")
    assert rows[1]["reason"] == "unknown session S-GHOST"
