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
