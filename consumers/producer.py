"""`evledger publish`: upstream messages from a JSON Lines file onto the ingest topic.

Each line is sent byte for byte (ingest, not the publisher, judges validity, so a bad
line reaches the dead-letter topic with its reason instead of vanishing here). The key
keeps one business object's messages in order: the session id for session messages,
the payment id for payment messages and refund requests, the refund id for the rest of
a refund's life. A sharded ledger routes by the session instead (consumers/routing.py).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError

from consumers import strict_json
from store.kafka_clients import KafkaConnection

# Kafka's largest record on our broker is 16 MiB; leave room for the record overhead.
MAX_MESSAGE_BYTES = 15 * 1024 * 1024
# kafka-python's record accumulator has no memory bound (3.x has no buffer_memory): lines
# read faster than the broker takes them would pile up in it, a large file whole (559 MiB
# for 621,000 messages). Waiting for the broker's acknowledgements every so many messages
# bounds what is held, and lets the progress count only messages the broker has taken.
ACKNOWLEDGED_EVERY = 5_000
_KEY_FIELDS = {
    "session": ("session_id",),
    "payment": ("payment_id",),
    "tariff": ("tariff_id",),
    "refund.requested": ("payment_id", "refund_id"),
    "refund": ("refund_id",),
}


@dataclass(frozen=True)
class PublishReport:
    published: int
    blank_lines: int


class PublishRefused(RuntimeError):
    """Kafka refused messages that were sent (after its own retries)."""


def routing_key(raw: bytes) -> bytes | None:
    """The partition key of one message; None when the line is not a JSON object."""
    try:
        # Strict and depth-bounded: a line nested 100,000 deep must not crash the publisher.
        document: Any = strict_json.loads(raw.decode("utf-8"))
    except (strict_json.JsonRefused, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return None
    message_type = str(document.get("type", ""))
    family = message_type if message_type in _KEY_FIELDS else message_type.partition(".")[0]
    for field in _KEY_FIELDS.get(family, ()):
        value = document.get(field)
        if isinstance(value, str) and value:
            return value.encode()
    return None


def read_lines(path: Path) -> Iterator[bytes]:
    """Every line of a JSON Lines file, blank ones too (callers count them), without its
    line ending."""
    with path.open("rb") as file:
        for line in file:
            stripped = line.rstrip(b"\r\n")
            yield stripped


def publish_file(
    path: Path,
    connection: KafkaConnection,
    topic: str,
    on_progress: Callable[[int], None] = lambda sent: None,
    shards: int = 1,
    *,
    acknowledged_every: int = ACKNOWLEDGED_EVERY,
) -> PublishReport:
    """Send every non-blank line; with more than one ledger shard, by the routing rule of
    consumers/routing.py (tariffs to every partition). ``on_progress`` is told how many
    messages the broker has acknowledged, every ``acknowledged_every``; a message Kafka
    refuses stops the publishing with ``PublishRefused`` at the next acknowledgement."""
    from consumers.routing import SessionRouter

    producer = connection.producer(
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # A missing topic (the broker does not auto-create) fails in seconds, not a minute.
        max_block_ms=15_000,
        max_request_size=MAX_MESSAGE_BYTES + 1024 * 1024,
        client_id="evledger-publish",
    )
    router = SessionRouter(shards) if shards > 1 else None
    pending: list[Any] = []  # this stretch's sends, until the broker has answered them
    published = blank = 0
    taken = 0  # messages the broker has acknowledged

    def acknowledged() -> None:
        nonlocal taken
        with contextlib.suppress(KafkaError):
            # A batch the broker found too large is split and retried, and kafka-python's
            # flush can then fail although every record was answered: each send says.
            producer.flush(timeout=60)
        refused = [error for error in map(_refusal, pending) if error is not None]
        if refused:
            raise PublishRefused(
                f"Kafka refused {len(refused)} send(s) among messages {taken + 1}..{published} "
                f"of {path.name} (the ones before were published): {refused[0]!r}"
            )
        pending.clear()
        taken = published
        on_progress(published)

    try:
        for line in read_lines(path):
            if not line.strip():
                blank += 1
                continue
            if router is None:
                pending.append(producer.send(topic, key=routing_key(line), value=line))
            else:
                route = router.route(line)
                partitions = range(shards) if route.everywhere else [route.partition]
                pending.extend(
                    producer.send(topic, key=route.key, value=line, partition=partition)
                    for partition in partitions
                )
            published += 1
            if published % acknowledged_every == 0:
                acknowledged()
        acknowledged()
    finally:
        producer.close(timeout=10)
    return PublishReport(published=published, blank_lines=blank)


def _refusal(sent: Any) -> BaseException | None:
    """The error of one send once the broker has answered it (None: acknowledged)."""
    try:
        sent.get(timeout=60)
    except KafkaError as error:
        refused: BaseException = error
        return refused
    return None
