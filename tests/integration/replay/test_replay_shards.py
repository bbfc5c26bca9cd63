"""Replay reads the ledger as one log: on a sharded ledger it refuses in one line naming
the shards, instead of rebuilding from shard 0 alone."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import replay as replay_commands

pytestmark = [pytest.mark.kafka]


@pytest.mark.parametrize(
    "arguments", [["rebuild"], ["snapshot", "--until-offset", "5", "--into", "five"]]
)
def test_replay_of_a_sharded_ledger_refuses_in_one_line(
    kafka_bootstrap: str, tmp_path: Path, arguments: list[str]
) -> None:
    result = CliRunner().invoke(
        replay_commands.app,
        [arguments[0], "--no-progress", *arguments[1:]],
        env={
            "EVLEDGER_KAFKA_BOOTSTRAP": kafka_bootstrap,
            "EVLEDGER_TOPIC_PREFIX": f"test.replay-shards.{uuid.uuid4().hex[:8]}",
            "EVLEDGER_DATA_DIR": str(tmp_path),
            "EVLEDGER_LEDGER_SHARDS": "2",
        },
    )
    assert result.exit_code == 1, result.output
    assert "2 shards" in result.stderr
    assert "not supported on a sharded ledger yet" in result.stderr
