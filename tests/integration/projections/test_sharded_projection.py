"""A sharded ledger's read models: the same traffic on 1 shard and on 3 (routed as
`evledger publish` routes it) projects to the same rows, each read model keeping one
position per shard."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings
from consumers.contract import parse_message
from consumers.routing import SessionRouter
from consumers.translate import to_command
from demo.traffic import TrafficShape, generate
from projections.databases.postgres import drop_schema
from tests.integration.replay.conftest import create_schema, dsn_in_schema
from tests.integration.store.conftest import delete_topics

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SHARDS = 3


@pytest.fixture
def settings_for(kafka_bootstrap: str, pg_dsn: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Settings] = []
    schemas: list[str] = []

    def make(shards: int) -> Settings:
        schema = f"test_shards_{uuid.uuid4().hex[:10]}"
        create_schema(pg_dsn, schema)
        schemas.append(schema)
        settings = Settings(
            kafka_bootstrap=kafka_bootstrap,
            pg_dsn=dsn_in_schema(pg_dsn, schema),
            topic_prefix=f"test.shards.{uuid.uuid4().hex[:10]}",
            data_dir=tmp_path / schema,
            ledger_shards=shards,
        )
        made.append(settings)
        return settings

    yield make
    for schema in schemas:
        drop_schema(pg_dsn, schema)
    for settings in made:
        site = bootstrap(settings).ledger.kafka("cleanup")
        delete_topics(
            kafka_bootstrap,
            [*site.ledger_topics, *(f"{topic}.snapshots" for topic in site.ledger_topics)],
        )


def write_routed(settings: Settings, messages: list[dict[str, Any]]) -> list[int]:
    """Each message applied to the shard the publisher routes it to; each shard's size."""
    root = bootstrap(settings)
    router = SessionRouter(settings.ledger_shards)
    per_shard: list[list[Any]] = [[] for _ in range(settings.ledger_shards)]
    for message in messages:
        raw = json.dumps(message).encode()
        route = router.route(raw) if settings.ledger_shards > 1 else None
        shards = (
            [0]
            if route is None
            else range(settings.ledger_shards)
            if route.everywhere
            else [route.partition]
        )
        for shard in shards:
            assert shard is not None
            per_shard[shard].append(to_command(parse_message(raw)))
    sizes = []
    try:
        for shard, commands in enumerate(per_shard):
            application = root.application(shard)
            for start in range(0, len(commands), 300):
                application.handle_batch(commands[start : start + 300])
            sizes.append(application.recorder.max_notification_id() or 0)
    finally:
        root.close()
    return sizes


# When each ledger recorded an event: two ledgers written at different moments differ there.
RECORDING_TIMES = ("recorded_at", "priced_at")


def rows(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """Every read model's rows (without recording times, and with fact_postings' and
    fact_rejections' ledger positions left out: they are where each ledger put the event),
    and its positions as the projector reports them."""
    root = bootstrap(settings)
    with root.projector() as runner:
        runner.run_until_idle()
        positions = runner.positions()
    models = root.read_models()
    try:
        return {model.name: comparable(model.snapshot()) for model in models}, positions
    finally:
        for model in models:
            model.db.close()


def comparable(tables: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    positional = {"notification_id", *RECORDING_TIMES}
    return {
        table: sorted(
            tuple(sorted((k, repr(v)) for k, v in row.items() if k not in positional))
            for row in found
        )
        for table, found in tables.items()
    }


def test_one_shard_and_three_shards_project_the_same_read_models(settings_for: Any) -> None:
    messages = generate(seed=5, shape=TrafficShape(stations=5, customers=60))
    one, three = settings_for(1), settings_for(SHARDS)
    (single,) = write_routed(one, messages)
    sizes = write_routed(three, messages)
    assert len(sizes) == SHARDS and all(sizes)
    single_rows, single_positions = rows(one)
    sharded_rows, sharded_positions = rows(three)
    assert set(single_positions.values()) == {single}
    # Positions add up over the shards: every event of every shard was applied once.
    assert set(sharded_positions.values()) == {sum(sizes)}
    assert sharded_rows == single_rows
    assert any(table for model in single_rows.values() for table in model.values())
