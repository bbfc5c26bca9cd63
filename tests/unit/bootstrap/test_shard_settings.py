"""EVLEDGER_LEDGER_SHARDS: one shard by default and on the embedded default; a bad value is
one line naming the variable; each shard of a Kafka ledger is its own topic."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap import bootstrap
from bootstrap.settings import Settings, SettingsError, load_settings


def test_one_shard_by_default(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.ledger_shards == 1
    assert bootstrap(settings).ledger.shards == 1


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "100000"])
def test_a_bad_shard_count_is_one_line(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLEDGER_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    monkeypatch.setenv("EVLEDGER_LEDGER_SHARDS", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("EVLEDGER_LEDGER_SHARDS: ")
    assert "\n" not in message


def test_the_embedded_default_has_one_shard(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLEDGER_LEDGER_SHARDS", "3")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "EVLEDGER_LEDGER_SHARDS" in str(caught.value)
    assert "EVLEDGER_KAFKA_BOOTSTRAP" in str(caught.value)
    # The embedded default built on purpose ignores the shell's shard count.
    assert Settings.embedded_in(Path("x")).ledger_shards == 1


def test_each_shard_is_its_own_ledger_topic(tmp_path: Path) -> None:
    settings = Settings(
        kafka_bootstrap="127.0.0.1:9092", topic_prefix="p", data_dir=tmp_path, ledger_shards=3
    )
    ledger = bootstrap(settings).ledger
    assert ledger.shards == 3
    topics = [ledger.shard(shard).environment()["KAFKA_LEDGER_TOPIC"] for shard in range(3)]
    # Shard 0 is the unsharded ledger's topic: a ledger from before shards is its shard 0.
    assert topics == ["p.ledger", "p.ledger.1", "p.ledger.2"]
    assert ledger.environment() == ledger.shard(0).environment()
    assert ledger.kafka("test").ledger_topics == topics
    with pytest.raises(ValueError, match="no shard 3"):
        ledger.shard(3)
    embedded = bootstrap(Settings(data_dir=tmp_path)).ledger
    assert embedded.shard(0) is embedded
    with pytest.raises(ValueError, match="one shard"):
        embedded.shard(1)
