"""The ledger's record format: one Kafka record per stored event, and its hash chain."""

from __future__ import annotations

import hashlib
import struct
from binascii import hexlify, unhexlify
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import Notification, StoredEvent

from store.frozen import made

# Bump when the meaning of a header or of the hashed content changes; readers refuse
# formats they do not know instead of misreading them.
FORMAT_VERSION = "1"

HEADER_FORMAT = "evledger.format"
HEADER_TOPIC = "evledger.topic"
HEADER_ORIGINATOR_VERSION = "evledger.originator_version"
HEADER_NOTIFICATION_ID = "evledger.notification_id"
HEADER_PREV_HASH = "evledger.prev_hash"
HEADER_HASH = "evledger.hash"
# The headers every ledger record carries, in the order the writer writes them (the
# signature's are on some records only).
RECORD_HEADERS = (
    HEADER_FORMAT,
    HEADER_TOPIC,
    HEADER_ORIGINATOR_VERSION,
    HEADER_NOTIFICATION_ID,
    HEADER_PREV_HASH,
    HEADER_HASH,
)

_FORMAT_HEADER = (HEADER_FORMAT, FORMAT_VERSION.encode())

# The chain starts from 32 zero bytes, so the first record's prev_hash is 64 '0' digits.
GENESIS_HASH = bytes(32)


class RecordFormatError(ValueError):
    """A ledger record lacks a header or carries a format this code does not read."""


def chain_hash(  # noqa: PLR0917 - the canonical content, field by field, in order
    prev_hash: bytes,
    notification_id: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
) -> bytes:
    """SHA-256 of the previous record's hash and this record's canonical content.

    The canonical content is, in this order, with integers big-endian:
      prev_hash (32 bytes)
      notification_id (unsigned 64-bit)
      len(originator_id UTF-8) (unsigned 32-bit), originator_id UTF-8
      originator_version (signed 64-bit)
      len(topic UTF-8) (unsigned 32-bit), topic UTF-8
      len(state) (unsigned 64-bit), state (the record value, as stored)
    Length prefixes make the encoding unambiguous: no two contents hash the same bytes.
    """
    if len(prev_hash) != 32:
        raise ValueError(f"prev_hash must be 32 bytes, got {len(prev_hash)}")
    originator = originator_id.encode()
    topic_bytes = topic.encode()
    # One update of the joined content: the same digest as an update per part, with one
    # call into hashlib instead of seven (the writer hashes about three records a message).
    return _sha256(
        b"".join(
            (
                prev_hash,
                _ID_AND_LENGTH.pack(notification_id, len(originator)),
                originator,
                _VERSION_AND_LENGTH.pack(originator_version, len(topic_bytes)),
                topic_bytes,
                _LENGTH.pack(len(state)),
                state,
            )
        )
    ).digest()


_sha256 = hashlib.sha256
_ID_AND_LENGTH = struct.Struct(">QI")
_VERSION_AND_LENGTH = struct.Struct(">qI")
_LENGTH = struct.Struct(">Q")


@dataclass(frozen=True)
class LedgerRecord:
    """One stored event as it sits in the topic: its content, its id and its chain links."""

    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    prev_hash: bytes
    hash: bytes

    @classmethod
    def chained(
        cls,
        prev_hash: bytes,
        notification_id: int,
        stored_event: StoredEvent,
        originator_text: str | None = None,
    ) -> LedgerRecord:
        """The record that follows prev_hash in the chain, for the single writer (which may
        pass the originator id's text, spelled already)."""
        originator_id = originator_text or str(stored_event.originator_id)
        version, topic, state = (
            stored_event.originator_version,
            stored_event.topic,
            stored_event.state,
        )
        return cls.linked(
            prev_hash,
            notification_id,
            originator_id,
            version,
            topic,
            state,
            chain_hash(prev_hash, notification_id, originator_id, version, topic, state),
        )

    @classmethod
    def linked(  # noqa: PLR0917 - the record's fields, in chain_hash's order
        cls,
        prev_hash: bytes,
        notification_id: int,
        originator_id: str,
        originator_version: int,
        topic: str,
        state: bytes,
        record_hash: bytes,
    ) -> LedgerRecord:
        """The record with these fields and a hash already computed (by ``chained`` here, or
        by the writer's process for the records it committed)."""
        return made(
            cls,
            notification_id=notification_id,
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=state,
            prev_hash=prev_hash,
            hash=record_hash,
        )

    def key(self) -> bytes:
        return self.originator_id.encode()

    def headers(self) -> list[tuple[str, bytes]]:
        # Built for every record the writer sends: bytes formatted directly (the same bytes
        # as str(...).encode()), the constant format header shared.
        return [
            _FORMAT_HEADER,
            (HEADER_TOPIC, self.topic.encode()),
            (HEADER_ORIGINATOR_VERSION, b"%d" % self.originator_version),
            (HEADER_NOTIFICATION_ID, b"%d" % self.notification_id),
            (HEADER_PREV_HASH, hexlify(self.prev_hash)),
            (HEADER_HASH, hexlify(self.hash)),
        ]

    @classmethod
    def decode(
        cls, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> LedgerRecord:
        """Read a record from the topic; raises RecordFormatError on a foreign record."""
        found = dict(headers)
        try:
            record_format = found[HEADER_FORMAT].decode()
            if record_format != FORMAT_VERSION:
                raise RecordFormatError(f"unknown ledger record format {record_format!r}")
            return cls(
                notification_id=int(found[HEADER_NOTIFICATION_ID]),
                originator_id=(key or b"").decode(),
                originator_version=int(found[HEADER_ORIGINATOR_VERSION]),
                topic=found[HEADER_TOPIC].decode(),
                state=value or b"",
                prev_hash=unhexlify(found[HEADER_PREV_HASH]),
                hash=unhexlify(found[HEADER_HASH]),
            )
        except KeyError as missing:
            raise RecordFormatError(f"ledger record lacks header {missing}") from None

    def verify(self) -> bool:
        """Whether the carried hash matches this record's own content and prev_hash."""
        return self.hash == chain_hash(
            self.prev_hash,
            self.notification_id,
            self.originator_id,
            self.originator_version,
            self.topic,
            self.state,
        )

    def stored_event(self, uuid_ids: bool = True) -> StoredEvent:
        return StoredEvent(
            originator_id=originator_id_value(self.originator_id, uuid_ids),
            originator_version=self.originator_version,
            topic=self.topic,
            state=self.state,
        )

    def notification(self, uuid_ids: bool = True) -> Notification:
        return Notification(
            id=self.notification_id,
            originator_id=originator_id_value(self.originator_id, uuid_ids),
            originator_version=self.originator_version,
            topic=self.topic,
            state=self.state,
        )


def originator_id_value(originator_id: str, uuid_ids: bool) -> UUID | str:
    """The id as the library's mappers expect it (UUID unless ORIGINATOR_ID_TYPE=text)."""
    if uuid_ids:
        try:
            return UUID(originator_id)
        except ValueError:
            return originator_id
    return originator_id
