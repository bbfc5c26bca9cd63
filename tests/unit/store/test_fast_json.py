"""The ledger's orjson encoding writes the library encoder's bytes, and its decoding gives the
library decoder's values, for every event there is.

Existing ledgers hash and sign the bytes the library's JSONTranscoder wrote; an encoder
that spelled one value differently would write new events unlike the old ones, and a
decoder that read one differently would project other rows. So every event of the golden
ledger and of generated traffic (all upstream message types, OCPI included) is re-encoded
by both and compared byte for byte, and decoded by both into equal domain events (compared
by repr, which tells Decimal("1.0") from Decimal("1.00") and an int from a bool).
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    TranscodingNotRegisteredError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.export import ExportScan
from consumers.batch import BatchOutcome, apply_batch
from consumers.triage import SourceRecord
from demo.traffic import TrafficShape, generate
from domain.application import BillingApplication
from store.fast_json import FastJSONTranscoder
from tests.golden.golden import EXPORT_DIR

OCPI_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ocpi"


def transcoders(application: BillingApplication) -> tuple[JSONTranscoder, FastJSONTranscoder]:
    library, fast = JSONTranscoder(), FastJSONTranscoder()
    application.register_transcodings(library)
    application.register_transcodings(fast)
    return library, fast


def assert_same_bytes(application: BillingApplication, events: Iterator[StoredEvent]) -> int:
    """Decode each stored event and encode it with both transcoders; return how many."""
    library, fast = transcoders(application)
    by_library, by_fast = Mapper[UUID](library), Mapper[UUID](fast)
    count = 0
    for stored in events:
        event: DomainEventProtocol[UUID] = by_library.to_domain_event(stored)
        assert repr(vars(by_fast.to_domain_event(stored))) == repr(vars(event))
        assert by_fast.to_stored_event(event).state == by_library.to_stored_event(event).state
        count += 1
    return count


def golden() -> Iterator[StoredEvent]:
    """The golden ledger's events as stored."""
    for record in ExportScan(EXPORT_DIR).records():
        assert record.topic is not None
        yield StoredEvent(
            originator_id=UUID(record.originator_id),
            originator_version=record.originator_version,
            topic=record.topic,
            state=record.state,
        )


def test_every_golden_event_encodes_to_the_same_bytes(application: BillingApplication) -> None:
    assert assert_same_bytes(application, golden()) == 361


def ocpi_messages() -> list[bytes]:
    def message(kind: str, fixture: str) -> bytes:
        document = {
            "type": f"ocpi.{kind}",
            "event_id": f"e-{kind}",
            "occurred_at": "2024-06-03T09:05:00Z",
            kind: json.loads((OCPI_FIXTURES / fixture).read_text()),
        }
        return json.dumps(document).encode()

    return [
        message("tariff", "tariff_flat_and_energy.json"),
        message("location", "location_utrecht.json"),
        message("cdr", "cdr_20_45_kwh.json"),
    ]


def apply_traffic(application: BillingApplication, seed: int) -> BatchOutcome:
    """A generated day of traffic (every upstream message type, OCPI included) applied to
    ``application`` in one batch."""
    shape = TrafficShape(days=1, customers=40, stations=3, service_refund_rate=0.2)
    values = [json.dumps(m).encode() for m in generate(seed, shape)] + ocpi_messages()
    records = [
        SourceRecord(topic="ingest", partition=0, offset=offset, key=None, value=value)
        for offset, value in enumerate(values)
    ]
    return apply_batch(application, records)


def test_every_generated_event_encodes_to_the_same_bytes(application: BillingApplication) -> None:
    outcome = apply_traffic(application, 5)
    assert outcome.counters.applied > outcome.counters.consumed // 2
    stored = application.recorder.select_notifications(start=1, limit=1_000_000)
    topics = {notification.topic for notification in stored}
    assert any("RoamingCdr" in topic for topic in topics), topics
    assert assert_same_bytes(application, iter(stored)) == len(stored)


