"""`evledger ocpi import` then `evledger ingest --file`: OCPI objects reach ingest unchanged,
bad ones are dead-lettered with field and reason, and nothing is lost."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"


def evledger(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env["EVLEDGER_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [EVLEDGER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_import_then_ingest_accounts_for_every_object(tmp_path: Path) -> None:
    cdr = json.loads((FIXTURES / "cdr_20_45_kwh.json").read_text())
    bad_cdr = {**cdr, "id": "CDR-BAD", "auth_method": "PIN"}
    # An OCPI response (GET /cdrs) with two CDRs; the Location in its own file.
    response = {"data": [cdr, bad_cdr], "status_code": 1000, "timestamp": "2024-06-03T10:00:00Z"}
    (tmp_path / "cdrs.json").write_text(json.dumps(response))
    messages = tmp_path / "ocpi.jsonl"
    data_dir = tmp_path / "data"

    imported = evledger(
        data_dir,
        "ocpi",
        "import",
        str(tmp_path / "cdrs.json"),
        str(FIXTURES / "location_utrecht.json"),
        str(FIXTURES / "tariff_flat_and_energy.json"),
        "--out",
        str(messages),
    )
    assert imported.returncode == 0, imported.stderr
    assert "wrote 4 messages (2 cdr, 1 location, 1 tariff)" in imported.stderr

    # Reference data first: the Location, the Tariff, then the two CDRs.
    lines = messages.read_bytes().splitlines()
    types = [json.loads(line)["type"] for line in lines]
    assert types == ["ocpi.location", "ocpi.tariff", "ocpi.cdr", "ocpi.cdr"]

    ingested = evledger(data_dir, "ingest", "--file", str(messages), "--format", "json")
    assert ingested.returncode == 0, ingested.stderr
    (counters,) = json.loads(ingested.stdout)
    assert counters["consumed"] == 4 and counters["dead_lettered"] == 1
    assert counters["applied"] == 3 and counters["rejected"] == 0

    (letter,) = [
        json.loads(line) for line in (data_dir / "dead-letters.jsonl").read_text().splitlines()
    ]
    assert letter["line"] == 4 and letter["field"] == "cdr.auth_method"
    assert "'AUTH_REQUEST', 'COMMAND' or 'WHITELIST'" in letter["reason"]
    # The dead letter keeps the message byte for byte, the OCPI object inside unchanged.
    original = base64.b64decode(letter["value_base64"])
    assert original == lines[3]
    assert b'"id":"CDR-BAD"' in original
