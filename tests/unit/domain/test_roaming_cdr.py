"""Roaming CDRs in the domain: re-priced with the ledger's tariff version and zone, reconciled
under the tolerance policy, reversed by credit CDRs with new events, never guessed."""

from __future__ import annotations

import copy
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumers.ocpi_contract import decode, encode
from consumers.triage import SourceRecord, triage
from domain.application import BillingApplication
from domain.cdr_reconciliation import CdrTolerance
from domain.commands import IssueRefund
from domain.ids import roaming_cdr_aggregate_id
from domain.results import CommandResult, Outcome
from domain.roaming_cdr import RoamingCdr
from domain.vocabulary import CdrReconciliation, CdrStatus, RefundStatus

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "ocpi"
TARIFF = decode((FIXTURES / "tariff_flat_and_energy.json").read_text())
LOCATION = decode((FIXTURES / "location_utrecht.json").read_text())
CDR = decode((FIXTURES / "cdr_20_45_kwh.json").read_text())


def cdr(cdr_id: str, **changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(CDR)
    document.update(id=cdr_id, **changes)
    return dict(document)


class Ledger:
    def __init__(self, tolerance_minor: int = 0) -> None:
        self.app = BillingApplication(
            env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
            cdr_tolerance=CdrTolerance(tolerance_minor),
        )
        self.count = 0

    def send(self, kind: str, obj: dict[str, Any], **extra: Any) -> CommandResult:
        self.count += 1
        message = {
            "type": f"ocpi.{kind}",
            "event_id": f"e-{self.count}",
            "occurred_at": "2024-06-03T09:05:00Z",
            kind: obj,
            **extra,
        }
        sorted_out = triage([SourceRecord("t", 0, self.count, None, encode(message).encode())])
        assert sorted_out.dead_letters == [], sorted_out.dead_letters
        ((_, command),) = sorted_out.commands
        return self.app.handle(command)

    def references(self) -> None:
        assert self.send("tariff", TARIFF).outcome is Outcome.APPLIED
        assert self.send("location", LOCATION).outcome is Outcome.APPLIED

    def cdr(self, cdr_id: str) -> RoamingCdr:
        found: object = self.app.repository.get(roaming_cdr_aggregate_id("NL", "EVL", cdr_id))
        assert isinstance(found, RoamingCdr)
        return found

    def balances(self) -> Counter[str]:
        """Every posting in the ledger, debit positive, per account."""
        balance: Counter[str] = Counter()
        for item in self.app.recorder.select_notifications(start=1, limit=10_000):
            event = self.app.mapper.to_domain_event(item)
            for posting in getattr(event, "postings", []):
                sign = 1 if posting["direction"] == "debit" else -1
                balance[posting["account"]] += sign * posting["amount_minor"]
        return balance


def test_a_spec_cdr_is_re_priced_and_reconciled_exact() -> None:
    ledger = Ledger()
    ledger.references()
    result = ledger.send("cdr", CDR)  # no time_zone in the message: the ledger's Location
    assert result.event_names[:3] == (
        "RoamingCdr.Received",
        "RoamingCdr.Priced",
        "RoamingCdr.Reconciled",
    )
    found = ledger.cdr("CDR-2045")
    assert (found.status, found.reconciliation) == (CdrStatus.RECONCILED, CdrReconciliation.EXACT)
    balances = ledger.balances()
    assert balances["roaming_costs"] == 563 and balances["vat_receivable"] == 61
    assert balances["roaming_payable"] == -624 and sum(balances.values()) == 0


def test_the_tolerance_decides_exact_or_a_disagreement() -> None:
    off_by_two = cdr("CDR-2", total_cost={"excl_vat": 5.65, "incl_vat": 6.26})
    strict, lenient = Ledger(0), Ledger(2)
    for ledger in (strict, lenient):
        ledger.references()
        ledger.send("cdr", off_by_two)
    assert strict.cdr("CDR-2").reconciliation is CdrReconciliation.OVERCHARGE
    assert lenient.cdr("CDR-2").reconciliation is CdrReconciliation.EXACT
    # Accepted within the tolerance: the 2 cents are cost, nothing is disputed.
    assert lenient.balances()["roaming_costs"] == 565
    assert lenient.balances()["roaming_disputes"] == 0
    assert strict.balances()["roaming_disputes"] == 2


def test_an_overcharge_is_an_automatic_refund_claim_that_is_not_paid_out_here() -> None:
    ledger = Ledger()
    ledger.references()
    result = ledger.send("cdr", cdr("CDR-OVER", total_cost={"excl_vat": 6, "incl_vat": 7}))
    assert "Refund.Approved" in result.event_names
    claim = ledger.app.get_refund("ocpi-claim:NL:EVL:CDR-OVER")
    assert (claim.status, claim.amount_minor, claim.reason) == (
        RefundStatus.APPROVED,
        76,
        "overcharge",
    )
    issued = ledger.app.handle(
        IssueRefund(
            event_id="issue-1",
            occurred_at=datetime(2024, 6, 4, tzinfo=UTC),
            refund_id="ocpi-claim:NL:EVL:CDR-OVER",
        )
    )
    assert issued.outcome is Outcome.REJECTED
    assert "nothing to pay it out from" in str(issued.rejection_reason)


def test_credit_then_replacement_reverse_with_new_events_and_balance_at_zero() -> None:
    ledger = Ledger()
    ledger.references()
    ledger.send("cdr", cdr("CDR-OVER", total_cost={"excl_vat": 6, "incl_vat": 7}))
    credit = cdr(
        "CDR-CREDIT",
        credit=True,
        credit_reference_id="CDR-OVER",
        total_cost={"excl_vat": -6, "incl_vat": -7},
    )
    result = ledger.send("cdr", credit)
    assert "RoamingCdr.Reversed" in result.event_names
    assert all(value == 0 for value in ledger.balances().values())
    ledger.send("cdr", cdr("CDR-OVER-2"))
    balances = ledger.balances()
    assert balances["roaming_payable"] == -624 and sum(balances.values()) == 0
    original = ledger.cdr("CDR-OVER")
    assert (original.status, original.reversed_by) == (CdrStatus.REVERSED, "CDR-CREDIT")
    # Nothing was edited: the original's Priced and Reconciled events are still there.
    assert original.version == 4
    again = ledger.send("cdr", {**credit, "id": "CDR-CREDIT-AGAIN"})
    assert again.outcome is Outcome.REJECTED and "already reversed" in str(again.rejection_reason)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"credit": True, "credit_reference_id": "NOPE"}, "NOPE, which is not a CDR"),
        ({"cdr_location": {**CDR["cdr_location"], "id": "LOC-9"}}, "never guesses"),
        (
            {"charging_periods": [{**CDR["charging_periods"][0], "tariff_id": "T-9"}]},
            "T-9 is not in the ledger",
        ),
    ],
)
def test_what_cannot_be_priced_is_recorded_as_rejected(
    changes: dict[str, Any], reason: str
) -> None:
    ledger = Ledger()
    ledger.references()
    result = ledger.send("cdr", cdr("CDR-X", **changes))
    assert result.outcome is Outcome.REJECTED and reason in str(result.rejection_reason)
    assert ledger.cdr("CDR-X").status is CdrStatus.REJECTED
    assert sum(abs(v) for v in ledger.balances().values()) == 0


