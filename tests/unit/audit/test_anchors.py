"""Anchors and signed manifests on exports of a generated embedded ledger: a truncated or
rewritten export, its chain and manifest recomputed, passes the chain checks and fails
against the anchor; a manifest edited after signing fails its signature."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bootstrap.settings import Settings
from cli.audit import app
from store.records import GENESIS_HASH, chain_hash
from store.signing import GeneratedKey, generate_key

runner = CliRunner()
OFFLINE = {"EVLEDGER_KAFKA_BOOTSTRAP": None}


@pytest.fixture
def key(tmp_path: Path) -> GeneratedKey:
    return generate_key(tmp_path / "key")


@pytest.fixture
def signed_export(embedded: Settings, key: GeneratedKey, tmp_path: Path) -> Path:
    out = tmp_path / "export"
    env = {
        "EVLEDGER_DATA_DIR": str(embedded.data_dir),
        "EVLEDGER_SIGNING_KEY_FILE": str(key.private_path),
        **OFFLINE,
    }
    result = runner.invoke(app, ["export", "--format", "jsonl", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert f"signed by key {key.key_id}" in result.stdout
    return out


def rows_of(export: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (export / "ledger.jsonl").read_text().splitlines()]


def rechain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a forger does: recompute every link with the project's own chain_hash."""
    prev = GENESIS_HASH
    for row in rows:
        digest = chain_hash(
            prev,
            row["notification_id"],
            row["originator_id"],
            row["originator_version"],
            row["topic"],
            base64.b64decode(row["state_base64"]),
        )
        row["prev_hash"], row["hash"] = prev.hex(), digest.hex()
        prev = digest
    return rows


def forge(source: Path, target: Path, rows: list[dict[str, Any]]) -> Path:
    """A copy of the export with these rows and a manifest recomputed to match (unsigned:
    the forger has no key)."""
    target.mkdir()
    data = "".join(json.dumps(row, separators=(",", ":")) + "\n" for row in rows)
    (target / "ledger.jsonl").write_text(data)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest.update(
        count=len(rows),
        last_notification_id=rows[-1]["notification_id"],
        last_hash=rows[-1]["hash"],
        first_hash=rows[0]["hash"],
        file_sha256=hashlib.sha256(data.encode()).hexdigest(),
        manifest_key_id=None,
        manifest_signature=None,
    )
    (target / "manifest.json").write_text(json.dumps(manifest))
    return target


def verify(*args: str) -> Any:
    return runner.invoke(app, ["verify", "--format", "json", *args], env=OFFLINE)


def test_a_truncated_export_with_its_manifest_recomputed_fails_against_the_anchor(
    signed_export: Path, tmp_path: Path
) -> None:
    rows = rows_of(signed_export)
    cut = 1800 if len(rows) > 1900 else len(rows) // 2
    truncated = forge(signed_export, tmp_path / "truncated", rows[:cut])
    # Without an anchor the truncation is invisible: the chain and manifest agree.
    assert verify("--export", str(truncated)).exit_code == 0
    result = verify("--export", str(truncated), "--anchor", str(signed_export / "manifest.json"))
    assert result.exit_code == 1, result.output
    last_id = rows[-1]["notification_id"]
    assert "anchor: the ledger ends at notification id" in result.stderr
    assert f"notification id {last_id} with hash {rows[-1]['hash'][:16]}" in result.stderr
    assert "truncated" in result.stderr


def test_expect_last_hash_at_an_id(signed_export: Path, tmp_path: Path) -> None:
    rows = rows_of(signed_export)
    truncated = forge(signed_export, tmp_path / "truncated", rows[:300])
    kept, lost = rows[250], rows[400]
    ok = verify(
        "--export",
        str(truncated),
        "--expect-last-hash",
        kept["hash"],
        "--at-id",
        str(kept["notification_id"]),
    )
    assert ok.exit_code == 0, ok.output
    checks = {row["check"]: row["result"] for row in json.loads(ok.stdout)}
    assert checks["anchors"] == "1 met"
    gone = verify(
        "--export",
        str(truncated),
        "--expect-last-hash",
        lost["hash"],
        "--at-id",
        str(lost["notification_id"]),
    )
    assert gone.exit_code == 1
    assert "ends at notification id 300" in gone.stderr


