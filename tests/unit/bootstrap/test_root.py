"""The composition root: the backends it chooses, and an environment only from the settings."""

from __future__ import annotations

import dataclasses
import gc
from pathlib import Path

import pytest

from bootstrap import Settings, bootstrap
from bootstrap.ledgers import EmbeddedLedger, KafkaLedger, NeedsKafka, NotEmbedded
from projections.databases.port import Database
from projections.gc_pacing import (
    INGEST_YOUNG_THRESHOLD,
    PROJECTOR_YOUNG_THRESHOLD,
    YOUNG_THRESHOLD,
    fewer_collections,
)
from replay.home_duckdb import DuckHome
from replay.home_postgres import PostgresHome
from replay.home_sqlite import SqliteHome


def same_database(queried: Database, live: Database) -> bool:
    """A query's database (opened without replay's homes) is the home's live one."""
    return type(queried) is type(live) and vars(queried) == vars(live)


def test_embedded_default_is_chosen_without_kafka(tmp_path: Path) -> None:
    root = bootstrap(Settings.embedded_in(tmp_path))
    assert isinstance(root.ledger, EmbeddedLedger)
    assert isinstance(root.views, SqliteHome)
    assert isinstance(root.analytics, DuckHome)
    assert same_database(root.views_database(), root.views.live())
    with pytest.raises(NeedsKafka, match="EVLEDGER_KAFKA_BOOTSTRAP"):
        root.ledger.kafka("publish")


def test_kafka_and_postgres_are_chosen_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9",
        pg_dsn="postgresql://u:p@127.0.0.1:9/db",
        data_dir=tmp_path,
        topic_prefix="shop",
    )
    root = bootstrap(settings)
    assert isinstance(root.ledger, KafkaLedger)
    assert isinstance(root.views, PostgresHome)
    assert same_database(root.views_database(), root.views.live())
    assert root.ledger.kafka("ingest").ledger_topic == "shop.ledger"
    with pytest.raises(NotEmbedded):
        root.ledger.import_target()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("IS_SNAPSHOTTING_ENABLED", "y"),
        ("AGGREGATE_CACHE_MAXSIZE", "7"),
        ("PERSISTENCE_MODULE", "eventsourcing.popo"),
    ],
)
def test_a_library_key_in_the_shell_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, key: str, value: str
) -> None:
    monkeypatch.setenv(key, value)
    root = bootstrap(Settings.embedded_in(tmp_path))
    application = root.application()
    try:
        assert application.snapshots is None
        assert application.repository.cache is None
        assert key not in application.env or key == "PERSISTENCE_MODULE"
        assert application.env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite"
    finally:
        root.close()


def test_the_record_cache_is_sized_by_its_setting(tmp_path: Path) -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, record_cache_size=123)
    assert bootstrap(settings).ledger.environment()["KAFKA_CACHE_RECORDS"] == "123"
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, record_cache_size=-1)


def test_the_index_cache_is_sized_by_its_setting_on_every_shard(tmp_path: Path) -> None:
    from store.factory import KafkaFactory

    settings = Settings(
        kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, index_cache_mib=3, ledger_shards=2
    )
    ledger = bootstrap(settings).ledger
    for shard in (ledger, ledger.shard(1)):
        assert shard.environment()["KAFKA_INDEX_CACHE_KIB"] == str(3 * 1024)
    assert KafkaFactory(ledger.environment()).index_cache_kib == 3 * 1024
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        Settings(kafka_bootstrap="127.0.0.1:9", data_dir=tmp_path, index_cache_mib=0)


def test_duckdb_memory_is_bounded_by_its_setting(tmp_path: Path) -> None:
    root = bootstrap(Settings(data_dir=tmp_path, duckdb_memory_limit_mib=48))
    for db in (root.analytics_database(), root.analytics.rebuild_place("t").db):
        try:
            limit = db.execute("SELECT current_setting('memory_limit') AS m")[0]["m"]
        finally:
            db.close()
        assert limit.replace(" ", "") in ("48.0MiB", "48MiB"), limit


def test_the_read_model_names_are_the_classes_names() -> None:
    from bootstrap.read_models import ANALYTICS, READ_MODEL_NAMES, read_model_classes

    assert tuple(read_model_classes()) == READ_MODEL_NAMES
    assert ANALYTICS in READ_MODEL_NAMES


def test_a_rebuild_s_other_processes_use_the_analytics_file_its_own_resolved(
    tmp_path: Path,
) -> None:
    """A symlinked analytics path retargeted during a sharded rebuild: the shard processes
    still make their part files beside the file the rebuild's process resolved."""
    first, second, link = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "link.duckdb"
    link.symlink_to(first.name)
    root = bootstrap(dataclasses.replace(Settings.embedded_in(tmp_path), duckdb_path=link))
    assert root.analytics.file == first
    link.unlink()
    link.symlink_to(second.name)
    other = root.for_another_process()
    assert other.analytics.file == first
    assert other.analytics.path == link  # the readers' copy stays beside the link
    assert bootstrap(root.settings).analytics.file == second


def test_a_projector_keeps_the_default_collection_pace_for_ingest_beside_it(
    tmp_path: Path,
) -> None:
    # `evledger run`: ingest's batches inside the projector's block collect at ingest's
    # pace, not at the one `evledger project` takes for a projector alone in its process.
    root = bootstrap(Settings.embedded_in(tmp_path))
    try:
        with root.projector():
            assert gc.get_threshold()[0] == YOUNG_THRESHOLD < PROJECTOR_YOUNG_THRESHOLD
            with fewer_collections(INGEST_YOUNG_THRESHOLD):
                assert gc.get_threshold()[0] == INGEST_YOUNG_THRESHOLD
    finally:
        root.close()
