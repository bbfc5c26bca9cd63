"""Support's refund requests: a `refund.requested` upstream message on the ingest topic,
validated by the same contract as any upstream, published once per Idempotency-Key.

The key is remembered durably with a fingerprint of the request and the exact message
bytes before anything is sent. One request at a time publishes for a key: it claims the key
with a lease (a row of its own table, written in one short statement; no database lock is
held while Kafka is asked), and a repeat arriving meanwhile is told to retry (409). The
lease ends when the publish fails, or by itself after _CLAIM_LEASE_S if the server died, so
a key is never stuck. A repeated request with the same key and body re-sends those same
bytes if the first attempt may not have completed (ingest takes a repeated event_id with
equal content as a duplicate), so the ledger sees one refund request; the same key with a
different body is refused.

On a sharded ledger the message goes to the shard of the payment's charging session (the
routing rule of consumers/routing.py), looked up in the payment history: a payment not
there (yet) is refused with 422 before anything is sent, and the same request may be
repeated once it is.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from api.problems import Problem
from consumers.contract import ContractViolation, Identifier, Text, parse_message
from consumers.producer import routing_key
from consumers.routing import shard_of
from domain.vocabulary import MessageType, RefundReason
from projections.databases.port import Database

if TYPE_CHECKING:
    from bootstrap.ledgers import KafkaSite

IDEMPOTENCY_TABLE = "api_idempotency"
_DDL = (
    f"CREATE TABLE IF NOT EXISTS {IDEMPOTENCY_TABLE} ("
    " idempotency_key {text} PRIMARY KEY,"
    " fingerprint {text} NOT NULL,"
    " refund_id {text} NOT NULL,"
    " message {text} NOT NULL,"
    " created_at {ts} NOT NULL,"
    " published_at {ts}"
    ")"
)
# A key being published: until when (epoch milliseconds) one request holds it. A table of
# its own, so that a views database made before claims existed needs no upgrade.
CLAIMS_TABLE = "api_idempotency_claims"
_CLAIMS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CLAIMS_TABLE} ("
    " idempotency_key {text} PRIMARY KEY,"
    " claimed_until {bigint} NOT NULL"
    ")"
)
# Printable, no spaces at the ends: it becomes the message's event_id.
IDEMPOTENCY_KEY_PATTERN = r"^[A-Za-z0-9._:\-]{8,200}$"
_PUBLISH_TIMEOUT_S = 15.0
_MAX_BLOCK_MS = 10_000
# Longer than a publish can take (blocked for metadata, then waiting for the acks), so a
# live claim never lapses while its request still publishes.
_CLAIM_LEASE_S = 2 * (_PUBLISH_TIMEOUT_S + _MAX_BLOCK_MS / 1000)
IN_PROGRESS = "a request with this Idempotency-Key is in progress; retry"


class RefundRequestBody(BaseModel):
    """A support agent's refund request; refund_id is derived from the key when omitted.
    Its ids and note are the upstream contract's (any payment id upstream sends)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    payment_id: Identifier
    amount_minor: Annotated[int, Field(strict=True, ge=1, le=10**12)]
    # Lax for this one field: a JSON string becomes the enum (strict would want an instance).
    reason: Annotated[RefundReason, Field(strict=False)]
    note: Text | None = None
    refund_id: Identifier | None = None


class RefundAccepted(BaseModel):
    """The request is on its way to the ledger; follow `url` for its status."""

    refund_id: str
    event_id: str
    status: Literal["accepted"] = "accepted"
    url: str


@dataclass(frozen=True)
class Claim:
    refund_id: str
    message: bytes
    published: bool


def create_table(db: Database) -> None:
    db.execute(_DDL)
    db.execute(_CLAIMS_DDL)


