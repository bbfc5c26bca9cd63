"""The routing rule of a sharded ledger: which shard an upstream message belongs to.

A message routes by the charging session it belongs to: its Kafka record key is the
session id (UTF-8) and its partition of the ingest topic is Kafka's default partitioner's
choice for that key (murmur2, modulo the partition count), so any standard Kafka client
that keys by session id routes correctly. Payments and refunds carry no session id on every
message: their publisher keys them by the session of their authorisation, which
``SessionRouter`` remembers for `evledger publish`. Tariffs are reference data that every
shard needs: they go to every partition, and each shard records its own copy.

Ingest partition p feeds ledger shard p only; ``misrouted`` is ingest's check that a record
on partition p belongs there, so that a misrouted message becomes a dead letter naming this
rule instead of being applied to a shard that does not hold its session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consumers import strict_json
from domain.vocabulary import MessageType

ROUTING_RULE = (
    "a message's record key must be its charging session's id, and it must be on that "
    "key's partition (Kafka's default partitioner: murmur2 of the key, modulo the "
    "partition count); tariffs go to every partition"
)

# Reference data every shard needs: published to every partition of the ingest topic.
REFERENCE_TYPES = frozenset({MessageType.TARIFF_PUBLISHED.value})


def shard_of(key: bytes, shards: int) -> int:
    """The partition (and so the shard) of a record key: Kafka's default partitioner."""
    from kafka.partitioner.default import murmur2

    return int(murmur2(key) & 0x7FFFFFFF) % shards


@dataclass(frozen=True)
class Route:
    """Where one message goes: every partition, or the partition of ``key``."""

    key: bytes | None
    partition: int | None
    everywhere: bool = False


@dataclass
class SessionRouter:
    """The publisher's side of the rule, for one ordered stream of messages: it remembers
    which session each payment and refund belongs to, as upstream systems do."""

    shards: int
    _payment_sessions: dict[str, str] = field(default_factory=dict)
    _refund_sessions: dict[str, str] = field(default_factory=dict)

    def route(self, raw: bytes) -> Route:
        document = _document(raw)
        message_type = str(document.get("type", ""))
        if message_type in REFERENCE_TYPES:
            return Route(key=_text(document, "tariff_id"), partition=None, everywhere=True)
        session = self._session(message_type, document)
        if session is None:
            # Nothing to route by (unreadable, or a payment never authorised in this stream):
            # its own id keeps it somewhere definite, where ingest judges it.
            key = _fallback_key(document)
            return Route(key, None if key is None else shard_of(key, self.shards))
        key = session.encode()
        return Route(key, shard_of(key, self.shards))

    def _session(self, message_type: str, document: dict[str, Any]) -> str | None:
        session = _str(document, "session_id")
        payment = _str(document, "payment_id")
        refund = _str(document, "refund_id")
        if session is not None:
            if payment is not None:
                self._payment_sessions[payment] = session
            return session
        if message_type == MessageType.REFUND_REQUESTED and payment is not None:
            session = self._payment_sessions.get(payment)
            if session is not None and refund is not None:
                self._refund_sessions[refund] = session
            return session
        if refund is not None:
            return self._refund_sessions.get(refund)
        if payment is not None:
            return self._payment_sessions.get(payment)
        return None


def misrouted(
    message_type: str, session_id: str | None, key: bytes | None, partition: int, shards: int
) -> tuple[str, str] | None:
    """Why a record on ``partition`` does not belong to its shard (field, reason), or None.

    ``session_id`` is the message's own session id when it carries one.
    """
    if message_type in REFERENCE_TYPES:
        return None
    if key is None:
        return "", f"misrouted: the record has no key; {ROUTING_RULE}"
    if session_id is not None and key != session_id.encode():
        return (
            "session_id",
            f"misrouted: record key {key!r} is not the message's session id "
            f"{session_id!r}; {ROUTING_RULE}",
        )
    owner = shard_of(key, shards)
    if owner != partition:
        return (
            "",
            f"misrouted: key {key!r} belongs to shard {owner}, not to shard {partition} "
            f"(partition {partition}); {ROUTING_RULE}",
        )
    return None


def _document(raw: bytes) -> dict[str, Any]:
    try:
        document: Any = strict_json.loads(raw.decode("utf-8"))
    except (strict_json.JsonRefused, UnicodeDecodeError):
        return {}
    return document if isinstance(document, dict) else {}


def _str(document: dict[str, Any], name: str) -> str | None:
    value = document.get(name)
    return value if isinstance(value, str) and value else None


def _text(document: dict[str, Any], name: str) -> bytes | None:
    value = _str(document, name)
    return None if value is None else value.encode()


def _fallback_key(document: dict[str, Any]) -> bytes | None:
    for name in ("payment_id", "refund_id", "tariff_id"):
        key = _text(document, name)
        if key is not None:
            return key
    return None
