"""Benchmark: what signing every ledger record costs the Kafka writer.

Writes the same events (B batches of N, one transaction each) to two fresh ledger topics,
one unsigned and one with an Ed25519 signing key, and prints events/s for each and the
cost of signing per event. Deletes its topics afterwards.

    .venv/bin/python bench/signing_bench.py --batches 20 --events 500

Needs `scripts/services up`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eventsourcing.persistence import StoredEvent

from bootstrap.settings import load_settings
from store.ledger import Ledger, LedgerConfig
from store.signing import LedgerSigner, generate_key

KAFKA_BOOTSTRAP = os.environ.get("EVLEDGER_KAFKA_BOOTSTRAP") or "127.0.0.1:9092"


def run(signer: LedgerSigner | None, batches: int, events: int) -> float:
    topic = f"bench.signing.{uuid.uuid4().hex[:8]}"
    ledger = Ledger(
        LedgerConfig(
            load_settings().kafka_connection(KAFKA_BOOTSTRAP),
            topic,
            f"{topic}.writer",
            signer=signer,
        )
    )
    state = b'{"timestamp":"2026-03-02T08:00:00+00:00","total_minor":526,' + b'"x":"' * 40 + b'"}'
    try:
        ledger.insert([StoredEvent(uuid.uuid4(), 1, "bench:Warmup", state)])
        started = time.perf_counter()
        for _ in range(batches):
            ledger.insert(
                [StoredEvent(uuid.uuid4(), 1, "bench:Event", state) for _ in range(events)]
            )
        elapsed = time.perf_counter() - started
    finally:
        ledger.close()

        admin = load_settings().kafka_connection(KAFKA_BOOTSTRAP).admin()
        admin.delete_topics([topic])
        admin.close()
    return batches * events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--events", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as keys:
        signer = LedgerSigner.from_file(generate_key(Path(keys)).private_path)
        unsigned = run(None, args.batches, args.events)
        signed = run(signer, args.batches, args.events)
    print(f"unsigned: {unsigned:,.0f} events/s")
    print(f"signed:   {signed:,.0f} events/s")
    print(f"signing costs {1e6 / signed - 1e6 / unsigned:,.1f} us per event in the writer")


if __name__ == "__main__":
    main()