def test_the_tariff_version_in_force_at_the_start_prices_the_cdr() -> None:
    ledger = Ledger()
    ledger.send("location", LOCATION)
    ledger.send("tariff", TARIFF)  # last_updated 2024-05-01
    dearer = copy.deepcopy(TARIFF)
    dearer["elements"][0]["price_components"][1]["price"] = decode("0.50")
    dearer["last_updated"] = "2024-07-01T00:00:00Z"  # after the session: not in force
    assert ledger.send("tariff", dearer).outcome is Outcome.APPLIED
    ledger.send("cdr", CDR)
    assert ledger.cdr("CDR-2045").reconciliation is CdrReconciliation.EXACT
    duplicate_version = ledger.send("tariff", dearer)
    assert duplicate_version.outcome is Outcome.REJECTED


def test_the_cdrs_own_tariff_and_zone_take_precedence() -> None:
    ledger = Ledger()  # no ocpi.tariff, no ocpi.location in the ledger
    own = cdr("CDR-OWN", tariffs=[TARIFF])
    result = ledger.send("cdr", own, time_zone="Europe/Amsterdam")
    assert result.outcome is Outcome.APPLIED
    assert ledger.cdr("CDR-OWN").reconciliation is CdrReconciliation.EXACT
    resent = ledger.send("cdr", own, time_zone="Europe/Amsterdam")
    assert resent.outcome is Outcome.REJECTED and "never updated" in str(resent.rejection_reason)


def test_a_cdr_rejected_for_its_tariff_is_priced_when_sent_again_after_it() -> None:
    ledger = Ledger()
    ledger.send("location", LOCATION)
    first = ledger.send("cdr", CDR)
    assert first.outcome is Outcome.REJECTED and "T-ALT-URL is not in the ledger" in str(
        first.rejection_reason
    )
    ledger.send("tariff", TARIFF)
    again = ledger.send("cdr", CDR)  # the same CDR, a new event_id
    assert again.outcome is Outcome.APPLIED
    assert again.event_names[:2] == ("RoamingCdr.Priced", "RoamingCdr.Reconciled")
    assert ledger.cdr("CDR-2045").reconciliation is CdrReconciliation.EXACT
    changed = ledger.send("cdr", cdr("CDR-2045", total_cost={"excl_vat": 1, "incl_vat": 1}))
    assert changed.outcome is Outcome.REJECTED and "never updated" in str(changed.rejection_reason)
