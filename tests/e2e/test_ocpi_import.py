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

    ingested = evledger(data_dir, "ingest", "--file", str(messages), "--format", "json")
    assert ingested.returncode == 0, ingested.stderr
    (counters,) = json.loads(ingested.stdout)
    assert counters["consumed"] == 4 and counters["dead_lettered"] == 4

    letters = [
        json.loads(line) for line in (data_dir / "dead-letters.jsonl").read_text().splitlines()
    ]
    by_line = {letter["line"]: letter for letter in letters}
    assert by_line[2]["field"] == "cdr.auth_method"
    assert "'AUTH_REQUEST', 'COMMAND' or 'WHITELIST'" in by_line[2]["reason"]
    assert by_line[1]["reason"].startswith("valid CDR NL/EVL/CDR-2045")
    assert by_line[3]["reason"].startswith("valid Location NL/EVL/LOC-1")
    assert by_line[4]["reason"].startswith("valid Tariff NL/EVL/T-ALT-URL")
    # The dead letter keeps the message byte for byte, the OCPI object inside unchanged.
    original = base64.b64decode(by_line[1]["value_base64"])
    assert original == messages.read_bytes().splitlines()[0]
    assert b'"total_cost":{"excl_vat":5.63,"incl_vat":6.24}' in original
