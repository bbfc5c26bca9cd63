"""The embedded default (no services): rebuild and swap in the SQLite views file and the
DuckDB analytics file, tampering caught, and point-in-time snapshots of the SQLite ledger."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from bootstrap import bootstrap
from bootstrap.settings import Settings
from domain.application import BillingApplication
from projections.databases.duckdb import DuckDatabase
from tests.integration.replay.conftest import (
    live_contents,
    prefix_contents,
    project_all,
    run_replay,
    traffic_commands,
    write,
)


def test_embedded_rebuild_and_snapshots(tmp_path: Path) -> None:
    settings = Settings.embedded_in(tmp_path / "data")
    commands = traffic_commands(seed=5)
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    cut = len(commands) // 2
    prefix_head = write(app, commands[:cut])
    time.sleep(0.05)
    moment = datetime.now(UTC)
    time.sleep(0.05)
    head = write(app, commands[cut:])
    app.close()
    project_all(settings)
    before = live_contents(settings)

    result = run_replay(settings, "rebuild")
    assert result.exit_code == 0, result.output
    assert result.output.count("swapped in") == 2
    assert live_contents(settings) == before
    leftovers = sorted(p.name for p in settings.data_dir.iterdir() if "rebuild" in p.name)
    assert leftovers == []

    # Tamper with the SQLite refund status and delete an analytics fact.
    with sqlite3.connect(settings.data_dir / "read_models.sqlite3") as connection:
        connection.execute("UPDATE refund_status SET status = 'issued' WHERE status = 'rejected'")
    import duckdb

    with duckdb.connect(str(settings.analytics_path)) as connection:
        connection.execute(
            "DELETE FROM fact_postings WHERE notification_id = (SELECT MAX(notification_id)"
            " FROM fact_postings)"
        )
    result = run_replay(settings, "rebuild")
    assert result.exit_code == 1, result.output
    assert "checksums differ for refund_status.refund_status:" in result.output
    assert "checksums differ for analytics.fact_postings:" in result.output
    assert live_contents(settings) != before
    result = run_replay(settings, "rebuild", "--force")
    assert result.exit_code == 0, result.output
    assert live_contents(settings) == before

    # Snapshots: a notification id, and a time, on the embedded ledger.
    expected_dir = tmp_path / "expected"
    expected_dir.mkdir()
    expected = prefix_contents(
        settings, prefix_head, Settings.embedded_in(expected_dir), list(before)
    )
    result = run_replay(settings, "snapshot", "--until-offset", str(prefix_head), "--into", "half")
    assert result.exit_code == 0, result.output
    assert "export EVLEDGER_DATA_DIR=" in result.output
    pointed = Settings.embedded_in(settings.data_dir / "snapshots" / "half")
    assert live_contents(pointed) == expected
    result = run_replay(settings, "snapshot", "--as-of", moment.isoformat())
    assert result.exit_code == 0, result.output
    label = "asof_" + moment.strftime("%Y%m%dt%H%M%Sz")
    assert live_contents(Settings.embedded_in(settings.data_dir / "snapshots" / label)) == expected
    assert live_contents(settings) == before
    result = run_replay(settings, "snapshot", "--until-offset", str(head + 1))
    assert result.exit_code == 1 and f"ends at notification {head}" in result.output


def test_a_refused_analytics_rename_is_reported_and_the_views_swap_stands(
    tmp_path: Path,
) -> None:
    """DuckDB's rename, the last step of the analytics' swap, refused after the views were
    swapped in: the analytics are kept and reported with their comparisons."""
    settings = Settings.embedded_in(tmp_path / "data")
    app = BillingApplication(env=bootstrap(settings).ledger.environment())
    write(app, traffic_commands(seed=6))
    app.close()
    project_all(settings)
    before = live_contents(settings)
    # Shares the rebuild's DuckDB instance (one per path in a process), so the live file
    # is still open when the swap closes its own connection.
    held = DuckDatabase(settings.analytics_path, memory_limit_mib=settings.duckdb_memory_limit_mib)
    held.execute("SELECT 1")
    try:
        result = run_replay(settings, "rebuild")
    finally:
        held.close()
    assert result.exit_code == 1, result.output
    assert "swapped in payment_history, refund_status" in result.output
    assert "kept the live analytics:" in result.output
    assert "is open elsewhere" in result.output
    assert '"projection": "analytics", "table": "fact_postings"' in result.output
    assert live_contents(settings) == before
