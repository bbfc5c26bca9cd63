"""A signed Kafka ledger on the real broker: the writer signs every record, a key rotation
keeps old records verifiable, and a record appended by a plain producer (chained with the
project's own chain_hash, balanced, plausible) fails `audit verify --public-key`."""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bootstrap import bootstrap
from bootstrap.settings import Settings
from cli.audit import app
from consumers.contract import parse_message
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store.records import LedgerRecord
from store.signing import (
    HEADER_KEY_ID,
    HEADER_SIGNATURE,
    HEADER_SIGNED_FROM,
    GeneratedKey,
    generate_key,
)
from tests.integration.audit.test_audit_kafka import KafkaLedger, Raw, copy_to, read_raw
from tests.integration.store.conftest import delete_topics

pytestmark = [pytest.mark.kafka]

runner = CliRunner()


@dataclass
class SignedLedger:
    ledger: KafkaLedger
    first_key: GeneratedKey
    second_key: GeneratedKey
    trusted: Path  # a directory with both public keys

    def verify(self, *args: str, prefix: str | None = None) -> Any:
        return runner.invoke(
            app, ["verify", "--format", "json", *args], env=self.ledger.env(prefix)
        )


def _write(settings: Settings, commands: list[Any]) -> None:
    application = BillingApplication(env=bootstrap(settings).ledger.environment())
    try:
        for start in range(0, len(commands), 200):
            application.handle_batch(commands[start : start + 200])
    finally:
        application.close()


@pytest.fixture(scope="module")
def signed(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SignedLedger]:
    keys = tmp_path_factory.mktemp("keys")
    first_key = generate_key(keys / "2026-01")
    second_key = generate_key(keys / "2026-02")
    trusted = keys / "trusted"
    trusted.mkdir()
    for key in (first_key, second_key):
        (trusted / key.public_path.name).write_bytes(key.public_path.read_bytes())
    prefix = f"test.signed.{uuid.uuid4().hex[:8]}"
    data_dir = tmp_path_factory.mktemp("kafka")
    topics = [f"{prefix}.ledger", f"{prefix}.ledger.snapshots"]
    messages = generate(29, TrafficShape(days=1, customers=60, stations=4))
    commands = [to_command(parse_message(json.dumps(m).encode())) for m in messages]
    half = len(commands) // 2
    try:
        # The first half of the day signed with the first key, then the key is rotated.
        for key, part in ((first_key, commands[:half]), (second_key, commands[half:])):
            _write(
                Settings(
                    kafka_bootstrap=kafka_bootstrap,
                    topic_prefix=prefix,
                    data_dir=data_dir,
                    signing_key_file=key.private_path,
                ),
                part,
            )
        records = read_raw(kafka_bootstrap, f"{prefix}.ledger")
        yield SignedLedger(
            KafkaLedger(kafka_bootstrap, prefix, messages, records, topics),
            first_key,
            second_key,
            trusted,
        )
    finally:
        delete_topics(kafka_bootstrap, topics)


def _signed(records: list[Raw]) -> list[tuple[int, int, int, str]]:
    """(offset, notification id, signed_from, key id) of each signed transaction's last record."""
    found = []
    for offset, _, _, headers in records:
        named = dict(headers)
        if HEADER_KEY_ID in named:
            found.append(
                (
                    offset,
                    int(named["evledger.notification_id"]),
                    int(named[HEADER_SIGNED_FROM]),
                    named[HEADER_KEY_ID].decode(),
                )
            )
    return found


def test_every_transaction_is_signed_and_the_key_rotated_midway(signed: SignedLedger) -> None:
    signatures = _signed(signed.ledger.records)
    # Group commit: fewer signatures than records, and their ranges tile the ledger.
    assert 1 < len(signatures) < len(signed.ledger.records)
    assert signatures[0][2] == 1
    assert signatures[-1][1] == len(signed.ledger.records)
    for earlier, later in itertools.pairwise(signatures):
        assert later[2] == earlier[1] + 1
    key_ids = [key_id for *_, key_id in signatures]
    switch = key_ids.index(signed.second_key.key_id)
    assert set(key_ids[:switch]) == {signed.first_key.key_id}
    assert set(key_ids[switch:]) == {signed.second_key.key_id}


