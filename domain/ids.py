"""Deterministic aggregate ids derived from upstream ids, so every writer finds the same one."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from hashlib import sha1
from uuid import UUID, SafeUUID

from domain.errors import InvalidValueError

# Fixed forever: changing it would orphan every aggregate already in a ledger.
EVLEDGER_NAMESPACE = UUID("6f1d3c2a-8b4e-5a7f-9c0d-2e4b6a8c0f13")


def _derivation(kind: str, cached: int) -> Callable[[str], UUID]:
    """One kind's ids: uuid5 of the namespace and ``<kind>:<upstream id>`` (the prefix
    keeps a tariff and a session that share an upstream id apart), the ``cached`` ones
    derived last kept: a message derives each of its ids more than once (a session's in its
    start, stop, payments and settlement; the message's own in the batch's look-up, its
    duplicate check and its record).

    The cache is the kind's own, keyed by the upstream id itself, whose hash its string
    keeps: a key spelled ``f"{kind}:{upstream_id}"`` was a new string to build and hash on
    every call, most of the cost of an id found in the cache.
    """
    prefix = _NAMESPACE_BYTES + f"{kind}:".encode()

    def refused(upstream_id: object) -> InvalidValueError:
        return InvalidValueError(f"{kind} id must be a non-empty string, got {upstream_id!r}")

    @lru_cache(maxsize=cached)
    def derived(upstream_id: str) -> UUID:
        if not isinstance(upstream_id, str) or not upstream_id:
            raise refused(upstream_id)
        # uuid.uuid5's own steps, with the version and variant bits set here in the integer
        # and the UUID filled as its __init__ fills it, without UUID(bytes=..., version=5)'s
        # conversions and checks (every message's own id is new to the cache).
        digest = int.from_bytes(sha1(prefix + upstream_id.encode()).digest()[:16])
        uuid = _new(UUID)
        _set(uuid, "int", (digest & _VERSION_MASK) | _VERSION_5)
        _set(uuid, "is_safe", SafeUUID.unknown)
        return uuid

    def derive(upstream_id: str) -> UUID:
        try:
            return derived(upstream_id)
        except TypeError:  # unhashable, so not a string either
            raise refused(upstream_id) from None

    return derive


_NAMESPACE_BYTES = EVLEDGER_NAMESPACE.bytes
# RFC 4122: the version nibble (bits 76-79) is 5, the variant bits (62-63) are 10.
_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_VERSION_5 = (5 << 76) | (0x8000 << 48)
_new = object.__new__
_set = object.__setattr__  # UUID's own __setattr__ refuses: its instances are immutable

# Bounded: a few MiB at most over every kind.
tariff_aggregate_id = _derivation("tariff", 1_024)
session_aggregate_id = _derivation("session", 4_096)
settlement_aggregate_id = _derivation("settlement", 4_096)
payment_aggregate_id = _derivation("payment", 4_096)
refund_aggregate_id = _derivation("refund", 1_024)
processed_message_id = _derivation("message", 4_096)
_ocpi_cdr_id = _derivation("ocpi-cdr", 256)
_ocpi_tariff_id = _derivation("ocpi-tariff", 256)
_ocpi_location_id = _derivation("ocpi-location", 256)


_Naming = tuple[tuple[str, tuple[Callable[[str], UUID], ...]], ...]

# The aggregates a message names by its fields (a stop names its session and settlement),
# for looking them up in bulk before the messages are decided.
_NAMED_BY: _Naming = (
    ("tariff_id", (tariff_aggregate_id,)),
    ("session_id", (session_aggregate_id, settlement_aggregate_id)),
    ("payment_id", (payment_aggregate_id,)),
    ("refund_id", (refund_aggregate_id,)),
)


def named_aggregate_ids(message: object) -> list[UUID]:
    """The ids of the aggregates a command names (its tariff, session, payment, refund)."""
    ids: list[UUID] = []
    for field, derivations in _naming_fields(type(message)):
        value = getattr(message, field, None)
        if isinstance(value, str) and value:
            ids.extend(derive(value) for derive in derivations)
    return ids


_NAMING: dict[type, _Naming] = {}


def _naming_fields(kind: type) -> _Naming:
    """Of ``_NAMED_BY``, the fields a dataclass (a command) declares; all for other types.
    A getattr of a missing attribute raises and swallows an AttributeError: most commands
    name two of the four."""
    naming = _NAMING.get(kind)
    if naming is None:
        declared = getattr(kind, "__dataclass_fields__", None)
        naming = _NAMING[kind] = (
            _NAMED_BY
            if declared is None
            else tuple((field, derive) for field, derive in _NAMED_BY if field in declared)
        )
    return naming


def _ocpi_key(country_code: str, party_id: str, object_id: str) -> str:
    # OCPI's country codes and party ids are case-insensitive (CiString).
    return f"{country_code.upper()}:{party_id.upper()}:{object_id}"


def roaming_cdr_aggregate_id(country_code: str, party_id: str, cdr_id: str) -> UUID:
    return _ocpi_cdr_id(_ocpi_key(country_code, party_id, cdr_id))


def roaming_tariff_aggregate_id(country_code: str, party_id: str, tariff_id: str) -> UUID:
    return _ocpi_tariff_id(_ocpi_key(country_code, party_id, tariff_id))


def roaming_location_aggregate_id(country_code: str, party_id: str, location_id: str) -> UUID:
    return _ocpi_location_id(_ocpi_key(country_code, party_id, location_id))
