"""`store/ledger_batch.py` writes the record batches kafka-python's own builder writes.

Batches are built twice from the same records, once by the library's builder alone and
once by a builder handed over to `LedgerBatchBuilder` after its first record (as
store/ledger_send.py hands it over): every append must answer alike (metadata, or None when
the batch is full) and the built batches must be the same bytes, which Kafka's reader
reads back as the records given. The records are the ledger's own (a generated day
through the writer's record format) and hostile ones: empty and large keys and values,
null header values, non-ASCII header keys, timestamps before the first, and the types the
fast path leaves to the library (None, bytearray).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.util import encode_varint

from domain.application import BillingApplication
from store.ledger_batch import LedgerBatchBuilder, varint
from store.records import GENESIS_HASH, LedgerRecord
from tests.unit.store.test_fast_events import generated_ledger
from tests.unit.store.test_fast_json import golden

Record = tuple[int | None, Any, Any, list[tuple[str, Any]]]
FIRST_TIMESTAMP = 1_767_323_045_000


@given(st.integers(-(2**63), 2**63 - 1))
def test_varints_are_kafka_s(value: int) -> None:
    expected = bytearray()
    encode_varint(value, expected.append)
    assert varint(value) == bytes(expected)


def build(records: list[Record], batch_size: int, handed_over: bool) -> tuple[list[Any], bytes]:
    builder: Any = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=True,
        producer_id=7,
        producer_epoch=1,
        base_sequence=0,
        batch_size=batch_size,
    )
    answers = []
    for offset, (timestamp, key, value, headers) in enumerate(records):
        metadata = builder.append(offset, timestamp, key, value, headers)
        answers.append(
            None if metadata is None else (metadata.offset, metadata.size, metadata.timestamp)
        )
        if metadata is None:
            break
        if offset == 0 and handed_over:
            builder = LedgerBatchBuilder.taking_over(builder)
            assert type(builder) is LedgerBatchBuilder
    return answers, bytes(builder.build())


def assert_same_batches(records: list[Record], batch_size: int = 1024 * 1024) -> None:
    library_answers, library_bytes = build(records, batch_size, handed_over=False)
    answers, built = build(records, batch_size, handed_over=True)
    assert answers == library_answers
    assert built == library_bytes
    read = list(DefaultRecordBatch(built))
    kept = [record for record, answer in zip(records, answers, strict=False) if answer]
    assert [(r.key, r.value, r.headers) for r in read] == [
        (None if k is None else bytes(k), None if v is None else bytes(v), list(h))
        for _, k, v, h in kept
    ]


def ledger_records(stored: list[StoredEvent]) -> list[Record]:
    records: list[Record] = []
    prev_hash = GENESIS_HASH
    for number, event in enumerate(stored, start=1):
        record = LedgerRecord.chained(prev_hash, number, event)
        prev_hash = record.hash
        headers = record.headers()
        if number % 50 == 0:
            headers += [("evledger.signature", bytes(64)), ("evledger.signed_from", b"1")]
        records.append((FIRST_TIMESTAMP + number // 7, record.key(), record.state, headers))
    return records


def test_the_ledger_s_records_make_the_same_batches(application: BillingApplication) -> None:
    for ledger in (list(golden()), list(generated_ledger(application))):
        records = ledger_records(ledger)
        assert len(records) > 300
        assert_same_batches(records)
        # A batch that fills: the append that does not fit is refused alike.
        assert_same_batches(records, batch_size=16 * 1024)


_bytes = st.one_of(
    st.sampled_from([b"", b"k", b"x" * 63, b"x" * 64, b"x" * 8191, b"x" * 8192, b"x" * 70_000]),
    st.binary(max_size=300),
)
_record = st.tuples(
    st.one_of(st.none(), st.integers(FIRST_TIMESTAMP - 10**9, FIRST_TIMESTAMP + 10**12)),
    st.one_of(_bytes, st.none(), _bytes.map(bytearray)),
    st.one_of(_bytes, st.none(), _bytes.map(bytearray)),
    st.lists(
        st.tuples(
            st.sampled_from(["evledger.hash", "", "é€😀", "k" * 200]),
            st.one_of(st.none(), _bytes),
        ),
        max_size=8,
    ),
)


@given(records=st.lists(_record, min_size=1, max_size=40), small=st.booleans())
def test_any_records_make_the_same_batches(records: list[Record], small: bool) -> None:
    # A None timestamp is the clock's, read by each builder in turn: pinned here so both
    # builders write the same one (the writer passes None; the clock is all that differs).
    pinned = [(FIRST_TIMESTAMP if t is None else t, k, v, h) for t, k, v, h in records]
    assert_same_batches(pinned, batch_size=4096 if small else 1024 * 1024)


def test_the_clock_is_read_for_a_record_without_a_timestamp() -> None:
    builder: Any = DefaultRecordBatchBuilder(2, 0, True, 7, 1, 0, 1024 * 1024)
    builder.append(0, None, b"k", b"v", [])
    fast = LedgerBatchBuilder.taking_over(builder)
    metadata = fast.append(1, None, b"k", b"v", [])
    assert abs(metadata.timestamp - builder._first_timestamp) < 60_000


def test_offsets_past_the_table_of_small_varints_are_written_alike() -> None:
    batches = []
    for handed_over in (False, True):
        builder: Any = DefaultRecordBatchBuilder(2, 0, True, 7, 1, 0, 1024 * 1024)
        builder.append(0, FIRST_TIMESTAMP, b"k", b"v", [])
        if handed_over:
            builder = LedgerBatchBuilder.taking_over(builder)
        for offset in (1, 4095, 4096, 16_383, 16_384, 2**30):
            builder.append(offset, FIRST_TIMESTAMP + offset, b"k", b"v", [("h", b"x")])
        batches.append(bytes(builder.build()))
    assert batches[0] == batches[1]
