"""Write the golden ledger again (only when its format changes on purpose: a new golden
ledger hides nothing old ones would have caught, so keep the old one beside it).

    eval "$(scripts/services env)"
    .venv/bin/python -m tests.golden.regenerate

Writes the traffic through the Kafka writer with a throwaway signing key (its public key
goes to keys/), exports the topic to ledger/ as JSON Lines with a signed manifest, deletes
the topic, and records the read-model checksums the export projects to.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from audit.export import ExportFormat, export_ledger
from bootstrap import bootstrap
from bootstrap.settings import Settings
from consumers.contract import parse_message
from consumers.translate import to_command
from store.signing import LedgerSigner, generate_key
from tests.golden.golden import (
    CHECKSUMS_FILE,
    EXPORT_DIR,
    KEYS_DIR,
    golden_messages,
    project,
)
from tests.integration.store.conftest import delete_topics


def main() -> None:
    bootstrap_servers = os.environ["EVLEDGER_KAFKA_BOOTSTRAP"]
    work = Path(tempfile.mkdtemp(prefix="evledger-golden-"))
    key = generate_key(work / "key")
    prefix = f"golden.{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=bootstrap_servers,
        topic_prefix=prefix,
        data_dir=work / "data",
        signing_key_file=key.private_path,
    )
    messages = golden_messages()
    commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
    root = bootstrap(settings)
    try:
        application = root.application()
        for start in range(0, len(commands), 50):
            application.handle_batch(commands[start : start + 50])
        root.close()
        shutil.rmtree(EXPORT_DIR, ignore_errors=True)
        shutil.rmtree(KEYS_DIR, ignore_errors=True)
        KEYS_DIR.mkdir()
        shutil.copy(key.public_path, KEYS_DIR / key.public_path.name)
        manifest = export_ledger(
            root.ledger_scan(),
            EXPORT_DIR,
            ExportFormat.jsonl,
            signer=LedgerSigner.from_file(key.private_path),
        )
    finally:
        root.close()
        delete_topics(
            bootstrap_servers, [settings.ledger_topic, f"{settings.ledger_topic}.snapshots"]
        )
    checksums = project(EXPORT_DIR, work / "projected")
    CHECKSUMS_FILE.write_text(json.dumps(checksums, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work)
    print(f"golden ledger: {manifest.count} records, {len(checksums)} tables")


if __name__ == "__main__":
    main()
