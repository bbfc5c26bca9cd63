"""Roaming CDRs through the real pipeline, on the embedded default (`ingest --file`), on
Kafka + PostgreSQL (`ocpi import --publish`, `ingest --until-idle`) and on a ledger of 3
shards (published, or `ingest --file`; OCPI tariffs and locations reach every shard, each
CDR its own), then `project`:
re-priced and reconciled in the ledger, a credit CDR and its replacement keep the trial
balance at zero, `audit verify` passes, a rebuild equals the live models, and the payment
history, refund decisions and analytics show them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

EVLEDGER = str(Path(sys.executable).with_name("evledger"))
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ocpi"


def _load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def roaming_cdrs() -> list[dict[str, Any]]:
    """The spec's 20.45 kWh CDR (6.24 incl. VAT) and variations of it."""
    exact = _load("cdr_20_45_kwh.json")

    def variant(cdr_id: str, **changes: Any) -> dict[str, Any]:
        cdr: dict[str, Any] = copy.deepcopy(exact)
        cdr.update(id=cdr_id, **changes)
        return cdr

    over = variant("CDR-OVER", total_cost={"excl_vat": 6.00, "incl_vat": 7.00})
    under = variant("CDR-UNDER", total_cost={"excl_vat": 5.50, "incl_vat": 6.00})
    no_zone = variant("CDR-NOZONE")
    no_zone["cdr_location"]["id"] = "LOC-UNKNOWN"
    no_tariff = variant("CDR-NOTARIFF")
    no_tariff["charging_periods"][0]["tariff_id"] = "T-UNKNOWN"
    credit = variant(
        "CDR-OVER-CREDIT",
        credit=True,
        credit_reference_id="CDR-OVER",
        total_cost={"excl_vat": -6.00, "incl_vat": -7.00},
    )
    replacement = variant("CDR-OVER-2")
    return [exact, over, under, no_zone, no_tariff, credit, replacement]


Env = dict[str, str]