def test_strings_numbers_and_nesting_are_spelled_as_the_library_spells_them() -> None:
    text = "".join(map(chr, range(0x80))) + "é€😀\u2028\u2029\ufeff\x7f\x80\x9f"
    state = {
        "text": text,
        text: [0, -1, 2**63 - 1, -(2**63), 2**64 - 1, True, False, None, {}, [], ("a", 1)],
        "at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        "rate": Decimal("0.20"),
        "nested": {"deeper": [{"amount_minor": 1999, "currency": "EUR"}]},
    }
    library, fast = transcoders(BillingApplication())
    assert fast.encode(state) == library.encode(state)
    assert fast.decode(fast.encode(state)) == library.decode(library.encode(state))


@cache
def _plain_transcoders() -> tuple[JSONTranscoder, FastJSONTranscoder]:
    return transcoders(BillingApplication())


_ZONES = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=2)),
        timezone(timedelta(hours=-9, minutes=-30)),
        timezone(timedelta(seconds=30)),  # orjson would drop its seconds
        timezone(timedelta(hours=1, microseconds=5)),
        ZoneInfo("Europe/Berlin"),
    ]
)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(at=st.datetimes(timezones=st.none() | _ZONES))
def test_datetimes_of_any_zone_are_spelled_as_the_library_spells_them(at: datetime) -> None:
    library, fast = _plain_transcoders()
    state = {"at": at, "in": [at, {"at": at}]}
    assert fast.encode(state) == library.encode(state)
    assert fast.encode({"huge": 2**64, "at": at}) == library.encode({"huge": 2**64, "at": at})


def test_what_orjson_refuses_goes_through_the_library_encoder() -> None:
    library, fast = transcoders(BillingApplication())
    for state in ({"huge": 2**64}, {"n": -(2**63) - 1}, {1: "int key"}):
        assert fast.encode(state) == library.encode(state)
    with pytest.raises(TranscodingNotRegisteredError):
        fast.encode({"unknown": object()})


def test_what_orjson_cannot_read_goes_through_the_library_decoder() -> None:
    library, fast = transcoders(BillingApplication())
    for data in (b'{"n": NaN}', b'{"huge": 18446744073709551616}', b'{"x": 1e400}'):
        assert repr(fast.decode(data)) == repr(library.decode(data))
    for bad in (b'{"bad": "\xff"}', b'{"cut": '):
        with pytest.raises(ValueError) as by_library:
            library.decode(bad)
        with pytest.raises(ValueError) as by_fast:
            fast.decode(bad)
        assert type(by_fast.value) is type(by_library.value)
        assert str(by_fast.value) == str(by_library.value)


def test_nested_transcoded_values_are_decoded_innermost_first() -> None:
    library, fast = transcoders(BillingApplication())
    data = (
        b'{"a":[{"_type_":"decimal_str","_data_":"1.50"},[{"k":{"_type_":"datetime_iso",'
        b'"_data_":"2026-01-02T03:04:05+00:00"}}]],"b":{"_type_":"x","_data_":1,"more":2},'
        b'"c":{"_type_":"decimal_str"}}'
    )
    assert repr(fast.decode(data)) == repr(library.decode(data))
    with pytest.raises(TranscodingNotRegisteredError):
        fast.decode(b'{"a":[{"_type_":"unknown","_data_":1}]}')


