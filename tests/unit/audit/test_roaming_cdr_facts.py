"""verify knows the roaming CDR events' postings: a CDR priced twice, a reconciliation whose
difference is not billed - re-priced, and a reversal that does not undo every posting are
named, though every entry balances."""

from __future__ import annotations

from typing import Any

from audit.verify import Check, verify_records
from domain import postings as journal
from domain.ids import roaming_cdr_aggregate_id
from tests.unit.audit.ledger_builder import records

CDR = str(roaming_cdr_aggregate_id("NL", "EVL", "CDR-1"))
TOPIC = "domain.roaming_cdr:RoamingCdr"

Entry = tuple[str, int, str, dict[str, Any]]


def priced(version: int, excl: int, incl: int) -> Entry:
    state = {
        "currency": "EUR",
        "total_excl_vat_minor": excl,
        "total_incl_vat_minor": incl,
        "postings": journal.cdr_priced(excl, incl, "EUR"),
    }
    return (CDR, version, f"{TOPIC}.Priced", state)


def reconciled(version: int, billed: int, repriced: int, **changes: Any) -> Entry:
    difference = billed - repriced
    state: dict[str, Any] = {
        "status": "overcharge" if difference else "exact",
        "billed_minor": billed,
        "repriced_minor": repriced,
        "difference_minor": difference,
        "currency": "EUR",
        "postings": journal.cdr_reconciled(difference, difference == 0, "EUR"),
    }
    state.update(changes)
    return (CDR, version, f"{TOPIC}.Reconciled", state)


def reversed_(version: int, postings: list[dict[str, Any]]) -> Entry:
    return (CDR, version, f"{TOPIC}.Reversed", {"credit_cdr_id": "C-1", "postings": postings})


def story() -> list[Entry]:
    return [
        (CDR, 1, f"{TOPIC}.Received", {"cdr_id": "CDR-1", "currency": "EUR"}),
        priced(2, 563, 624),
        reconciled(3, 700, 624),
    ]


def first(entries: list[Entry]) -> tuple[Check, int | None, str]:
    report = verify_records(records(entries), "test ledger")
    assert report.first is not None, "the fault went unnoticed"
    return report.first.check, report.first.notification_id, report.first.reason


def test_the_honest_story_and_its_exact_reversal_pass() -> None:
    undo = journal.reversal(
        journal.cdr_priced(563, 624, "EUR") + journal.cdr_reconciled(76, False, "EUR")
    )
    report = verify_records(records([*story(), reversed_(4, undo)]), "test ledger")
    assert report.ok, report.findings


def test_a_cdr_priced_twice_is_named() -> None:
    check, notification_id, reason = first([*story(), priced(4, 1, 1)])
    assert (check, notification_id) == (Check.CDRS, 4)
    assert "priced a second time" in reason


def test_a_difference_that_is_not_billed_minus_repriced_is_named() -> None:
    entries = story()
    entries[2] = reconciled(3, 700, 624, difference_minor=70)
    check, _, reason = first(entries)
    assert check is Check.CDRS and "difference 70 is not billed 700 - re-priced 624" in reason


def test_a_reversal_that_leaves_money_behind_is_named() -> None:
    partial = journal.reversal(journal.cdr_priced(563, 624, "EUR"))  # the dispute is kept
    check, notification_id, reason = first([*story(), reversed_(4, partial)])
    assert (check, notification_id) == (Check.POSTINGS, 4)
    assert "RoamingCdr.Reversed's postings" in reason
