"""The Kafka factory's mapper and event store (store/factory.py): the fast ones by default,
the library's mapper when MAPPER_TOPIC names it, and the configured cipher and compressor
in either. Building them touches no broker: the recorders are the only Kafka parts."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.compressor import ZlibCompressor
from eventsourcing.cryptography import AESCipher
from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.popo import POPOApplicationRecorder

from domain.application import BillingApplication
from store.factory import KafkaFactory
from store.fast_events import FastEventStore, FastMapper
from store.fast_json import FastJSONTranscoder
from tests.unit.store.test_fast_json import golden, transcoders

KAFKA = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "KAFKA_LEDGER_TOPIC": "ledger"}
SECRET = {
    "COMPRESSOR_TOPIC": "eventsourcing.compressor:ZlibCompressor",
    "CIPHER_TOPIC": "eventsourcing.cryptography:AESCipher",
    "CIPHER_KEY": AESCipher.create_key(16),
}


def test_the_factory_gives_the_fast_mapper_and_event_store_by_default() -> None:
    factory = KafkaFactory(KAFKA)
    mapper = factory.mapper()
    assert type(mapper) is FastMapper
    assert type(mapper.transcoder) is FastJSONTranscoder
    assert mapper.cipher is None
    assert mapper.compressor is None
    store = factory.event_store(recorder=POPOApplicationRecorder())
    assert type(store) is FastEventStore
    assert type(store.mapper) is FastMapper


def test_mapper_topic_gives_the_library_s_mapper() -> None:
    factory = KafkaFactory({**KAFKA, "MAPPER_TOPIC": "eventsourcing.persistence:Mapper"})
    assert type(factory.mapper()) is Mapper
    store = factory.event_store(recorder=POPOApplicationRecorder())
    assert type(store.mapper) is Mapper


def test_a_given_mapper_class_is_used() -> None:
    assert type(KafkaFactory(KAFKA).mapper(mapper_class=Mapper)) is Mapper


def test_transcoder_topic_gives_the_library_s_transcoder() -> None:
    factory = KafkaFactory(
        {**KAFKA, "TRANSCODER_TOPIC": "eventsourcing.persistence:JSONTranscoder"}
    )
    mapper = factory.mapper()
    assert type(mapper) is FastMapper
    assert type(mapper.transcoder) is JSONTranscoder


@pytest.mark.parametrize("mapper_topic", [None, "eventsourcing.persistence:Mapper"])
def test_the_configured_cipher_and_compressor_serve_either_mapper(
    application: BillingApplication, mapper_topic: str | None
) -> None:
    env: dict[str, Any] = {**KAFKA, **SECRET}
    if mapper_topic:
        env["MAPPER_TOPIC"] = mapper_topic
    factory = KafkaFactory(env)
    library, fast = transcoders(application)
    mapper = factory.mapper(transcoder=fast)
    assert type(mapper) is (Mapper if mapper_topic else FastMapper)
    assert isinstance(mapper.compressor, ZlibCompressor)
    assert isinstance(mapper.cipher, AESCipher)
    # What it stores is the library's mapper's, compressed then encrypted with that key.
    reference = Mapper[UUID](library, cipher=AESCipher(factory.env), compressor=ZlibCompressor())
    plain = Mapper[UUID](library)
    for stored in list(golden())[:40]:
        event = plain.to_domain_event(stored)
        made = mapper.to_stored_event(event)
        assert made.state != stored.state  # encrypted: not the plain JSON
        assert reference.to_domain_event(made) == event
        clear = ZlibCompressor().decompress(AESCipher(factory.env).decrypt(made.state))
        assert clear == plain.to_stored_event(event).state
