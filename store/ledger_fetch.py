"""Ledger records straight from a fetched partition's bytes, for a fraction of kafka-python's
per-record cost.

kafka-python's consumer turns each record of a fetch into a ``DefaultRecord`` (its varints
decoded by a call per byte, each header key decoded to text) and then a 13-field
``ConsumerRecord`` (its headers' sizes summed), which the reader took apart again into a
``LedgerRecord``: together as much CPU as a bare consume of the topic. ``use_ledger_records``
gives one consumer ``LedgerPartitionRecords``, the fetcher's ``PartitionRecords`` with its
per-record loop replaced: an uncompressed v2 batch's records are parsed here from the
batch's bytes into ``(offset, LedgerRecord)`` pairs, which is what its ``poll`` then returns
(no ``ConsumerRecord``). Everything else is kafka-python's, kept as its
``_unpack_records`` does it: each batch's CRC check, read_committed (aborted transactions
skipped, control batches passed over), the next fetch offset after each record and after
the last batch. One difference: every record below the fetch offset is skipped, where the
library's filter drops only the leading ones (they differ only on a corrupt batch whose
offsets go backwards, read with CRC checks off).

A batch this parser does not take (compressed, magic < 2), and one in which any record does
not parse as it expects (a corrupt length, a record that is not the ledger's), goes through
kafka-python's own record iteration and ``LedgerRecord.decode``, the path the reader took
before: the same records, or the same error at the same record. A batch is parsed whole
before its first record is handed out, so that switching paths never repeats a record; a
read of one record at the start of a large batch therefore parses the whole batch (about
2 ms for 512 KiB, where kafka-python stopped after the record), which the record cache and
whole-batch scans make rare.

This is the one module that knows the consumer's private parts; the pinned kafka-python
minor version (pyproject.toml) and tests/unit/store/test_ledger_fetch.py keep them what it
expects.
"""

from __future__ import annotations

from binascii import unhexlify
from collections.abc import Iterator
from typing import Any, ClassVar

from kafka.consumer.fetcher import Fetcher, IsolationLevel
from kafka.errors import CorruptRecordError
from kafka.record.default_records import DefaultRecordBatch
from kafka.record.util import decode_varint

from store.records import FORMAT_VERSION, RECORD_HEADERS, LedgerRecord

# Records start after the batch header (its last field is the record count).
_RECORDS_START = DefaultRecordBatch.HEADER_STRUCT.size
_FORMAT, _TOPIC, _VERSION, _ID, _PREV_HASH, _HASH = (name.encode() for name in RECORD_HEADERS)
_KNOWN_KEYS = frozenset((_FORMAT, _TOPIC, _VERSION, _ID, _PREV_HASH, _HASH))
_FORMAT_VALUE = FORMAT_VERSION.encode()
# Most varints of a ledger record are one byte: their values by that byte, zigzag undone,
# here; longer ones (a value's length, a hash's) are kafka-python's decode_varint's.
_ONE_BYTE = tuple((byte >> 1) ^ -(byte & 1) for byte in range(0x80))

_new = object.__new__
_set = object.__setattr__

# (offset, record): what a consumer given LedgerPartitionRecords returns per record.
Fetched = tuple[int, LedgerRecord]


class _NotParsed(Exception):
    """This batch is not what the parser takes: kafka-python's path reads it."""


def use_ledger_records(consumer: Any) -> None:
    """Have ``consumer`` (a KafkaConsumer without deserializers, before its first poll)
    return ``(offset, LedgerRecord)`` pairs from ``poll``."""
    fetcher = consumer._fetcher
    if fetcher.config["key_deserializer"] or fetcher.config["value_deserializer"]:
        raise TypeError("ledger records are read from the records' bytes: no deserializers")
    fetcher.PartitionRecords = LedgerPartitionRecords