def evledger(env: Env, *args: str, status: int = 0) -> str:
    done = subprocess.run(
        [EVLEDGER, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == status, (args, done.stdout, done.stderr)
    return done.stdout


def query(env: Env, sql: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        evledger(env, "analytics", "query", sql, "--format", "json")
    )
    return rows


def _base_env(data_dir: Path) -> Env:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
    env.update(EVLEDGER_DATA_DIR=str(data_dir), COLUMNS="200")
    return env


def _import(env: Env, tmp: Path, *options: str) -> None:
    (tmp / "cdrs.json").write_text(json.dumps(roaming_cdrs()))
    evledger(
        env,
        "ocpi",
        "import",
        str(tmp / "cdrs.json"),
        str(FIXTURES / "tariff_flat_and_energy.json"),
        str(FIXTURES / "location_utrecht.json"),
        *options,
    )


SHARDS = 3


def _check_counters(output: str, shards: int = 1) -> None:
    (counters,) = json.loads(output)
    # The tariff and the location are on every shard.
    assert counters["consumed"] == 9 + 2 * (shards - 1) and counters["dead_lettered"] == 0
    assert counters["rejected"] == 2  # no zone, no tariff: recorded, never guessed


@pytest.fixture(scope="module", params=["embedded", "kafka", "kafka-3-shards", "file-3-shards"])
def ledger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp(f"ocpi_ledger_{request.param}")
    env = _base_env(tmp / "data")
    if request.param == "embedded":
        _import(env, tmp, "--out", str(tmp / "ocpi.jsonl"))
        _check_counters(
            evledger(env, "ingest", "--file", str(tmp / "ocpi.jsonl"), "--format", "json")
        )
        evledger(env, "project", "--until-idle")
        yield env
        return
    yield from _on_kafka(request, env, tmp)


def _on_kafka(request: pytest.FixtureRequest, env: Env, tmp: Path) -> Iterator[Env]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from projections.databases.postgres import drop_database
    from tests.integration.store.conftest import delete_topics

    shards = 1 if request.param == "kafka" else SHARDS
    bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    pg_dsn: str = request.getfixturevalue("pg_dsn")
    database = f"e2e_ocpi_{uuid.uuid4().hex[:10]}"
    prefix = f"e2e-ocpi-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_dsn, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    env.update(
        EVLEDGER_KAFKA_BOOTSTRAP=bootstrap,
        EVLEDGER_PG_DSN=make_conninfo("", **{**conninfo_to_dict(pg_dsn), "dbname": database}),
        EVLEDGER_TOPIC_PREFIX=prefix,
        EVLEDGER_LEDGER_SHARDS=str(shards),
    )
    try:
        if request.param == "file-3-shards":
            _import(env, tmp, "--out", str(tmp / "ocpi.jsonl"))
            ingested = evledger(env, "ingest", "--file", str(tmp / "ocpi.jsonl"), "-f", "json")
        else:
            _import(env, tmp, "--publish")
            ingested = evledger(env, "ingest", "--until-idle", "--format", "json")
        _check_counters(ingested, shards)
        evledger(env, "project", "--until-idle")
        yield env
    finally:
        shard_topics = [f"ledger.{shard}" for shard in range(1, shards)]
        names = ("ledger", *shard_topics, "ingest", "ingest.dlq")
        delete_topics(bootstrap, [f"{prefix}.{name}" for name in names])
        drop_database(pg_dsn, database)


def test_each_cdr_is_reconciled_or_rejected_with_its_reason(ledger: Env) -> None:
    rows = json.loads(evledger(ledger, "ocpi", "cdrs", "--party", "NL:EVL", "--format", "json"))
    by_id = {row["cdr_id"]: row for row in rows}
    assert set(by_id) == {c["id"] for c in roaming_cdrs()}
    exact = by_id["CDR-2045"]
    assert (exact["status"], exact["reconciliation"]) == ("reconciled", "exact")
    assert exact["billed_minor"] == exact["repriced_incl_vat_minor"] == 624
    assert by_id["CDR-UNDER"]["reconciliation"] == "undercharge"
    assert by_id["CDR-UNDER"]["difference_minor"] == -24
    over = by_id["CDR-OVER"]
    assert (over["status"], over["reconciliation"], over["difference_minor"]) == (
        "reversed",
        "overcharge",
        76,
    )
    assert over["reversed_by"] == "CDR-OVER-CREDIT"
    assert "billed 0.76 EUR more than the tariff gives" in over["reason"]
    assert by_id["CDR-OVER-CREDIT"]["status"] == "credit"
    assert by_id["CDR-OVER-2"]["reconciliation"] == "exact"
    assert by_id["CDR-NOZONE"]["rejection"] == "unknown_time_zone"
    assert "never guesses" in by_id["CDR-NOZONE"]["reason"]
    assert by_id["CDR-NOTARIFF"]["rejection"] == "unknown_tariff"
    assert "T-UNKNOWN is not in the ledger" in by_id["CDR-NOTARIFF"]["reason"]
    assert json.loads(evledger(ledger, "ocpi", "cdrs", "--party", "DE:XXX", "-f", "json")) == []


def test_the_proven_overcharge_is_an_automatic_refund_claim(ledger: Env) -> None:
    refunds = json.loads(evledger(ledger, "refunds", "--format", "json"))
    (claim,) = [r for r in refunds if r["refund_id"] == "ocpi-claim:NL:EVL:CDR-OVER"]
    assert (claim["status"], claim["reason"], claim["amount_minor"]) == (
        "approved",
        "overcharge",
        76,
    )
    assert claim["decided_by"] == "system"


def test_credit_and_replacement_keep_the_books_at_zero(ledger: Env) -> None:
    checks = query(ledger, "SELECT currency, balanced FROM trial_balance_check")
    assert checks == [{"currency": "EUR", "balanced": True}]
    balances = {
        row["account"]: row["balance_minor"]
        for row in query(ledger, "SELECT account, balance_minor FROM trial_balance")
    }
    # Owed to the party: what it billed for every CDR not reversed (6.24 + 6.00 + 6.24).
    assert balances["roaming_payable"] == -(624 + 600 + 624)
    # The reversed overcharge left no dispute behind; the undercharge is still disputed.
    assert balances["roaming_disputes"] == -24
    assert sum(balances.values()) == 0


def test_the_partner_view_counts_cdrs_amounts_and_disagreements(ledger: Env) -> None:
    (partner,) = query(ledger, "SELECT * FROM roaming_partners")
    assert (partner["country_code"], partner["party_id"], partner["currency"]) == (
        "NL",
        "EVL",
        "EUR",
    )
    assert partner["cdrs"] == 6 and partner["credit_cdrs"] == 1
    assert (partner["reversed"], partner["rejected"]) == (1, 2)
    assert partner["billed_minor"] == 624 + 600 + 624
    assert partner["repriced_incl_vat_minor"] == 3 * 624
    assert (partner["overcharges"], partner["undercharges"]) == (0, 1)
    assert partner["disagreement_minor"] == -24


def test_audit_verify_passes_and_a_replay_equals_the_live_models(ledger: Env) -> None:
    report = evledger(ledger, "audit", "verify")
    assert "Ledger audit passed" in report
    evledger(ledger, "replay", "rebuild", "--projection", "all")
