"""Ed25519 signatures on ledger transactions and export manifests: sign, verify, make keys.

The writer signs each Kafka transaction it commits: the last record of the transaction
carries, in three headers, the key id, the notification id the transaction starts at
(``signed_from``) and a signature over that id and the record's chain hash. The hash
covers the record's content and, through prev_hash, every record before it, so the
signature vouches for exactly the records ``signed_from`` .. this one. A record someone
else appends (chained with the project's own chain_hash) lies in no signed range, even
after the writer restarts and chains its next transaction onto it. One signature per
transaction, not per record: signing costs the writer almost nothing under group commit.
A key id is the first 16 hex digits of the SHA-256 of the raw public key, so old records
keep verifying after a rotation as long as the auditor keeps the old public key.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

HEADER_KEY_ID = "evledger.key_id"
HEADER_SIGNATURE = "evledger.signature"
HEADER_SIGNED_FROM = "evledger.signed_from"

# Domain separation: a transaction signature can never be replayed as a manifest signature.
TRANSACTION_CONTEXT = b"evledger.transaction.v1\x00"
MANIFEST_CONTEXT = b"evledger.manifest.v1\x00"

PRIVATE_KEY_FILE = "ledger-signing.pem"
PUBLIC_KEY_SUFFIX = ".pub.pem"


class SigningKeyError(ValueError):
    """A key file is missing, unreadable or not an Ed25519 key; the message names it."""


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class LedgerSigner:
    """Signs with one private key; names it by its key id."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        self.key_id = key_id_of(private_key.public_key())
        self._key_id_bytes = self.key_id.encode()

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickled only to the ledger's own writer process (store/writer_process.py), over
        # the pipe from its parent.
        raw = self._private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return _signer_from_raw, (raw,)

    @classmethod
    def from_file(cls, path: Path) -> LedgerSigner:
        try:
            data = path.read_bytes()
        except OSError as error:
            raise SigningKeyError(f"cannot read signing key {path}: {error}") from None
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as error:
            raise SigningKeyError(
                f"{path} is not an unencrypted PEM private key ({error})"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(
                f"{path} holds a {type(key).__name__}; evledger signs with Ed25519"
            )
        return cls(key)

    def sign_transaction(self, signed_from: int, last_hash: bytes) -> bytes:
        return self._private_key.sign(transaction_message(signed_from, last_hash))

    def transaction_headers(self, signed_from: int, last_hash: bytes) -> list[tuple[str, bytes]]:
        """The headers of a transaction's last record that vouch for ids signed_from..it."""
        return [
            (HEADER_KEY_ID, self._key_id_bytes),
            (HEADER_SIGNED_FROM, str(signed_from).encode()),
            (HEADER_SIGNATURE, self.sign_transaction(signed_from, last_hash).hex().encode()),
        ]

    def sign_manifest(self, canonical: bytes) -> str:
        return self._private_key.sign(MANIFEST_CONTEXT + canonical).hex()


def _signer_from_raw(raw: bytes) -> LedgerSigner:
    return LedgerSigner(Ed25519PrivateKey.from_private_bytes(raw))


@dataclass(frozen=True)
class Keyring:
    """The public keys an auditor trusts, by key id (old keys stay for old records)."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def load(cls, paths: list[Path]) -> Keyring:
        """Public keys from PEM files, or from every *.pem in a directory."""
        keys: dict[str, Ed25519PublicKey] = {}
        for path in paths:
            files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
            if path.is_dir() and not files:
                raise SigningKeyError(f"{path} holds no *.pem public key")
            for file in files:
                public_key = _public_key(file)
                if public_key is not None:
                    keys[key_id_of(public_key)] = public_key
        if not keys:
            raise SigningKeyError(f"no Ed25519 public key in {', '.join(map(str, paths))}")
        return cls(keys)

    def transaction_problem(
        self, signed_from: int, last_hash: bytes, key_id: str | None, signature: bytes | None
    ) -> str | None:
        """Why the signature is not a trusted key's over these records, or None when it is."""
        return self._problem(
            transaction_message(signed_from, last_hash), key_id, signature, "transaction"
        )

    def manifest_problem(
        self, canonical: bytes, key_id: str | None, signature_hex: str | None
    ) -> str | None:
        try:
            signature = bytes.fromhex(signature_hex) if signature_hex else None
        except ValueError:
            return "the manifest's signature is not hex"
        return self._problem(MANIFEST_CONTEXT + canonical, key_id, signature, "manifest")

    def _problem(
        self, message: bytes, key_id: str | None, signature: bytes | None, what: str
    ) -> str | None:
        if key_id is None or signature is None:
            return f"the {what} is not signed (no key id or signature)"
        public_key = self.keys.get(key_id)
        if public_key is None:
            return (
                f"the {what} is signed by key {key_id}, which is none of the trusted keys "
                f"({', '.join(sorted(self.keys))})"
            )
        try:
            public_key.verify(signature, message)
        except InvalidSignature:
            return f"the {what}'s signature by key {key_id} does not match its content"
        return None


def transaction_message(signed_from: int, last_hash: bytes) -> bytes:
    """What a transaction signature signs: its first notification id and its last hash."""
    return TRANSACTION_CONTEXT + struct.pack(">Q", signed_from) + last_hash


def _public_key(path: Path) -> Ed25519PublicKey | None:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SigningKeyError(f"cannot read public key {path}: {error}") from None
    if b"PRIVATE KEY" in data:
        # A directory may hold the private key beside the public ones: skip it, never use it.
        return None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise SigningKeyError(f"{path} is not a PEM public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    return key


@dataclass(frozen=True)
class GeneratedKey:
    key_id: str
    private_path: Path
    public_path: Path


def generate_key(out_dir: Path) -> GeneratedKey:
    """A new key pair in out_dir: the private key (mode 0600) and <key id>.pub.pem."""
    out_dir.mkdir(parents=True, exist_ok=True)
    private_path = out_dir / PRIVATE_KEY_FILE
    if private_path.exists():
        raise SigningKeyError(
            f"{private_path} exists; generate a rotated key into another directory"
        )
    private_key = Ed25519PrivateKey.generate()
    key_id = key_id_of(private_key.public_key())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private_path.touch(mode=0o600)
    private_path.write_bytes(pem)
    public_path = out_dir / f"{key_id}{PUBLIC_KEY_SUFFIX}"
    public_path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return GeneratedKey(key_id, private_path, public_path)