class LedgerPartitionRecords(Fetcher.PartitionRecords):  # type: ignore[misc]
    """One fetched partition's records as ``(offset, LedgerRecord)`` pairs."""

    # Batches read by each path in this process: a parser that began refusing the writer's
    # batches would show only as CPU, so the broker test counts them.
    parsed_batches: ClassVar[int] = 0
    library_batches: ClassVar[int] = 0

    # The library's state, set by its __init__, typed for mypy.
    fetch_offset: int
    next_fetch_offset: int
    leader_epoch: int
    records_read: int
    bytes_read: int
    check_crcs: bool
    isolation_level: Any
    aborted_producer_ids: set[int]
    topic_partition: Any

    # Offsets before the fetch offset are skipped as the records are read (below), not by
    # the library's filter, which looks at a record's ``offset`` attribute.
    def _maybe_skip_record(self, record: Fetched) -> bool:
        return False

    def _unpack_records(
        self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any
    ) -> Iterator[Fetched]:
        """kafka-python's ``_unpack_records`` (3.0.12), its record loop replaced."""
        batch = records.next_batch()
        last_batch = None
        while batch is not None:
            last_batch = batch
            if self.check_crcs and not batch.validate_crc():
                raise CorruptRecordError(
                    f"Record batch for partition {self.topic_partition} at offset "
                    f"{batch.base_offset} failed crc check"
                )
            if batch.magic == 2:
                self.leader_epoch = batch.leader_epoch
                if (
                    self.isolation_level == IsolationLevel.READ_COMMITTED
                    and batch.has_producer_id()
                ):
                    self._consume_aborted_transactions_up_to(batch.last_offset)
                    producer_id = batch.producer_id
                    if self._contains_abort_marker(batch):
                        self.aborted_producer_ids.discard(producer_id)
                    elif self._is_batch_aborted(batch):
                        self.next_fetch_offset = batch.next_offset
                        batch = records.next_batch()
                        continue
                if batch.is_control_batch:
                    self.next_fetch_offset = batch.next_offset
                    batch = records.next_batch()
                    continue
            parsed = None
            if batch.magic == 2 and batch.compression_type == DefaultRecordBatch.CODEC_NONE:
                try:
                    parsed = self._parsed(batch)
                except Exception:  # _NotParsed, or any record that broke the parser
                    parsed = None
            if parsed is None:
                LedgerPartitionRecords.library_batches += 1
                yield from self._library_records(batch)
            else:
                LedgerPartitionRecords.parsed_batches += 1
                for offset, record in parsed:
                    self.next_fetch_offset = offset + 1
                    yield offset, record
            batch = records.next_batch()
        # As the library: v2 keeps a batch's last offset even if compaction removed its
        # record, and the next fetch starts after it.
        if last_batch and last_batch.magic == 2:
            self.next_fetch_offset = last_batch.next_offset
        self.drain()

    def _library_records(self, batch: Any) -> Iterator[Fetched]:
        """A batch read the way the reader read every batch before this module."""
        for record in batch:
            if self.check_crcs and not record.validate_crc():
                raise CorruptRecordError(
                    f"Record for partition {self.topic_partition} at offset "
                    f"{record.offset} failed crc check"
                )
            self.records_read += 1
            self.bytes_read += record.size_in_bytes
            self.next_fetch_offset = record.offset + 1
            if record.offset >= self.fetch_offset:
                yield (
                    record.offset,
                    LedgerRecord.decode(record.key, record.value, record.headers),
                )

    def _parsed(self, batch: Any) -> list[Fetched]:  # noqa: PLR0915 - one loop, inlined for speed
        """Every record of an uncompressed v2 batch at or after the fetch offset, parsed
        from its bytes; raises (``_NotParsed`` or whatever a malformed record sets off) if
        one does not parse exactly as kafka-python and ``LedgerRecord.decode`` would.

        Each varint is read where its field is, a one-byte one written out rather than
        called for (a call per varint cost a record about a fifth more; one per multi-byte
        varint, about a tenth: 4.9 -> 5.5 us on golden records, under 1 % of a rebuild)."""
        data = bytes(batch._buffer)
        end = len(data)
        pos = _RECORDS_START
        base_offset = batch.base_offset
        fetch_offset = self.fetch_offset
        one_byte, varint = _ONE_BYTE, decode_varint
        topics: dict[bytes, str] = {}
        parsed: list[Fetched] = []
        payload = 0
        for _ in range(batch.records_count):
            byte = data[pos]
            if byte < 0x80:
                length, pos = one_byte[byte], pos + 1
            else:
                length, pos = varint(data, pos)
            start = pos
            payload += length
            pos += 1  # attributes: one byte, unused (kafka-python reads and drops them)
            if data[start] >= 0x80:
                raise _NotParsed
            if data[pos] < 0x80:  # timestamp delta: not kept
                pos += 1
            else:
                _, pos = varint(data, pos)
            byte = data[pos]
            if byte < 0x80:
                offset_delta, pos = one_byte[byte], pos + 1
            else:
                offset_delta, pos = varint(data, pos)
            byte = data[pos]
            if byte < 0x80:
                size, pos = one_byte[byte], pos + 1
            else:
                size, pos = varint(data, pos)
            if size >= 0:
                key = data[pos : pos + size]
                pos += size
            else:
                key = b""
            byte = data[pos]
            if byte < 0x80:
                size, pos = one_byte[byte], pos + 1
            else:
                size, pos = varint(data, pos)
            if size >= 0:
                value = data[pos : pos + size]
                pos += size
            else:
                value = b""
            byte = data[pos]
            if byte < 0x80:
                count, pos = one_byte[byte], pos + 1
            else:
                count, pos = varint(data, pos)
            if count < 0:
                raise _NotParsed
            found: dict[bytes, bytes | None] = {}
            for _ in range(count):
                byte = data[pos]
                if byte < 0x80:
                    size, pos = one_byte[byte], pos + 1
                else:
                    size, pos = varint(data, pos)
                if size < 0:
                    raise _NotParsed
                header_key = data[pos : pos + size]
                pos += size
                byte = data[pos]
                if byte < 0x80:
                    size, pos = one_byte[byte], pos + 1
                else:
                    size, pos = varint(data, pos)
                if size >= 0:
                    found[header_key] = data[pos : pos + size]
                    pos += size
                else:
                    found[header_key] = None
            if pos - start != length or pos > end:
                raise _NotParsed
            if len(found) != len(_KNOWN_KEYS) or not _KNOWN_KEYS.issuperset(found):
                # Header keys kafka-python decodes to text (the signature's, on the last record
                # of a transaction): one that is not UTF-8 is its error, for a skipped record too.
                for header_key in found:
                    if header_key not in _KNOWN_KEYS:
                        header_key.decode()
            offset = base_offset + offset_delta
            if offset < fetch_offset:
                continue
            if found.get(_FORMAT) != _FORMAT_VALUE:
                raise _NotParsed
            topic_bytes = found[_TOPIC]
            topic = topics.get(topic_bytes)  # type: ignore[arg-type]
            if topic is None:
                topic = topics[topic_bytes] = topic_bytes.decode()  # type: ignore[index, union-attr]
            record = _new(LedgerRecord)
            _set(
                record,
                "__dict__",
                {
                    "notification_id": int(found[_ID]),  # type: ignore[arg-type]
                    "originator_id": key.decode(),
                    "originator_version": int(found[_VERSION]),  # type: ignore[arg-type]
                    "topic": topic,
                    "state": value,
                    "prev_hash": unhexlify(found[_PREV_HASH]),  # type: ignore[arg-type]
                    "hash": unhexlify(found[_HASH]),  # type: ignore[arg-type]
                },
            )
            parsed.append((offset, record))
        if pos != end:
            raise _NotParsed
        self.records_read += batch.records_count
        self.bytes_read += payload
        return parsed