def fingerprint(body: RefundRequestBody) -> str:
    canonical = json.dumps(body.model_dump(exclude_none=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def default_refund_id(idempotency_key: str) -> str:
    return "R-API-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:20]


def build_message(body: RefundRequestBody, idempotency_key: str, now: datetime) -> bytes:
    """The upstream message, checked by the contract exactly as ingest will check it."""
    document: dict[str, Any] = {
        "schema_version": 1,
        "type": MessageType.REFUND_REQUESTED.value,
        "event_id": idempotency_key,
        "occurred_at": now.astimezone(UTC).isoformat(),
        "refund_id": body.refund_id or default_refund_id(idempotency_key),
        "payment_id": body.payment_id,
        "amount_minor": body.amount_minor,
        "reason": body.reason,
    }
    if body.note is not None:
        document["note"] = body.note
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        parse_message(raw)
    except ContractViolation as violation:
        raise Problem(
            422,
            f"the refund request breaks the upstream contract: {violation}",
            errors=[{"field": violation.field, "reason": violation.reason}],
        ) from None
    return raw


def remember(db: Database, idempotency_key: str, body: RefundRequestBody) -> None:
    """Stores this key's request and exact message unless the key is known: a statement of
    its own, so it is kept whatever happens next (a repeat re-sends those same bytes)."""
    message = build_message(body, idempotency_key, datetime.now(UTC))
    db.execute(
        f"INSERT INTO {IDEMPOTENCY_TABLE}"
        " (idempotency_key, fingerprint, refund_id, message, created_at)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (idempotency_key) DO NOTHING",
        [
            idempotency_key,
            fingerprint(body),
            json.loads(message)["refund_id"],
            message.decode(),
            db.param(datetime.now(UTC)),
        ],
    )


def stored(db: Database, idempotency_key: str, body: RefundRequestBody) -> Claim:
    """This key's stored request (same body only: another body is a 422) and whether it
    was published."""
    row = db.execute(
        f"SELECT fingerprint, refund_id, message, published_at FROM {IDEMPOTENCY_TABLE}"
        " WHERE idempotency_key = ?",
        [idempotency_key],
    )[0]
    if row["fingerprint"] != fingerprint(body):
        raise Problem(
            422,
            "this Idempotency-Key was already used for a different refund request; "
            "use a new key for a new request",
        )
    return Claim(row["refund_id"], row["message"].encode(), row["published_at"] is not None)


def _now_ms() -> int:
    return int(time.time() * 1000)


def claim(db: Database, idempotency_key: str) -> None:
    """Claim the key for this request's publish, in one statement: the key is free, or its
    claim's lease has ended. Problem 409 (retry) while another request holds it."""
    now = _now_ms()
    won = db.execute(
        f"INSERT INTO {CLAIMS_TABLE} (idempotency_key, claimed_until) VALUES (?, ?)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET claimed_until = excluded.claimed_until"
        f" WHERE {CLAIMS_TABLE}.claimed_until < ? RETURNING idempotency_key",
        [idempotency_key, now + int(_CLAIM_LEASE_S * 1000), now],
    )
    if not won:
        raise Problem(409, IN_PROGRESS, headers={"Retry-After": "1"})


def release(db: Database, idempotency_key: str) -> None:
    """End this request's claim on the key (published, or failed: a repeat may try)."""
    db.execute(f"DELETE FROM {CLAIMS_TABLE} WHERE idempotency_key = ?", [idempotency_key])


@dataclass(frozen=True)
class Destination:
    """Where a refund request is sent on the ingest topic: its record key and partition
    (None: the producer's default partitioner, on an unsharded ledger)."""

    key: bytes | None
    partition: int | None


def destination(db: Database, message: bytes, payment_id: str, shards: int) -> Destination:
    """The key and partition of a refund request: by payment id on an unsharded ledger, by
    the payment's session on a sharded one (Problem 422 when the payment history has no
    session for it)."""
    if shards <= 1:
        return Destination(routing_key(message), None)
    rows = db.execute(
        "SELECT session_id FROM payment_history WHERE payment_id = ? AND session_id IS NOT NULL",
        [payment_id],
    )
    if not rows:
        raise Problem(
            422,
            f"payment {payment_id!r} is not in the payment history (yet): on a ledger of "
            f"{shards} shards a refund request goes to the shard of its payment's session, so "
            "the payment must be known first; repeat the request with the same "
            "Idempotency-Key once it is",
            errors=[{"field": "payment_id", "reason": "unknown payment"}],
        )
    key = str(rows[0]["session_id"]).encode()
    return Destination(key, shard_of(key, shards))


def mark_published(db: Database, idempotency_key: str) -> None:
    db.execute(
        f"UPDATE {IDEMPOTENCY_TABLE} SET published_at = ?"
        " WHERE idempotency_key = ? AND published_at IS NULL",
        [db.param(datetime.now(UTC)), idempotency_key],
    )


class RefundPublisher:
    """One idempotent Kafka producer to the ingest topic, made on first use."""

    def __init__(self, site: KafkaSite) -> None:
        self._connection = site.connection
        self.topic = site.ingest_topic
        self.shards = site.ledger_shards
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                self._producer = self._connection.producer(
                    acks="all",
                    enable_idempotence=True,
                    max_block_ms=_MAX_BLOCK_MS,
                    client_id="evledger-api",
                )
            return self._producer

    def publish(self, message: bytes, to: Destination) -> None:
        from kafka.errors import KafkaError

        try:
            future = self._get().send(self.topic, key=to.key, value=message, partition=to.partition)
            future.get(timeout=_PUBLISH_TIMEOUT_S)
        except KafkaError as error:
            raise Problem(
                503,
                f"could not publish to the ingest topic ({type(error).__name__}); nothing was "
                "lost: repeat the request with the same Idempotency-Key",
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
