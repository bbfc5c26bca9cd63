"""`ingest --until-idle` stops after the batch that catches up with the topic, without
waiting out an empty poll first, and never before the topic's last message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from cli.pipeline import _kafka_ingest
from consumers.ingest import StopFlag
from consumers.producer import publish_file
from demo.traffic import TrafficShape, generate

pytestmark = pytest.mark.kafka

BATCH = 100


def test_until_idle_stops_after_the_last_batch_without_an_empty_poll(
    kafka_bootstrap: str, prefix: str, tmp_path: Path
) -> None:
    messages = generate(seed=4, shape=TrafficShape(stations=2, customers=20))[:450]
    upstream = tmp_path / "upstream.jsonl"
    upstream.write_text("".join(json.dumps(message) + "\n" for message in messages))
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix, data_dir=tmp_path)
    root = bootstrap(settings)
    try:
        ingest = _kafka_ingest(root, BATCH)
        site = root.ledger.kafka("test")
        publish_file(upstream, site.connection, site.ingest_topic)
        polls: list[int] = []
        poll = ingest.consumer.poll

        def counted(*args: Any, **kwargs: Any) -> Any:
            polled = poll(*args, **kwargs)
            polls.append(sum(len(records) for records in polled.values()))
            return polled

        ingest.consumer.poll = counted  # type: ignore[method-assign]
        try:
            counters = ingest.run(StopFlag(), until_idle=True)
        finally:
            ingest.close()
    finally:
        root.close()
    assert counters.consumed == len(messages)
    # The group join may answer a poll or two empty; after the first records, none is.
    first = next(index for index, count in enumerate(polls) if count)
    assert all(polls[first:]), polls
    assert sum(polls) == len(messages)
