"""The `audit` sub-app on the embedded default: exit codes and what it prints."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from bootstrap.settings import Settings
from cli.audit import app
from tests.unit.audit.conftest import refunded_payment

runner = CliRunner()


def env(settings: Settings) -> dict[str, str | None]:
    return {"EVLEDGER_DATA_DIR": str(settings.data_dir), "EVLEDGER_KAFKA_BOOTSTRAP": None}


def test_verify_export_import_and_trail_from_the_command_line(
    embedded: Settings, tmp_path: Path, traffic: list[dict[str, object]]
) -> None:
    result = runner.invoke(app, ["verify", "--format", "json"], env=env(embedded))
    assert result.exit_code == 0, result.output
    checks = {row["check"]: row["result"] for row in json.loads(result.stdout)}
    assert checks["hash chain"].startswith("NOT checked")

    out = tmp_path / "export"
    result = runner.invoke(
        app, ["export", "--format", "jsonl", "--out", str(out)], env=env(embedded)
    )
    assert result.exit_code == 0, result.output
    assert (out / "manifest.json").exists()

    result = runner.invoke(app, ["verify", "--export", str(out), "--format", "csv"])
    assert result.exit_code == 0, result.output
    assert 'hash chain,"verified:' in result.stdout

    imported = Settings(data_dir=tmp_path / "imported")
    result = runner.invoke(app, ["import", str(out)], env=env(imported))
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["import", str(out)], env=env(imported))
    assert result.exit_code == 2
    assert "already holds" in result.stderr

    payment_id, _ = refunded_payment(traffic)
    result = runner.invoke(app, ["trail", payment_id, "--format", "json"], env=env(imported))
    assert result.exit_code == 0, result.output
    events = [row["event"] for row in json.loads(result.stdout)]
    assert events[0] in ("ChargingSession.Started", "Payment.Authorised")
    assert "Refund.Issued" in events
    result = runner.invoke(app, ["trail", "P-NOPE"], env=env(imported))
    assert result.exit_code == 1
    assert "no session, payment or refund with id 'P-NOPE'" in result.stderr


def test_verify_exits_1_naming_the_first_bad_row(embedded: Settings, tmp_path: Path) -> None:
    out = tmp_path / "export"
    runner.invoke(app, ["export", "--format", "jsonl", "--out", str(out)], env=env(embedded))
    lines = (out / "ledger.jsonl").read_text().splitlines()
    lines[10], lines[11] = lines[11], lines[10]
    (out / "ledger.jsonl").write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["verify", "--export", str(out)])
    assert result.exit_code == 1
    assert "audit failed at notification id 12" in result.stderr
    assert "hash chain" in result.stderr


def test_verify_of_a_missing_ledger_or_export_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["verify", "--export", str(tmp_path)])
    assert result.exit_code == 2
    assert "has no manifest.json" in result.stderr
    result = runner.invoke(app, ["verify"], env=env(Settings(data_dir=tmp_path / "none")))
    assert result.exit_code == 2
    assert "no embedded ledger" in result.stderr
