"""`store/ledger_fetch.py` reads the records kafka-python's own consumer path reads.

Each fetched partition is read twice: by kafka-python's ``PartitionRecords`` with every
``ConsumerRecord`` decoded by ``LedgerRecord.decode`` (the reader's path before), and by
``LedgerPartitionRecords``; in chunks as the fetcher takes them, the two must give the same
``(offset, record)`` pairs, the same next fetch offsets, and the same error after the same
records. The batches are the ledger's own (golden and a generated day), hostile ones
(non-ASCII keys and topics, empty and null keys and values, large values, many headers,
multi-byte varints, timestamps before the first, offset gaps, a fetch offset inside a
batch), batches the parser leaves to the library (compressed, magic 1, a record that is
not the ledger's, a malformed record) and corrupt ones. The consumer's private parts the
module uses are checked first: a kafka-python release that changes them fails here.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from kafka import TopicPartition
from kafka.consumer.fetcher import Fetcher, IsolationLevel
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords

from domain.application import BillingApplication
from store.ledger_fetch import LedgerPartitionRecords
from store.records import GENESIS_HASH, LedgerRecord
from tests.unit.store.test_fast_events import generated_ledger
from tests.unit.store.test_fast_json import golden
from tests.unit.store.test_ledger_batch import FIRST_TIMESTAMP, Record, ledger_records

PARTITION = TopicPartition("ledger", 0)
# kafka-python 3.0.12's PartitionRecords._unpack_records, whose batch logic ledger_fetch.py
# repeats: a release that changes it must be read again before this hash is.
UNPACK_RECORDS_SHA256 = "d91ccce28d83483f1b029fb2d5198d63fb1ed0f0fcea0c6f1edc32f548415544"


def test_the_fetcher_s_private_parts_are_what_the_module_expects() -> None:
    source = inspect.getsource(Fetcher._parse_fetched_data)
    assert "self.PartitionRecords(fetch_offset, tp, records," in source
    parameters = list(inspect.signature(Fetcher.PartitionRecords.__init__).parameters)
    assert parameters[:4] == ["self", "fetch_offset", "tp", "records"]
    unpack = list(inspect.signature(Fetcher.PartitionRecords._unpack_records).parameters)
    assert unpack == ["self", "tp", "records", "key_deserializer", "value_deserializer"]
    digest = hashlib.sha256(
        inspect.getsource(Fetcher.PartitionRecords._unpack_records).encode()
    ).hexdigest()
    assert digest == UNPACK_RECORDS_SHA256, "kafka-python's record loop changed: see ledger_fetch"
    for name in ("_consume_aborted_transactions_up_to", "_is_batch_aborted", "drain"):
        assert callable(getattr(Fetcher.PartitionRecords, name))
    batch = DefaultRecordBatch(batch_of([(FIRST_TIMESTAMP, b"k", b"v", [])]))
    assert isinstance(batch._buffer, bytearray)
    assert DefaultRecordBatch.HEADER_STRUCT.size == 61


def batch_of(
    records: list[Record],
    base_offset: int = 0,
    compression: int = 0,
    offsets: list[int] | None = None,
) -> bytes:
    builder: Any = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=compression,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=64 * 1024 * 1024,
    )
    for number, (timestamp, key, value, headers) in enumerate(records):
        offset = number if offsets is None else offsets[number]
        assert builder.append(offset, timestamp, key, value, headers) is not None
    built = builder.build()
    if base_offset:
        built[:8] = base_offset.to_bytes(8, "big")  # outside the CRC
    return bytes(built)


def read(
    kind: type[Any], blob: bytes, fetch_offset: int, chunk: int, check_crcs: bool = True
) -> tuple[list[Any], list[int], tuple[type[BaseException], str] | None]:
    """The pairs a partition's records give, taken ``chunk`` at a time as the fetcher takes
    them, the next fetch offset after each take, and the error that ended them (if any)."""
    part = kind(
        fetch_offset,
        PARTITION,
        MemoryRecords(blob),
        check_crcs=check_crcs,
        isolation_level=IsolationLevel.READ_COMMITTED,
    )
    pairs: list[Any] = []
    positions: list[int] = []
    try:
        while part:
            taken = part.take(chunk)
            if kind is LedgerPartitionRecords:
                pairs += taken
            else:  # the reader before: each consumer record decoded as it came
                for message in taken:
                    pairs.append(
                        (
                            message.offset,
                            LedgerRecord.decode(message.key, message.value, message.headers),
                        )
                    )
            positions.append(part.next_fetch_offset)
    except Exception as error:
        return pairs, positions, (type(error), str(error))
    return pairs, positions, None


def assert_read_alike(
    blob: bytes, fetch_offset: int = 0, chunk: int = 7, check_crcs: bool = True
) -> list[Any]:
    library = read(Fetcher.PartitionRecords, blob, fetch_offset, chunk, check_crcs)
    ours = read(LedgerPartitionRecords, blob, fetch_offset, chunk, check_crcs)
    assert ours[0] == library[0]
    assert ours[2] == library[2]
    if library[2] is None:
        assert ours[1] == library[1]
    return ours[0]


def parsed_here(blob: bytes) -> bool:
    """Whether every batch of ``blob`` is parsed by the module's own loop (not the library's)."""
    records = MemoryRecords(blob)
    part = LedgerPartitionRecords(0, PARTITION, MemoryRecords(blob))
    while (batch := records.next_batch()) is not None:
        try:
            part._parsed(batch)
        except Exception:
            return False
    return True


def test_the_ledger_s_records_are_read_alike(application: BillingApplication) -> None:
    for ledger in (list(golden()), list(generated_ledger(application))):
        records = ledger_records(ledger)  # a signature on every 50th, as the writer signs
        blob = b"".join(
            batch_of(records[start : start + 97], base_offset=start)
            for start in range(0, len(records), 97)
        )
        assert parsed_here(blob)
        pairs = assert_read_alike(blob, chunk=2000)
        assert len(pairs) == len(records) > 300
        assert [offset for offset, _ in pairs] == list(range(len(records)))
        assert all(record.verify() for _, record in pairs)
        # A fetch from inside a batch: the records before the fetch offset are skipped.
        assert assert_read_alike(blob, fetch_offset=150, chunk=13) == pairs[150:]


def ledger_headers(notification_id: int, topic: str, extra: list[Any]) -> list[Any]:
    """A ledger record's headers (the key and value are the Kafka record's), and ``extra``."""
    record = LedgerRecord.linked(
        GENESIS_HASH, notification_id, "", 1, topic, b"", hashlib.sha256(b"x").digest()
    )
    return [*record.headers(), *extra]


_bytes = st.one_of(
    st.sampled_from([b"", b"k", b"x" * 63, b"x" * 64, b"x" * 8191, b"x" * 8192, b"x" * 70_000]),
    st.binary(max_size=300),
)
_text = st.one_of(st.sampled_from(["", "é€😀", "t" * 5000]), st.text(max_size=40))
_hostile = st.tuples(
    st.integers(FIRST_TIMESTAMP - 10**9, FIRST_TIMESTAMP + 10**12),
    st.one_of(st.none(), _text.map(str.encode)),
    st.one_of(st.none(), _bytes),
    _text,
    st.integers(0, 2**62),
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["evledger.signature", "", "é€😀", "k" * 200]),
                st.one_of(st.none(), st.binary(max_size=300), st.just(b"x" * 8192)),
            ),
            # A header twice: the library's dict keeps the last, and so must the parser.
            st.tuples(st.just("evledger.topic"), _text.map(str.encode)),
        ),
        max_size=70,
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    records=st.lists(_hostile, min_size=1, max_size=30),
    gaps=st.lists(st.integers(1, 3000), min_size=30, max_size=30),
    base=st.sampled_from([0, 1, 2**40]),
    fetch_at=st.integers(0, 40),
    chunk=st.integers(1, 50),
)
def test_hostile_records_are_read_alike(
    records: list[Any], gaps: list[int], base: int, fetch_at: int, chunk: int
) -> None:
    batch: list[Record] = [
        (timestamp, key, value, ledger_headers(nid, topic, extra))
        for timestamp, key, value, topic, nid, extra in records
    ]
    offsets = [sum(gaps[:number]) for number in range(len(batch))]
    blob = batch_of(batch, base_offset=base, offsets=offsets)
    blob += batch_of(batch, base_offset=base + offsets[-1] + 1, offsets=offsets)
    pairs = assert_read_alike(blob, fetch_offset=base + fetch_at, chunk=chunk)
    every = [*offsets, *(offsets[-1] + 1 + offset for offset in offsets)]
    assert [offset for offset, _ in pairs] == [
        base + offset for offset in every if offset >= fetch_at
    ]
    assert parsed_here(blob)


def test_what_the_parser_does_not_take_is_read_by_the_library(
    application: BillingApplication,
) -> None:
    records = ledger_records(list(golden()))[:300]
    compressed = batch_of(records, compression=DefaultRecordBatch.CODEC_GZIP)
    plain = batch_of(records[:50], base_offset=300)
    blob = compressed + plain
    assert not parsed_here(compressed) and parsed_here(plain)
    assert len(assert_read_alike(blob)) == 350
    # A record that is not the ledger's, mid-batch: the records before it, then its error.
    foreign = [*records[:20], (FIRST_TIMESTAMP, b"k", b"v", [("other", b"x")]), *records[20:40]]
    pairs = assert_read_alike(batch_of(foreign), chunk=3)
    assert len(pairs) == 20
    for bad in (
        [("evledger.format", b"2")],
        [("evledger.format", None)],
        [("evledger.hash", b"zz")],
    ):
        tampered = [(t, k, v, [*h, *bad]) for t, k, v, h in records[:5]]
        assert assert_read_alike(batch_of(tampered)) == []
    # Magic 1 (no headers: not a ledger record), as the library reads it.
    legacy: Any = LegacyRecordBatchBuilder(magic=1, compression_type=0, batch_size=1 << 20)
    legacy.append(0, timestamp=FIRST_TIMESTAMP, key=b"k", value=b"v")
    assert assert_read_alike(bytes(legacy.build())) == []


def test_a_corrupt_batch_fails_alike() -> None:
    records = ledger_records(list(golden()))[:100]
    blob = bytearray(batch_of(records[:60]) + batch_of(records[60:], base_offset=60))
    second = len(batch_of(records[:60]))
    blob[second + 200] ^= 0x01  # inside the second batch's records: its CRC fails
    pairs = assert_read_alike(bytes(blob))
    assert [offset for offset, _ in pairs] == list(range(60))
    # Without the CRC check, a record whose length no longer adds up: the library's error.
    blob = bytearray(batch_of(records[:60]))
    blob[61] ^= 0x02  # the first record's length varint
    library = read(Fetcher.PartitionRecords, bytes(blob), 0, 7, check_crcs=False)
    assert library[2] is not None
    assert assert_read_alike(bytes(blob), check_crcs=False) == library[0]
