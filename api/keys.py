"""API keys: random bearer keys, shown once and stored only as SHA-256 hashes, each with a
role; kept in the read-model database beside the views the API serves."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from projections.databases.port import Database


class Role(StrEnum):
    """What a key may read: support and auditors the payments and refunds (auditors also
    the audit trail, support also refund requests); analysts the analytics."""

    support = "support"
    auditor = "auditor"
    analyst = "analyst"


KEYS_TABLE = "api_keys"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} ("
    " key_id {text} PRIMARY KEY,"
    " name {text} NOT NULL,"
    " role {text} NOT NULL,"
    " key_hash {text} NOT NULL,"
    " created_at {ts} NOT NULL,"
    " revoked_at {ts}"
    ")"
)
_PREFIX = "evk"
# evk_<12 hex: the key's id>_<43 url-safe characters: 256 random bits>
_KEY_PATTERN = re.compile(r"^evk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class UnknownKey(LookupError):
    """No key with this id."""


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    role: Role
    created_at: datetime
    revoked_at: datetime | None

    def row(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_table(db: Database) -> None:
    db.execute(_DDL)


def create_key(db: Database, role: Role, name: str) -> tuple[str, ApiKey]:
    """A new key: the secret (to show once) and what is stored about it."""
    create_table(db)
    key_id = secrets.token_hex(6)
    secret = f"{_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(UTC)
    db.execute(
        f"INSERT INTO {KEYS_TABLE} (key_id, name, role, key_hash, created_at)"
        " VALUES (?, ?, ?, ?, ?)",
        [key_id, name, role.value, _hash(secret), db.param(created)],
    )
    return secret, ApiKey(key_id, name, role, created, None)


def list_keys(db: Database) -> list[ApiKey]:
    create_table(db)
    rows = db.execute(
        f"SELECT key_id, name, role, created_at, revoked_at FROM {KEYS_TABLE}"
        " ORDER BY created_at, key_id"
    )
    return [
        ApiKey(r["key_id"], r["name"], Role(r["role"]), r["created_at"], r["revoked_at"])
        for r in rows
    ]


def revoke_key(db: Database, key_id: str) -> ApiKey:
    """Revoke a key by its id (or name, when one key has it); revoking twice is harmless."""
    keys = list_keys(db)
    matches = [k for k in keys if k.key_id == key_id] or [k for k in keys if k.name == key_id]
    if len(matches) != 1:
        reason = "no key" if not matches else f"{len(matches)} keys"
        raise UnknownKey(f"{reason} with id or name {key_id!r} (see `evledger apikey list`)")
    found = matches[0]
    if found.revoked_at is None:
        db.execute(
            f"UPDATE {KEYS_TABLE} SET revoked_at = ? WHERE key_id = ?",
            [db.param(datetime.now(UTC)), found.key_id],
        )
    return list_keys_by_id(db, found.key_id)


def list_keys_by_id(db: Database, key_id: str) -> ApiKey:
    return next(key for key in list_keys(db) if key.key_id == key_id)


def verify_key(db: Database, presented: str) -> ApiKey | None:
    """The live key a bearer token is, or None (malformed, unknown, revoked)."""
    match = _KEY_PATTERN.match(presented)
    if match is None:
        return None
    rows = db.execute(
        f"SELECT key_id, name, role, key_hash, created_at, revoked_at FROM {KEYS_TABLE}"
        " WHERE key_id = ?",
        [match.group(1)],
    )
    if not rows:
        return None
    row = rows[0]
    # Constant time, so the comparison does not tell how much of a guess was right.
    if not hmac.compare_digest(row["key_hash"], _hash(presented)) or row["revoked_at"]:
        return None
    return ApiKey(row["key_id"], row["name"], Role(row["role"]), row["created_at"], None)
