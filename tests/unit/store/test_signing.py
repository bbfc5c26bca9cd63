"""Transaction signatures and the keys behind them: what verifies, what does not, and the
clear errors for bad key files."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bootstrap.settings import Settings
from cli.audit import app
from store.signing import Keyring, LedgerSigner, SigningKeyError, generate_key

HASH = bytes(range(32))


def test_a_signature_vouches_for_its_range_and_hash_only(tmp_path: Path) -> None:
    key = generate_key(tmp_path / "k")
    signer = LedgerSigner.from_file(key.private_path)
    keyring = Keyring.load([key.public_path])
    signature = signer.sign_transaction(5, HASH)
    assert keyring.transaction_problem(5, HASH, signer.key_id, signature) is None
    assert "does not match" in str(keyring.transaction_problem(4, HASH, signer.key_id, signature))
    other = bytes(31) + b"\x01"
    assert "does not match" in str(keyring.transaction_problem(5, other, signer.key_id, signature))
    assert "not signed" in str(keyring.transaction_problem(5, HASH, None, None))


def test_a_key_directory_trusts_every_public_key_and_never_loads_the_private_one(
    tmp_path: Path,
) -> None:
    old, new = generate_key(tmp_path / "old"), generate_key(tmp_path / "new")
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    for key in (old, new):
        (trusted / key.public_path.name).write_bytes(key.public_path.read_bytes())
    # A private key dropped beside them is skipped, not trusted as a public key.
    (trusted / "stray.pem").write_bytes(old.private_path.read_bytes())
    assert set(Keyring.load([trusted]).keys) == {old.key_id, new.key_id}


def test_keygen_refuses_to_overwrite_a_key(tmp_path: Path) -> None:
    generate_key(tmp_path)
    with pytest.raises(SigningKeyError, match="exists"):
        generate_key(tmp_path)
    assert (tmp_path / "ledger-signing.pem").stat().st_mode & 0o077 == 0


def test_bad_key_files_are_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a key")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM private key"):
        LedgerSigner.from_file(bad)
    with pytest.raises(SigningKeyError, match="not a PEM public key"):
        Keyring.load([bad])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SigningKeyError, match=r"no \*\.pem public key"):
        Keyring.load([empty])
    with pytest.raises(ValueError, match="no key file at"):
        Settings(signing_key_file=tmp_path / "missing.pem")


def test_the_keygen_command_and_bad_verify_options(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["keygen", "--out", str(tmp_path / "keys")])
    assert result.exit_code == 0, result.output
    assert "EVLEDGER_SIGNING_KEY_FILE" in result.stdout
    offline = {"EVLEDGER_KAFKA_BOOTSTRAP": None, "EVLEDGER_DATA_DIR": str(tmp_path / "d")}
    result = runner.invoke(app, ["verify", "--at-id", "3"], env=offline)
    assert result.exit_code == 2
    assert "--at-id and --shard go with --expect-last-hash" in result.stderr
    result = runner.invoke(app, ["verify", "--expect-last-hash", "abc"], env=offline)
    assert result.exit_code == 2
    assert "64-digit hex" in result.stderr
