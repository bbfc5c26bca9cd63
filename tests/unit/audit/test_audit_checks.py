"""Every audit check on hand-built records: a good ledger passes, and each kind of damage
is found at the record where it is."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from audit.scan import ScannedRecord
from audit.verify import AuditReport, Check, verify_records
from tests.unit.audit.ledger_builder import (
    PAYMENT,
    PAYMENT_TOPIC,
    REFUND,
    posting,
    rechain,
    records,
    renumber,
    state_bytes,
    story,
)


def verify(found: list[ScannedRecord]) -> AuditReport:
    return verify_records(found, "test ledger")


def first_failure(found: list[ScannedRecord]) -> tuple[Check, int | None, int | None, str]:
    report = verify(found)
    assert report.first is not None, "the damage went unnoticed"
    first = report.first
    return first.check, first.offset, first.notification_id, first.reason


def with_state(record: ScannedRecord, **changes: Any) -> ScannedRecord:
    state = json.loads(record.state)
    state.update(changes)
    return replace(record, state=state_bytes(state))


def test_a_good_ledger_passes_and_says_what_it_checked() -> None:
    report = verify(records())
    assert report.ok, report.findings
    summary = report.summary
    assert summary.records == summary.chained_records == 6
    assert (summary.first_notification_id, summary.last_notification_id) == (1, 6)
    assert summary.aggregates == 2
    assert summary.payments_captured == 1
    assert summary.captured_minor == {"EUR": 1000}
    assert (summary.refunds_approved, summary.refunds_issued) == (1, 1)
    assert summary.refunds_issued_minor == {"EUR": 300}
    assert summary.events_with_postings == 3
    totals = summary.postings["EUR"]
    assert totals.debit_minor == totals.credit_minor == 5000 + 5000 + 1000 + 300
    assert summary.last_hash == records()[-1].hash


def test_an_edited_value_breaks_the_chain_at_that_record() -> None:
    found = records()
    found[2] = with_state(found[2], amount_minor=3)
    check, offset, notification_id, reason = first_failure(found)
    assert (check, offset, notification_id) == (Check.CHAIN, 2, 3)
    assert "content" in reason


@pytest.mark.parametrize(
    "field, value",
    [
        ("topic", f"{PAYMENT_TOPIC}.Voided"),
        ("originator_version", 9),
        ("originator_id", REFUND),
        ("hash", bytes(32)),
    ],
)
def test_an_edited_header_or_key_is_found_at_that_record(field: str, value: Any) -> None:
    found = records()
    found[4] = replace(found[4], **{field: value})
    report = verify(found)
    assert report.first is not None
    assert (report.first.offset, report.first.notification_id) == (4, 5)
    assert Check.CHAIN in {finding.check for finding in report.findings}


def test_a_deleted_record_is_found_where_it_was() -> None:
    found = renumber(records()[:3] + records()[4:])
    check, offset, notification_id, reason = first_failure(found)
    assert (check, offset, notification_id) == (Check.CHAIN, 3, 5)
    assert "removed" in reason
    report = verify(found)
    assert {f.check for f in report.findings} >= {Check.CHAIN, Check.NOTIFICATION_IDS}
    assert any("id 4 is missing" in f.reason for f in report.findings)


def test_a_swapped_pair_is_found_at_the_first_of_them() -> None:
    original = records()
    found = renumber([*original[:2], original[3], original[2], *original[4:]])
    check, offset, notification_id, _ = first_failure(found)
    assert (check, offset, notification_id) == (Check.CHAIN, 2, 4)


def test_a_ledger_missing_its_first_records_does_not_start_at_genesis() -> None:
    check, offset, _, reason = first_failure(renumber(records()[2:]))
    assert (check, offset) == (Check.CHAIN, 0)
    assert "genesis" in reason


def test_a_gap_in_notification_ids_is_found_even_when_the_chain_was_rewritten() -> None:
    found = records()
    later = [replace(r, notification_id=(r.notification_id or 0) + 1) for r in found[3:]]
    found = rechain([*found[:3], *later])
    check, offset, notification_id, reason = first_failure(found)
    assert (check, offset, notification_id) == (Check.NOTIFICATION_IDS, 3, 5)
    assert "id 4 is missing" in reason


def test_a_repeated_notification_id_is_found() -> None:
    found = records()
    found = rechain([*found[:3], replace(found[3], notification_id=3), *found[4:]])
    check, offset, _, reason = first_failure(found)
    assert (check, offset) == (Check.NOTIFICATION_IDS, 3)
    assert "repeats" in reason


def test_a_gap_in_an_aggregates_versions_is_found() -> None:
    found = records()
    found = rechain([*found[:4], replace(found[4], originator_version=4), found[5]])
    check, offset, _, reason = first_failure(found)
    assert (check, offset) == (Check.VERSIONS, 4)
    assert PAYMENT in reason and "version 4 where 3" in reason


def test_an_aggregate_that_starts_above_version_1_is_found() -> None:
    found = rechain([replace(records()[0], originator_version=2), *records()[1:]])
    check, offset, _, _ = first_failure(found)
    assert (check, offset) == (Check.VERSIONS, 0)


def build(entries: list[tuple[str, int, str, dict[str, Any]]]) -> list[ScannedRecord]:
    return records(entries)


def test_approved_refunds_above_the_capture_are_found() -> None:
    entries = story()
    entries[4] = (
        PAYMENT,
        3,
        f"{PAYMENT_TOPIC}.RefundApproved",
        {"refund_id": "R-1", "amount_minor": 1001, "refundable_balance_minor": -1},
    )
    check, offset, _, reason = first_failure(build(entries))
    assert (check, offset) == (Check.REFUNDS, 4)
    assert "1001, above the captured 1000" in reason


def test_a_refund_approved_before_any_capture_is_found() -> None:
    entries = story()
    del entries[1]  # no capture
    entries = [(a, v - 1 if a == PAYMENT and v > 1 else v, t, s) for a, v, t, s in entries]
    check, _, _, reason = first_failure(build(entries))
    assert check is Check.REFUNDS
    assert "no capture" in reason


def test_a_wrong_refundable_balance_in_an_event_is_found() -> None:
    entries = story()
    entries[4][3]["refundable_balance_minor"] = 800
    check, offset, _, reason = first_failure(build(entries))
    assert (check, offset) == (Check.REFUNDS, 4)
    assert "700" in reason


def test_an_issued_refund_above_the_capture_is_found() -> None:
    entries = story()
    entries[5][3]["amount_minor"] = 1200
    entries[5][3]["postings"] = [
        posting("refunds", "debit", 1200),
        posting("processor_clearing", "credit", 1200),
    ]
    report = verify(build(entries))
    assert report.first is not None
    assert (report.first.check, report.first.offset) == (Check.REFUNDS, 5)
    reasons = " | ".join(f.reason for f in report.findings)
    assert "1200, above the captured 1000" in reasons
    assert "approved for 300" in reasons


def test_an_issued_refund_that_was_released_is_found() -> None:
    entries = story()
    entries.insert(
        5,
        (
            PAYMENT,
            4,
            f"{PAYMENT_TOPIC}.RefundReleased",
            {"refund_id": "R-1", "amount_minor": 300, "refundable_balance_minor": 1000},
        ),
    )
    check, offset, _, reason = first_failure(build(entries))
    assert (check, offset) == (Check.REFUNDS, 6)
    assert "no approval" in reason


def test_releasing_a_refund_that_was_never_approved_is_found() -> None:
    entries = story()[:2]
    entries.append(
        (
            PAYMENT,
            3,
            f"{PAYMENT_TOPIC}.RefundReleased",
            {"refund_id": "R-9", "amount_minor": 300, "refundable_balance_minor": 1300},
        )
    )
    check, offset, _, reason = first_failure(build(entries))
    assert (check, offset) == (Check.REFUNDS, 2)
    assert "never approved" in reason


def test_an_unbalanced_journal_entry_is_found() -> None:
    entries = story()
    entries[1][3]["postings"][-1]["amount_minor"] = 999
    check, offset, _, reason = first_failure(build(entries))
    assert (check, offset) == (Check.POSTINGS, 1)
    assert "does not balance in EUR: debits exceed credits by 1" in reason


def test_entries_in_two_currencies_balance_each_currency() -> None:
    entries = story()[:1]
    entries[0][3]["postings"] = [
        posting("authorisation_holds", "debit", 100, "EUR"),
        posting("customer_holds", "credit", 100, "USD"),
    ]
    check, _, _, reason = first_failure(build(entries))
    assert check is Check.POSTINGS
    assert "EUR" in reason


@pytest.mark.parametrize(
    "bad, words",
    [
        (posting("refunds", "debit", 1.5), "not whole minor units"),
        (posting("refunds", "debit", True), "not whole minor units"),
        (posting("refunds", "debit", -5), "negative"),
        (posting("refunds", "sideways", 5), "neither debit nor credit"),
        (posting("refunds", "debit", 5, "euro"), "ISO 4217"),
    ],
)
def test_a_malformed_posting_is_found(bad: dict[str, Any], words: str) -> None:
    entries = story()[:1]
    entries[0][3]["postings"] = [bad]
    check, _, _, reason = first_failure(build(entries))
    assert check is Check.POSTINGS
    assert words in reason


def test_a_damaged_record_is_named_not_crashed_on() -> None:
    found = records()
    found[3] = replace(found[3], defect="lacks header 'evledger.hash'", hash=None)
    check, offset, _, reason = first_failure(found)
    assert (check, offset) == (Check.RECORD, 3)
    assert "evledger.hash" in reason


def test_a_state_that_is_not_json_is_found() -> None:
    found = rechain([*records()[:2], replace(records()[2], state=b"\xff not json")])
    check, offset, _, _ = first_failure(found)
    assert (check, offset) == (Check.RECORD, 2)


def test_without_hashes_every_other_check_still_runs() -> None:
    # The embedded default keeps no hashes: an edit cannot be seen, a broken rule can.
    found = records(chained=False)
    report = verify(found)
    assert report.ok
    assert report.summary.chained_records == 0
    found[4] = with_state(found[4], amount_minor=1300, refundable_balance_minor=-300)
    check, offset, notification_id, _ = first_failure(found)
    assert (check, offset, notification_id) == (Check.REFUNDS, None, 5)


def test_the_first_faulty_record_stops_the_walk() -> None:
    found = records()
    found[1] = with_state(found[1], captured_minor=1)
    found[3] = with_state(found[3], decided_by="someone else")
    report = verify(found)
    # Every finding is at the first faulty record (a record may break several checks).
    assert {f.notification_id for f in report.findings} == {2}
    assert report.summary.records == 2