def test_a_datetime_transcoding_of_its_own_is_used_as_registered() -> None:
    class DatetimeAsTimestamp(Transcoding):
        type = datetime
        name = "datetime_ts"

        def encode(self, obj: datetime) -> float:
            return obj.timestamp()

        def decode(self, data: float) -> datetime:
            return datetime.fromtimestamp(data, UTC)

    library, fast = transcoders(BillingApplication())
    for transcoder in (library, fast):
        transcoder.register(DatetimeAsTimestamp())
    state = {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    assert (
        fast.encode(state)
        == library.encode(state)
        == b'{"at":{"_type_":"datetime_ts","_data_":1767323045.0}}'
    )


def test_a_decimal_transcoding_of_its_own_is_used_as_registered() -> None:
    class DecimalAsPair(Transcoding):
        type = Decimal
        name = "decimal_pair"

        def encode(self, obj: Decimal) -> list[int]:
            numerator, denominator = obj.as_integer_ratio()
            return [numerator, denominator]

        def decode(self, data: list[int]) -> Decimal:
            return Decimal(data[0]) / data[1]

    library, fast = transcoders(BillingApplication())
    for transcoder in (library, fast):
        transcoder.register(DecimalAsPair())
    state = {"rate": Decimal("0.25")}
    assert (
        fast.encode(state)
        == library.encode(state)
        == b'{"rate":{"_type_":"decimal_pair","_data_":[1,4]}}'
    )


def test_encoded_events_hold_no_more_memory_than_their_bytes() -> None:
    # The ledger's record cache keeps tens of thousands of encoded events: orjson's own
    # bytes kept a 4 KiB buffer each (80 MiB more peak memory for ingest).
    _, fast = transcoders(BillingApplication())
    state = {"session_id": "S-1", "amount_minor": 1999, "note": "x" * 100}
    tracemalloc.start()
    try:
        kept = [fast.encode({**state, "n": n}) for n in range(2_000)]
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 4 * sum(len(encoded) for encoded in kept)


_TRANSCODERS = transcoders(BillingApplication())


def outcome(decode: Callable[[bytes], Any], data: bytes) -> tuple[str, ...]:
    """What a decoder makes of ``data``: the value's repr (which tells Decimal("1.0") from
    Decimal("1.00") and 1 from True), or the error's type and message."""
    try:
        return ("value", repr(decode(data)))
    except Exception as error:  # compared, not swallowed: the library's error is the spec
        return ("error", type(error).__name__, str(error))


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    # Where orjson's integers end (past them it reads a float, which the library does not).
    st.sampled_from([2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 2**70]),
    st.floats(),  # NaN and infinities included
    st.text(),
)
_TRANSCODED = st.one_of(
    st.builds(
        lambda data: {"_type_": "decimal_str", "_data_": data},
        st.sampled_from(["1.50", "-0", "1E+3", "0.000", "not a number"]),
    ),
    st.builds(
        lambda data: {"_type_": "datetime_iso", "_data_": data},
        st.sampled_from(
            ["2026-01-02T03:04:05+00:00", "2026-01-02T03:04:05.123456+02:00", "2026-01-02"]
        ),
    ),
    st.builds(lambda data: {"_type_": "uuid_hex", "_data_": data}, st.just("0" * 31 + "1")),
    st.builds(lambda name: {"_type_": name, "_data_": 1}, st.sampled_from(["unknown", ""])),
)
_DOCUMENTS = st.recursive(
    st.one_of(_SCALARS, _TRANSCODED),
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.one_of(st.text(max_size=3), st.sampled_from(["_type_", "_data_"])),
            children,
            max_size=4,
        ),
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENTS, ascii_only=st.booleans())
def test_any_json_document_decodes_to_the_library_decoders_value_or_error(
    document: Any, ascii_only: bool
) -> None:
    """Generated documents (transcoded values, bad ones, huge integers, NaN, any text,
    nesting) give the library decoder's value, or its error, whichever decoder runs."""
    library, fast = _plain_transcoders()
    data = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    assert outcome(fast.decode, data) == outcome(library.decode, data)


def test_known_difference_an_earlier_value_of_a_repeated_key_is_not_revived() -> None:
    """The one known difference (store/fast_json.py says so): an object's repeated key keeps
    its last value in both, but only the library revives, and so may fail on, the earlier."""
    library, fast = _plain_transcoders()
    data = b'{"a":{"_type_":"unknown","_data_":1},"b":2,"a":3}'
    assert outcome(fast.decode, data) == ("value", repr({"a": 3, "b": 2}))
    assert outcome(library.decode, data)[:2] == ("error", "TranscodingNotRegisteredError")
    harmless = b'{"a":{"_type_":"decimal_str","_data_":"1"},"b":2,"a":3}'
    assert outcome(fast.decode, harmless) == outcome(library.decode, harmless)


def test_a_transcoding_of_its_own_under_a_library_name_decodes_its_values() -> None:
    class NaiveAsUTC(Transcoding):
        type = datetime
        name = "datetime_iso"

        def encode(self, obj: datetime) -> str:
            return obj.astimezone(UTC).replace(tzinfo=None).isoformat()

        def decode(self, data: str) -> datetime:
            return datetime.fromisoformat(data).replace(tzinfo=UTC)

    library, fast = transcoders(BillingApplication())
    for transcoder in (library, fast):
        transcoder.register(NaiveAsUTC())
    data = b'{"at":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05"}}'
    assert (
        fast.decode(data)
        == library.decode(data)
        == {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)}
    )
