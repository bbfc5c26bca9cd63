"""The routing rule of a sharded ledger: which shard an upstream message belongs to.

A message routes by the charging session it belongs to: its Kafka record key is the
session id (UTF-8) and its partition of the ingest topic is Kafka's default partitioner's
choice for that key (murmur2, modulo the partition count), so any standard Kafka client
that keys by session id routes correctly. Payments and refunds carry no session id on every
message: their publisher keys them by the session of their authorisation, which
``SessionRouter`` remembers for `evledger publish`. Tariffs, OCPI tariffs and OCPI locations
are reference data that every shard needs (every CDR is priced with a tariff in the time
zone of its location): they go to every partition, and each shard records its own copy. An
OCPI CDR routes by its own key, ``ocpi-cdr:<country_code>:<party_id>:<id>``, where a
credit CDR uses the id of the CDR it reverses (``credit_reference_id``), so that a credit
meets its original; that key is also the payment id of the CDR's overcharge claim
(``ocpi-claim:<country_code>:<party_id>:<id>``), so the claim's refund messages route with
it.

Ingest partition p feeds ledger shard p only; ``misrouted`` is ingest's check that a record
on partition p belongs there, so that a misrouted message becomes a dead letter naming this
rule instead of being applied to a shard that does not hold its session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from consumers import strict_json
from domain.vocabulary import CDR_CLAIM_PAYMENT_PREFIX, CDR_CLAIM_REFUND_PREFIX, MessageType

ROUTING_RULE = (
    "a message's record key must be its charging session's id (an ocpi.cdr's: "
    "ocpi-cdr:<country_code>:<party_id>:<id>, the reversed CDR's id for a credit CDR), and "
    "it must be on that key's partition (Kafka's default partitioner: murmur2 of the key, "
    "modulo the partition count); tariffs, ocpi.tariff and ocpi.location go to every "
    "partition"
)

# Reference data every shard needs: published to every partition of the ingest topic.
REFERENCE_TYPES = frozenset(
    {
        MessageType.TARIFF_PUBLISHED.value,
        MessageType.OCPI_TARIFF.value,
        MessageType.OCPI_LOCATION.value,
    }
)


def cdr_routing_key(cdr: Any) -> str | None:
    """The routing key of an OCPI CDR (its decoded JSON object), or None if it has none."""
    if not isinstance(cdr, dict):
        return None
    credit = cdr.get("credit") is True
    parts = [cdr.get("country_code"), cdr.get("party_id")]
    parts.append(cdr.get("credit_reference_id") if credit else cdr.get("id"))
    if not all(isinstance(part, str) and part for part in parts):
        return None
    return CDR_CLAIM_PAYMENT_PREFIX + ":".join(str(part) for part in parts)


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
        if message_type == MessageType.OCPI_CDR:
            return cdr_routing_key(document.get("cdr"))
        session = _str(document, "session_id")
        payment = _str(document, "payment_id")
        refund = _str(document, "refund_id")
        # A CDR's overcharge claim: its payment id is the CDR's key, its refund id follows.
        if refund is not None and refund.startswith(CDR_CLAIM_REFUND_PREFIX):
            return CDR_CLAIM_PAYMENT_PREFIX + refund.removeprefix(CDR_CLAIM_REFUND_PREFIX)
        if payment is not None and payment.startswith(CDR_CLAIM_PAYMENT_PREFIX):
            if refund is not None:
                self._refund_sessions[refund] = payment
            return payment
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
    message_type: str,
    session_id: str | None,
    key: bytes | None,
    partition: int,
    shards: int,
    *,
    key_field: str = "session_id",
) -> tuple[str, str] | None:
    """Why a record on ``partition`` does not belong to its shard (field, reason), or None.

    ``session_id`` is the message's own routing key when it carries one (its session id, or
    an ocpi.cdr's ``cdr_routing_key``, then named by ``key_field``).
    With one shard, every record belongs.
    """
    if shards <= 1 or message_type in REFERENCE_TYPES:
        return None
    if key is None:
        return "", f"misrouted: the record has no key; {ROUTING_RULE}"
    if session_id is not None and key != session_id.encode():
        what = "session id" if key_field == "session_id" else "routing key"
        return (
            key_field,
            f"misrouted: record key {key!r} is not the message's {what} "
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
