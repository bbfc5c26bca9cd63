"""Deterministic aggregate ids derived from upstream ids, so every writer finds the same one."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from hashlib import sha1
from uuid import UUID

from domain.errors import InvalidValueError

# Fixed forever: changing it would orphan every aggregate already in a ledger.
EVLEDGER_NAMESPACE = UUID("6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c0f13")


def _derive(kind: str, upstream_id: str) -> UUID:
    if not isinstance(upstream_id, str) or not upstream_id:
        raise InvalidValueError(f"{kind} id must be a non-empty string, got {upstream_id!r}")
    # The kind prefix keeps a tariff and a session that share an upstream id apart.
    return _uuid5(f"{kind}:{upstream_id}")


# Ids recently derived: a message derives each of its ids more than once (a session's in
# its start, stop, payments and settlement), and uuid5 is a SHA-1 and a UUID each time.
# Bounded: a few MiB at most.
@lru_cache(maxsize=16_384)
def _uuid5(name: str) -> UUID:
    # uuid.uuid5's own steps, without the import statement it runs on every call (a
    # projector derives an id for every payment and refund), and with the version and
    # variant bits set here in the integer rather than by UUID(bytes=..., version=5)'s
    # conversions and checks (every message's id is new to the cache).
    digest = int.from_bytes(sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    return UUID(int=(digest & _VERSION_MASK) | _VERSION_5)


_NAMESPACE_BYTES = EVLEDGER_NAMESPACE.bytes
# RFC 4122: the version nibble (bits 76-79) is 5, the variant bits (62-63) are 10.
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_5 = (5 << 76) | (0x8000 << 48)


def tariff_aggregate_id(tariff_id: str) -> UUID:
    return _derive("tariff", tariff_id)


def session_aggregate_id(session_id: str) -> UUID:
    return _derive("session", session_id)


def settlement_aggregate_id(session_id: str) -> UUID:
    return _derive("settlement", session_id)


def payment_aggregate_id(payment_id: str) -> UUID:
    return _derive("payment", payment_id)


def refund_aggregate_id(refund_id: str) -> UUID:
    return _derive("refund", refund_id)


def processed_message_id(event_id: str) -> UUID:
    return _derive("message", event_id)


# The aggregates a message names by its fields (a stop names its session and settlement),
# for looking them up in bulk before the messages are decided.
_NAMED_BY: tuple[tuple[str, tuple[Callable[[str], UUID], ...]], ...] = (
    ("tariff_id", (tariff_aggregate_id,)),
    ("session_id", (session_aggregate_id, settlement_aggregate_id)),
    ("payment_id", (payment_aggregate_id,)),
    ("refund_id", (refund_aggregate_id,)),
)


def named_aggregate_ids(message: object) -> list[UUID]:
    """The ids of the aggregates a command names (its tariff, session, payment, refund)."""
    ids: list[UUID] = []
    for field, derivations in _NAMED_BY:
        value = getattr(message, field, None)
        if isinstance(value, str) and value:
            ids.extend(derive(value) for derive in derivations)
    return ids


def _ocpi_key(country_code: str, party_id: str, object_id: str) -> str:
    # OCPI's country codes and party ids are case-insensitive (CiString).
    return f"{country_code.upper()}:{party_id.upper()}:{object_id}"


def roaming_cdr_aggregate_id(country_code: str, party_id: str, cdr_id: str) -> UUID:
    return _derive("ocpi-cdr", _ocpi_key(country_code, party_id, cdr_id))


def roaming_tariff_aggregate_id(country_code: str, party_id: str, tariff_id: str) -> UUID:
    return _derive("ocpi-tariff", _ocpi_key(country_code, party_id, tariff_id))


def roaming_location_aggregate_id(country_code: str, party_id: str, location_id: str) -> UUID:
    return _derive("ocpi-location", _ocpi_key(country_code, party_id, location_id))
