"""The golden ledger: where it is, and how its read models are projected and checksummed.

``ledger/`` is an export of a ledger written by the Kafka writer (signed, key in
``keys/``) from the demo traffic generator with a fixed seed; ``checksums.json`` holds the
read-model checksums that ledger projected to when it was written. Every later version of
evledger must verify it, read every event, and project the same checksums.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from audit.ledger_import import import_export
from bootstrap import bootstrap
from bootstrap.settings import Settings
from demo.traffic import TrafficShape, generate
from replay.checksum import model_checksums

HERE = Path(__file__).parent
EXPORT_DIR = HERE / "ledger"
KEYS_DIR = HERE / "keys"
CHECKSUMS_FILE = HERE / "checksums.json"
# The traffic it was written from (demo.traffic.generate).
SEED = 10
SHAPE = TrafficShape(days=1, customers=6, stations=1, service_refund_rate=0.1)
# Every session with a refund or a failed payment, and this many others.
PLAIN_SESSIONS = 20

Checksums = dict[str, dict[str, object]]


def golden_messages() -> list[dict[str, Any]]:
    """A small day: the tariffs, every session with a refund or a failed payment and a few
    plain ones, each with all of its messages, in the order they occurred."""
    messages = generate(SEED, SHAPE)
    session_of = {
        m["payment_id"]: m["session_id"]
        for m in messages
        if "session_id" in m and "payment_id" in m
    }
    payment_of = {
        m["refund_id"]: m["payment_id"] for m in messages if m["type"] == "refund.requested"
    }
    eventful = {
        session_of.get(payment_of.get(m.get("refund_id"), m.get("payment_id")))
        for m in messages
        if m["type"].startswith("refund.") or m["type"] == "payment.failed"
    }
    plain = [m["session_id"] for m in messages if m["type"] == "session.started"]
    chosen = eventful | set(plain[:PLAIN_SESSIONS])

    def session(m: dict[str, Any]) -> Any:
        if "session_id" in m:
            return m["session_id"]
        return session_of.get(payment_of.get(m.get("refund_id"), m.get("payment_id")))

    return [m for m in messages if m["type"].startswith("tariff.") or session(m) in chosen]


def project(export_dir: Path, work_dir: Path) -> Checksums:
    """Import the export into a fresh embedded ledger in work_dir, project every read model
    from it, and return each table's row count and checksum."""
    root = bootstrap(Settings.embedded_in(work_dir))
    import_export(export_dir, root.ledger.import_target)
    with root.projector() as runner:
        runner.run_until_idle()
    checksums: Checksums = {}
    for model in root.read_models():
        try:
            for table, checksum in model_checksums(model).items():
                checksums[f"{model.name}.{table}"] = {
                    "rows": checksum.rows,
                    "checksum": checksum.hex,
                }
        finally:
            model.db.close()
    return dict(sorted(checksums.items()))


def expected_checksums() -> Checksums:
    data: Checksums = json.loads(CHECKSUMS_FILE.read_text(encoding="utf-8"))
    return data
