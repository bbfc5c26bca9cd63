"""kafka-python's record batch builder with each record's bytes written in one piece.

Encoding ledger records was the largest part of the writer thread: kafka-python's
``DefaultRecordBatchBuilder.append`` writes a record byte by byte (a Python call per
varint byte, a ``str.encode`` per header key), about fourteen varints and six headers per
ledger record, three records a message. ``LedgerBatchBuilder.append`` writes the same bytes
(Kafka's record format v2: attributes, then zigzag varints of the timestamp delta, the
offset delta and the lengths of key, value, header count, header keys and values, each
length before its bytes) from parts joined once, the header keys' bytes kept; it checks
the batch's size and updates the builder's state exactly as the library's append does.
Anything but the plain case (the batch's first record, a key or value that is not
``bytes``, a timestamp or offset that is not an ``int``) takes the library's append.
``store/ledger_send.py`` swaps it in for the ledger's open batch;
tests/unit/store/test_ledger_batch.py builds batches both ways and compares their bytes.
"""

from __future__ import annotations

import time
from typing import Any

from kafka.record.default_records import DefaultRecordBatchBuilder, DefaultRecordMetadata

_ONE_BYTE = tuple(bytes((value,)) for value in range(0x80))
# Header keys are a handful of constants: each one's length varint and UTF-8 bytes.
_HEADER_KEYS: dict[str, bytes] = {}
_HEADER_KEYS_KEPT = 64


def varint(value: int) -> bytes:
    """Kafka's zigzag varint of a signed 64-bit ``value`` (kafka-python's encode_varint)."""
    value = (value << 1) ^ (value >> 63)
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes((0x80 | (value & 0x7F), value >> 7))
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


# The varints of 0 .. _SMALL_LIMIT - 1 (about 150 KiB).
_SMALL_LIMIT = 4096
_SMALL = tuple(varint(value) for value in range(_SMALL_LIMIT))


def _header_key(key: str) -> bytes:
    known = _HEADER_KEYS.get(key)
    if known is None:
        encoded = key.encode("utf-8")
        known = varint(len(encoded)) + encoded
        if len(_HEADER_KEYS) < _HEADER_KEYS_KEPT:
            _HEADER_KEYS[key] = known
    return known


class LedgerBatchBuilder(DefaultRecordBatchBuilder):  # type: ignore[misc]
    """``DefaultRecordBatchBuilder`` whose ``append`` joins each record's parts once."""

    # The library builder's state, set by its __init__ (or taken over), typed for mypy.
    _first_timestamp: int | None
    _max_timestamp: int
    _last_offset: int
    _num_records: int
    _batch_size: int
    _buffer: bytearray

    @classmethod
    def taking_over(cls, builder: Any) -> LedgerBatchBuilder:
        """A builder of this class holding ``builder``'s state (its buffer included)."""
        taken: LedgerBatchBuilder = cls.__new__(cls)
        for name in DefaultRecordBatchBuilder.__slots__:
            setattr(taken, name, getattr(builder, name))
        return taken

    def append(
        self,
        offset: Any,
        timestamp: Any,
        key: Any,
        value: Any,
        headers: Any,
    ) -> Any:
        first_timestamp = self._first_timestamp
        if (
            first_timestamp is None
            or type(offset) is not int
            or type(key) is not bytes
            or type(value) is not bytes
            or not (timestamp is None or type(timestamp) is int)
        ):
            return super().append(offset, timestamp, key, value, headers)
        if timestamp is None:
            timestamp = int(time.time() * 1000)
        # Lengths, offsets and time deltas are small non-negative numbers: their varints
        # are looked up (a call per varint was most of the cost); others are computed.
        small = _SMALL
        delta = timestamp - first_timestamp
        key_length = len(key)
        value_length = len(value)
        parts = [
            b"\x00",  # attributes
            small[delta] if 0 <= delta < _SMALL_LIMIT else varint(delta),
            small[offset] if 0 <= offset < _SMALL_LIMIT else varint(offset),
            small[key_length] if key_length < _SMALL_LIMIT else varint(key_length),
            key,
            small[value_length] if value_length < _SMALL_LIMIT else varint(value_length),
            value,
            small[len(headers)] if len(headers) < _SMALL_LIMIT else varint(len(headers)),
        ]
        append = parts.append
        for header_key, header_value in headers:
            append(_HEADER_KEYS.get(header_key) or _header_key(header_key))
            if header_value is None:
                append(b"\x01")  # varint(-1): a null header value
            else:
                size = len(header_value)
                append(small[size] if size < _SMALL_LIMIT else varint(size))
                append(header_value)
        message = b"".join(parts)
        message_length = len(message)
        length = _SMALL[message_length] if message_length < _SMALL_LIMIT else varint(message_length)
        required_size = message_length + len(length)
        buffer = self._buffer
        # Never the batch's first record here, which the library's append always takes.
        if required_size + len(buffer) > self._batch_size:
            return None
        self._max_timestamp = max(self._max_timestamp, timestamp)
        self._num_records += 1
        self._last_offset = offset
        buffer += length
        buffer += message
        return DefaultRecordMetadata(offset, required_size, timestamp)