def test_verify_with_both_public_keys_passes(signed: SignedLedger) -> None:
    result = signed.verify("--public-key", str(signed.trusted))
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    assert checks["authenticity"].startswith(
        "verified: every record in a transaction signed by a trusted key"
    )
    assert signed.first_key.key_id in checks["authenticity"]


def test_verify_without_a_key_says_authenticity_was_not_checked(signed: SignedLedger) -> None:
    result = signed.verify()
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    count = len(_signed(signed.ledger.records))
    assert checks["authenticity"].startswith(
        f"NOT checked: no --public-key given ({count} signed transactions"
    )


def test_verify_with_only_the_old_key_names_the_first_record_of_the_new_one(
    signed: SignedLedger,
) -> None:
    result = signed.verify("--public-key", str(signed.first_key.public_path))
    assert result.exit_code == 1, result.output
    first_new = next(s for s in _signed(signed.ledger.records) if s[3] == signed.second_key.key_id)
    offset = signed.ledger.records[first_new[2] - 1][0]
    assert f"audit failed at offset {offset}, notification id {first_new[2]} " in result.stderr
    assert f"signed by key {signed.second_key.key_id}, which is none of the trusted" in (
        result.stderr
    )


def _forged_price(records: list[Raw]) -> tuple[Raw, int]:
    """A second ChargingSession.Priced for an existing session, total 1, balanced postings,
    chained onto the tail with the project's own chain_hash; and its notification id."""
    priced = [
        r for r in records if dict(r[3])["evledger.topic"].endswith(b"ChargingSession.Priced")
    ]
    _, key, value, headers = priced[-1]
    assert key is not None and value is not None
    found = dict(headers)
    state = json.loads(value)
    state.update(
        subtotal_minor=1,
        vat_minor=0,
        total_minor=1,
        postings=[
            {
                "account": "customer_receivable",
                "direction": "debit",
                "amount_minor": 1,
                "currency": state["currency"],
            },
            {
                "account": "charging_revenue",
                "direction": "credit",
                "amount_minor": 1,
                "currency": state["currency"],
            },
        ],
    )
    versions = [int(dict(h)["evledger.originator_version"]) for _, k, _, h in records if k == key]
    last = dict(records[-1][3])
    notification_id = int(last["evledger.notification_id"]) + 1
    from eventsourcing.persistence import StoredEvent

    forged = LedgerRecord.chained(
        bytes.fromhex(last["evledger.hash"].decode()),
        notification_id,
        StoredEvent(
            originator_id=key.decode(),
            originator_version=max(versions) + 1,
            topic=found["evledger.topic"].decode(),
            state=json.dumps(state).encode(),
        ),
    )
    return (0, forged.key(), forged.state, forged.headers()), notification_id


def _forged_start(records: list[Raw]) -> tuple[Raw, int]:
    """A plausible record no business rule can fault: a new session's Started event,
    chained onto the tail; and its notification id. Only its missing signature shows."""
    from eventsourcing.persistence import StoredEvent

    started = next(r for r in records if dict(r[3])["evledger.topic"].endswith(b".Started"))
    state = json.loads(started[2] or b"")
    state["session_id"] = "S-FORGED"
    last = dict(records[-1][3])
    notification_id = int(last["evledger.notification_id"]) + 1
    forged = LedgerRecord.chained(
        bytes.fromhex(last["evledger.hash"].decode()),
        notification_id,
        StoredEvent(
            originator_id=str(uuid.uuid4()),
            originator_version=1,
            topic=dict(started[3])["evledger.topic"].decode(),
            state=json.dumps(state).encode(),
        ),
    )
    return (0, forged.key(), forged.state, forged.headers()), notification_id


def test_a_plausible_record_appended_by_a_plain_producer_fails_only_with_the_public_key(
    signed: SignedLedger,
) -> None:
    forged, notification_id = _forged_start(signed.ledger.records)
    prefix = copy_to(signed.ledger, [*signed.ledger.records, forged])
    offset = len(signed.ledger.records)
    # Nothing else can tell: the chain, ids, versions and business facts all hold.
    assert signed.verify(prefix=prefix).exit_code == 0
    result = signed.verify("--public-key", str(signed.trusted), prefix=prefix)
    assert result.exit_code == 1, result.output
    assert f"audit failed at offset {offset}, notification id {notification_id} (" in (
        result.stderr
    )
    assert "authenticity: the record is not signed" in result.stderr


