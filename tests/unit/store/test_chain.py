"""The chain hash is the canonical content its docstring specifies, part by part, and a
record chained by the writer is the record its constructor makes.

The reference here updates SHA-256 with each part in turn, as the ledger's first writer
did; every ledger already written holds hashes made so.
"""

from __future__ import annotations

import hashlib
import struct
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from hypothesis import given
from hypothesis import strategies as st

from store.records import GENESIS_HASH, LedgerRecord, chain_hash


def reference_hash(  # noqa: PLR0917 - the canonical content, field by field
    prev_hash: bytes,
    notification_id: int,
    originator_id: str,
    version: int,
    topic: str,
    state: bytes,
) -> bytes:
    digest = hashlib.sha256()
    digest.update(prev_hash)
    digest.update(struct.pack(">QI", notification_id, len(originator_id.encode())))
    digest.update(originator_id.encode())
    digest.update(struct.pack(">qI", version, len(topic.encode())))
    digest.update(topic.encode())
    digest.update(struct.pack(">Q", len(state)))
    digest.update(state)
    return digest.digest()


# A record's parts (Parts) in chain_hash's order: previous hash, number, originator, version,
# topic, state.
Parts = tuple[bytes, int, str, int, str, bytes]
_PARTS = st.tuples(
    st.binary(min_size=32, max_size=32),
    st.integers(0, 2**64 - 1),
    st.text(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(),
    st.binary(max_size=4096),
)


@given(parts=_PARTS)
def test_the_hash_is_the_canonical_content_s(parts: Parts) -> None:
    assert chain_hash(*parts) == reference_hash(*parts)


@given(
    uuid_int=st.integers(0, 2**128 - 1),
    version=st.integers(1, 2**40),
    topic=st.text(min_size=1),
    state=st.binary(max_size=2048),
    notification_id=st.integers(1, 2**40),
)
def test_a_chained_record_is_the_record_its_constructor_makes(
    uuid_int: int, version: int, topic: str, state: bytes, notification_id: int
) -> None:
    stored = StoredEvent(
        originator_id=UUID(int=uuid_int), originator_version=version, topic=topic, state=state
    )
    chained = LedgerRecord.chained(GENESIS_HASH, notification_id, stored)
    made = LedgerRecord(
        notification_id=notification_id,
        originator_id=str(stored.originator_id),
        originator_version=version,
        topic=topic,
        state=state,
        prev_hash=GENESIS_HASH,
        hash=reference_hash(
            GENESIS_HASH, notification_id, str(stored.originator_id), version, topic, state
        ),
    )
    assert chained == made
    assert hash(chained) == hash(made)
    assert repr(chained) == repr(made)
    assert vars(chained) == vars(made)
    assert chained.verify()
    assert LedgerRecord.chained(chained.hash, notification_id + 1, stored, "text id").prev_hash == (
        chained.hash
    )
