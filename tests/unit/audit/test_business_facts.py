"""The business facts verify checks beyond balanced books, each on a hand-built ledger that
breaks one: a session priced twice, a capture beyond its hold, a refund issued twice, and
postings that do not match their event (every entry balanced, so only these checks see it)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from typer.testing import CliRunner

from audit.verify import Check, verify_records
from bootstrap.settings import Settings
from cli.audit import app
from domain import postings as journal
from domain.ids import session_aggregate_id
from tests.unit.audit.ledger_builder import PAYMENT, PAYMENT_TOPIC, REFUND, records, story

SESSION = str(session_aggregate_id("S-1"))
SESSION_TOPIC = "domain.session:ChargingSession"

Entry = tuple[str, int, str, dict[str, Any]]


def priced(version: int, subtotal: int, vat: int, **changes: Any) -> Entry:
    state: dict[str, Any] = {
        "currency": "EUR",
        "line_items": [{"component": "energy", "amount_minor": subtotal}],
        "subtotal_minor": subtotal,
        "vat_rate": "0.19",
        "vat_minor": vat,
        "total_minor": subtotal + vat,
        "postings": journal.session_priced(subtotal + vat, subtotal, vat, "EUR"),
    }
    state.update(changes)
    return (SESSION, version, f"{SESSION_TOPIC}.Priced", state)


def session_story() -> list[Entry]:
    return [
        (SESSION, 1, f"{SESSION_TOPIC}.Started", {"session_id": "S-1", "tariff_id": "T-1"}),
        (SESSION, 2, f"{SESSION_TOPIC}.Stopped", {"meter_stop_wh": 12000}),
        priced(3, 442, 84),
        *story(),
    ]


def first_finding(entries: list[Entry]) -> tuple[Check, int | None, str]:
    report = verify_records(records(entries), "test ledger")
    assert report.first is not None, "the fault went unnoticed"
    return report.first.check, report.first.notification_id, report.first.reason


def test_the_honest_story_passes() -> None:
    report = verify_records(records(session_story()), "test ledger")
    assert report.ok, report.findings


def test_a_session_priced_twice_is_named() -> None:
    # The forged record: a second price, total 1, with balanced postings.
    entries = [*session_story(), priced(4, 1, 0)]
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.SESSIONS, len(entries))
    assert "session S-1 is priced a second time (total 1; it was priced at notification id 3 " in (
        reason
    )
    assert "with total 526" in reason


def test_a_total_that_is_not_subtotal_plus_vat_is_named() -> None:
    entries = session_story()
    entries[2] = priced(3, 442, 84, total_minor=527)
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.SESSIONS, 3)
    assert "total 527 is not its subtotal 442 + VAT 84" in reason


def test_a_capture_beyond_its_hold_is_named() -> None:
    entries = story()
    entries[1][3].update(
        captured_minor=6000,
        postings=journal.payment_captured(6000, 5000, "EUR"),
    )
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.PAYMENTS, 2)
    assert "payment P-1 is captured for 6000, beyond its authorised hold of 5000" in reason


def test_a_capture_without_an_authorisation_is_named() -> None:
    entries = [(PAYMENT, 1, f"{PAYMENT_TOPIC}.Captured", story()[1][3])]
    check, _, reason = first_finding(entries)
    assert check is Check.PAYMENTS
    assert "captured without an authorised hold" in reason


def test_a_refund_issued_twice_is_named() -> None:
    entries = story()
    issued = entries[-1]
    entries.append((REFUND, 4, issued[2], dict(issued[3])))
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.REFUNDS, len(entries))
    assert "refund R-1 is issued a second time (first at notification id 6)" in reason


def test_balanced_postings_that_do_not_match_the_price_are_named() -> None:
    entries = session_story()
    # Total 526 stated; the books say 1 (balanced): the projections and the books disagree.
    entries[2] = priced(3, 442, 84, postings=journal.session_priced(1, 1, 0, "EUR"))
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.POSTINGS, 3)
    assert "ChargingSession.Priced's postings [debit customer_receivable 1, credit " in reason
    assert "do not match the event (total_minor=526" in reason


def test_balanced_postings_that_do_not_match_a_capture_are_named() -> None:
    entries = story()
    entries[1][3]["postings"] = journal.payment_captured(900, 5000, "EUR")
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.POSTINGS, 2)
    assert "Payment.Captured's postings" in reason
    assert "captured_minor=1000" in reason


def test_balanced_postings_that_do_not_match_a_refund_are_named() -> None:
    entries = story()
    entries[-1][3]["postings"] = journal.refund_issued(30, "EUR")
    check, notification_id, reason = first_finding(entries)
    assert (check, notification_id) == (Check.POSTINGS, 6)
    assert "Refund.Issued's postings" in reason


def test_a_total_edited_in_the_embedded_ledger_file_with_balanced_postings_is_named(
    embedded: Settings,
) -> None:
    # The embedded default keeps no hashes: the business facts are what catch this edit.
    path = embedded.data_dir / "ledger.sqlite3"
    db = sqlite3.connect(path)
    rowid, state = db.execute(
        "SELECT rowid, state FROM stored_events WHERE topic LIKE '%ChargingSession.Priced' "
        "ORDER BY rowid LIMIT 1 OFFSET 5"
    ).fetchone()
    edited = json.loads(state)
    edited["total_minor"] = 1
    edited["postings"] = journal.session_priced(1, 1, 0, edited["currency"])
    db.execute(
        "UPDATE stored_events SET state = ? WHERE rowid = ?", (json.dumps(edited).encode(), rowid)
    )
    db.commit()
    db.close()
    result = CliRunner().invoke(
        app,
        ["verify"],
        env={"EVLEDGER_DATA_DIR": str(embedded.data_dir), "EVLEDGER_KAFKA_BOOTSTRAP": None},
    )
    assert result.exit_code == 1, result.output
    assert f"audit failed at notification id {rowid} (" in result.stderr
    assert "sessions: " in result.stderr and "total 1 is not its subtotal" in result.stderr