def test_a_rewritten_export_fails_at_the_anchored_record(
    signed_export: Path, tmp_path: Path
) -> None:
    rows = rows_of(signed_export)
    # Rewrite history from row 100 on (here only the bytes of one record's JSON change, so
    # every other check still passes), and re-chain everything after it.
    victim = 100
    text = json.dumps(json.loads(rows[victim]["state_json"]), separators=(", ", ": "))
    rows[victim]["state_json"] = text
    rows[victim]["state_base64"] = base64.b64encode(text.encode()).decode()
    rewritten = forge(signed_export, tmp_path / "rewritten", rechain(rows))
    assert verify("--export", str(rewritten)).exit_code == 0
    anchored = rows_of(signed_export)[-1]
    result = verify(
        "--export",
        str(rewritten),
        "--expect-last-hash",
        anchored["hash"],
        "--at-id",
        str(anchored["notification_id"]),
    )
    assert result.exit_code == 1
    assert f"audit failed at notification id {anchored['notification_id']} (" in result.stderr
    assert "anchor: the anchor expects notification id" in result.stderr
    assert "rewritten" in result.stderr
    # Without --at-id the hash must simply be somewhere: it is nowhere now.
    anywhere = verify("--export", str(rewritten), "--expect-last-hash", anchored["hash"])
    assert anywhere.exit_code == 1
    assert "does not contain hash" in anywhere.stderr


def test_a_manifest_edited_after_signing_fails_its_signature(
    signed_export: Path, key: GeneratedKey, tmp_path: Path
) -> None:
    public = str(key.public_path)
    # Records of the embedded ledger carry no writer signatures: only the manifest is signed.
    copy = tmp_path / "copy"
    shutil.copytree(signed_export, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["source"] = "somewhere else"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    result = runner.invoke(
        app, ["verify", "--anchor", str(copy), "--public-key", public], env=OFFLINE
    )
    assert result.exit_code == 2
    assert "cannot be trusted: the manifest's signature by key" in result.stderr
    unsigned = forge(signed_export, tmp_path / "unsigned", rows_of(signed_export))
    result = runner.invoke(
        app, ["verify", "--anchor", str(unsigned), "--public-key", public], env=OFFLINE
    )
    assert result.exit_code == 2
    assert "the manifest is not signed" in result.stderr


def test_the_embedded_ledger_is_not_signed_and_verify_with_a_key_says_so(
    embedded: Settings, signed_export: Path, key: GeneratedKey
) -> None:
    env = {"EVLEDGER_DATA_DIR": str(embedded.data_dir), **OFFLINE}
    result = runner.invoke(app, ["verify", "--public-key", str(key.public_path)], env=env)
    assert result.exit_code == 1
    assert "audit failed at notification id 1" in result.stderr
    assert "the embedded SQLite ledger is not signed" in result.stderr
    result = runner.invoke(
        app,
        ["verify", "--export", str(signed_export), "--public-key", str(key.public_path)],
        env=OFFLINE,
    )
    assert result.exit_code == 1
    assert "the record is not signed" in result.stderr


def test_an_export_from_before_signatures_still_verifies(
    embedded: Settings, tmp_path: Path
) -> None:
    import duckdb

    out = tmp_path / "export"
    env = {"EVLEDGER_DATA_DIR": str(embedded.data_dir), **OFFLINE}
    result = runner.invoke(app, ["export", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    # Rewrite the Parquet file as format 1 wrote it: without the signature columns.
    parquet = out / "ledger.parquet"
    old = tmp_path / "old.parquet"
    connection = duckdb.connect()
    connection.execute(
        f"COPY (SELECT * EXCLUDE (key_id, signed_from, signature) FROM '{parquet}') "
        f"TO '{old}' (FORMAT parquet)"
    )
    connection.close()
    shutil.move(old, parquet)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["file_sha256"] = hashlib.sha256(parquet.read_bytes()).hexdigest()
    del manifest["manifest_key_id"], manifest["manifest_signature"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    result = verify("--export", str(out))
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    assert checks["authenticity"].startswith("NOT checked: no --public-key given (0 signed")


def test_a_ledger_signed_only_since_some_day_verifies_whole_with_an_anchor_before_it(
    tmp_path: Path,
) -> None:
    from dataclasses import replace

    from audit.anchors import Anchor
    from audit.verify import Check, verify_records
    from store.signing import Keyring, LedgerSigner
    from tests.unit.audit.ledger_builder import records

    key = generate_key(tmp_path / "k")
    signer = LedgerSigner.from_file(key.private_path)
    found = records()  # six records; signing was turned on before the fourth
    last = found[-1]
    assert last.hash is not None
    found[-1] = replace(
        last,
        key_id=signer.key_id,
        signed_from=4,
        signature=signer.sign_transaction(4, last.hash),
    )
    keyring = Keyring.load([key.public_path])
    report = verify_records(found, "test", keyring=keyring)
    assert report.first is not None
    assert (report.first.check, report.first.notification_id) == (Check.AUTHENTICITY, 1)
    assert "no signature of a trusted key vouches for this record" in report.first.reason
    assert found[2].hash is not None
    anchored = verify_records(found, "test", keyring=keyring, anchors=[Anchor(found[2].hash, 3)])
    assert anchored.ok, [str(f) for f in anchored.findings]
    # The anchor vouches only up to itself: an unsigned tail still fails.
    tail = verify_records(found[:5], "test", keyring=keyring, anchors=[Anchor(found[2].hash, 3)])
    assert tail.first is not None
    assert (tail.first.check, tail.first.notification_id) == (Check.AUTHENTICITY, 4)