def test_a_record_appended_by_a_plain_producer_fails_verify_with_the_public_key(
    signed: SignedLedger,
) -> None:
    forged, notification_id = _forged_price(signed.ledger.records)
    # copy_to writes with a plain, non-transactional producer: the writer's records keep
    # their signatures; the forged one, last, has none.
    prefix = copy_to(signed.ledger, [*signed.ledger.records, forged])
    offset = len(signed.ledger.records)
    result = signed.verify("--public-key", str(signed.trusted), prefix=prefix)
    assert result.exit_code == 1, result.output
    assert f"audit failed at offset {offset}, notification id {notification_id}" in result.stderr
    # The forgery is also a second price of one session: the business facts name
    # it at once, with or without a key.
    assert "sessions: " in result.stderr and "priced a second time" in result.stderr
    result = signed.verify(prefix=prefix)
    assert result.exit_code == 1, result.output
    assert f"offset {offset}, notification id {notification_id}" in result.stderr


def test_a_record_signed_with_someone_elses_key_fails(signed: SignedLedger, tmp_path: Path) -> None:
    from store.signing import LedgerSigner

    forged, notification_id = _forged_start(signed.ledger.records)
    attacker = LedgerSigner.from_file(generate_key(tmp_path / "attacker").private_path)
    record_hash = bytes.fromhex(dict(forged[3])["evledger.hash"].decode())
    headers = [*forged[3], *attacker.transaction_headers(notification_id, record_hash)]
    prefix = copy_to(signed.ledger, [*signed.ledger.records, (0, forged[1], forged[2], headers)])
    result = signed.verify("--public-key", str(signed.trusted), prefix=prefix)
    assert result.exit_code == 1, result.output
    assert f"notification id {notification_id}" in result.stderr
    assert f"signed by key {attacker.key_id}, which is none of the trusted keys" in result.stderr


def test_a_signature_copied_onto_another_transaction_fails(signed: SignedLedger) -> None:
    records = signed.ledger.records
    (_, first_id, _, _), (_, second_id, _, _) = _signed(records)[:2]
    source, target = records[first_id - 1], records[second_id - 1]
    copied = dict(source[3])
    headers = [
        (name, copied[name] if name in (HEADER_KEY_ID, HEADER_SIGNATURE) else value)
        for name, value in target[3]
    ]
    tampered = [*records]
    tampered[second_id - 1] = (target[0], target[1], target[2], headers)
    prefix = copy_to(signed.ledger, tampered)
    result = signed.verify("--public-key", str(signed.trusted), prefix=prefix)
    assert result.exit_code == 1, result.output
    assert f"notification id {first_id + 1} (" in result.stderr
    assert "does not match its content" in result.stderr


def test_a_signed_export_keeps_the_signatures_and_signs_its_manifest(
    signed: SignedLedger, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    env = {
        **signed.ledger.env(),
        "EVLEDGER_SIGNING_KEY_FILE": str(signed.second_key.private_path),
    }
    result = runner.invoke(app, ["export", "--format", "jsonl", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert f"signed by key {signed.second_key.key_id}" in result.stdout
    rows = [json.loads(line) for line in (out / "ledger.jsonl").read_text().splitlines()]
    assert {row["key_id"] for row in rows} == {
        None,
        signed.first_key.key_id,
        signed.second_key.key_id,
    }
    offline = {"EVLEDGER_KAFKA_BOOTSTRAP": None}
    result = runner.invoke(
        app,
        [
            "verify",
            "--export",
            str(out),
            "--public-key",
            str(signed.trusted),
            "--anchor",
            str(out / "manifest.json"),
        ],
        env=offline,
    )
    assert result.exit_code == 0, result.output
    # The Kafka ledger itself still holds the export's last record.
    result = signed.verify("--anchor", str(out), "--public-key", str(signed.trusted))
    assert result.exit_code == 0, result.output
