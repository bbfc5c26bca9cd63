"""The auditor's checks of a ledger, record by record: chain, signatures, anchors, ids,
versions, refunds, postings, and the business facts the events state (audit/semantics.py).

The checks run on records as found (ScannedRecord), from Kafka, the embedded SQLite ledger
or an export alike, and stop at the first record where anything is wrong: after a missing
or changed record every later link is suspect, and the first place is where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from audit.anchors import Anchor, AnchorCheck
from audit.authenticity import SignatureCoverage, Unsigned
from audit.event_state import StateNotJson, decode_state, event_name
from audit.scan import ScannedRecord
from audit.semantics import BusinessFacts
from audit.spill import DEFAULT_CAPACITY, SpillFile, SpillMap
from domain.ids import payment_aggregate_id
from store.records import GENESIS_HASH
from store.signing import Keyring


class Check(StrEnum):
    RECORD = "record"
    CHAIN = "hash chain"
    AUTHENTICITY = "authenticity"
    ANCHOR = "anchor"
    NOTIFICATION_IDS = "notification ids"
    VERSIONS = "aggregate versions"
    SESSIONS = "sessions"
    PAYMENTS = "payments"
    REFUNDS = "refunds"
    POSTINGS = "postings"
    CDRS = "cdrs"
    EXPORT = "export"


@dataclass(frozen=True)
class Finding:
    """One thing wrong, where it is and why it matters."""

    check: Check
    reason: str
    where: str = ""
    offset: int | None = None
    notification_id: int | None = None
    position: int | None = None

    def __str__(self) -> str:
        place = f"at {self.where}: " if self.where else ""
        return f"{self.check.value}: {place}{self.reason}"


@dataclass
class PostingTotals:
    debit_minor: int = 0
    credit_minor: int = 0


@dataclass
class AuditSummary:
    """What was checked, for the report of a clean ledger (and the context of a bad one)."""

    source: str
    records: int = 0
    chained_records: int = 0
    first_notification_id: int | None = None
    last_notification_id: int | None = None
    last_offset: int | None = None
    last_hash: bytes | None = None
    aggregates: int = 0
    payments_captured: int = 0
    refunds_approved: int = 0
    refunds_released: int = 0
    refunds_issued: int = 0
    captured_minor: dict[str, int] = field(default_factory=dict)
    refunds_issued_minor: dict[str, int] = field(default_factory=dict)
    events_with_postings: int = 0
    postings: dict[str, PostingTotals] = field(default_factory=dict)
    # Authenticity: whether trusted keys were given, and what signed the records.
    keys_given: bool = False
    signed_records: int = 0
    key_ids: set[str] = field(default_factory=set)
    anchors_met: int = 0

    @property
    def unchained_records(self) -> int:
        return self.records - self.chained_records


@dataclass
class AuditReport:
    summary: AuditSummary
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None


@dataclass
class _PaymentBudget:
    """What a payment may still refund, rebuilt from its events."""

    payment_id: str | None = None
    currency: str | None = None
    captured_minor: int | None = None
    # Approved (or issued) refunds not released: refund_id -> amount.
    committed: dict[str, int] = field(default_factory=dict)
    issued_minor: int = 0

    @property
    def committed_minor(self) -> int:
        return sum(self.committed.values())

    def name(self) -> str:
        return f"payment {self.payment_id}" if self.payment_id else "the payment"


@dataclass(frozen=True)
class _RefundLink:
    refund_id: str
    payment_aggregate_id: str


class LedgerAudit:
    """Feed records in ledger order; each call returns what is wrong with that record.

    Per-aggregate state keeps `state_cache_size` entries of each kind in memory and spills
    the rest to a temporary file (audit/spill.py), so memory stays flat in the ledger's size;
    close() removes the file.
    """

    def __init__(
        self,
        source: str,
        keyring: Keyring | None = None,
        anchors: Sequence[Anchor] = (),
        state_cache_size: int = DEFAULT_CAPACITY,
    ) -> None:
        self.summary = AuditSummary(source=source, keys_given=keyring is not None)
        self._coverage = SignatureCoverage(keyring) if keyring is not None else None
        self.anchors = AnchorCheck(tuple(anchors))
        self._spill = SpillFile()
        self._facts = BusinessFacts(self._spill, state_cache_size)
        self._prev_hash: bytes | None = None
        self._last_notification_id: int | None = None
        self._versions: SpillMap[int] = SpillMap(self._spill, state_cache_size)
        self._payments: SpillMap[_PaymentBudget] = SpillMap(self._spill, state_cache_size)
        self._refunds: SpillMap[_RefundLink] = SpillMap(self._spill, state_cache_size)

    def close(self) -> None:
        self._spill.close()

    def check(self, record: ScannedRecord) -> list[Finding]:
        findings: list[Finding] = []

        def found(check: Check, reason: str) -> None:
            findings.append(
                Finding(
                    check,
                    reason,
                    record.where(),
                    record.offset,
                    record.notification_id,
                    record.position,
                )
            )

        self._count(record)
        if record.defect:
            found(Check.RECORD, f"the record is damaged: it {record.defect}")
        self._check_chain(record, found)
        self._count_signature(record)
        unsigned = self._check_coverage(record)
        if unsigned is not None:
            findings.append(unsigned)
        anchor_problem = self.anchors.observe(record)
        if anchor_problem is not None:
            found(Check.ANCHOR, anchor_problem)
        elif self.anchors.met_here and self._coverage is not None:
            self._coverage.vouch()
        self._check_notification_id(record, found)
        self._check_version(record, found)
        if record.topic is not None:
            try:
                state = decode_state(record.state)
            except StateNotJson as error:
                found(Check.RECORD, str(error))
            else:
                self._check_postings(record.topic, state, found)
                self._facts.check(
                    record,
                    event_name(record.topic),
                    state,
                    lambda check, reason: found(Check(check), reason),
                )
                self._check_refunds(record, state, found)
        return findings

    # --- structure ---------------------------------------------------------------------

    def _count(self, record: ScannedRecord) -> None:
        summary = self.summary
        summary.records += 1
        if record.notification_id is not None and summary.first_notification_id is None:
            summary.first_notification_id = record.notification_id
        summary.last_notification_id = record.notification_id
        summary.last_offset = record.offset

    def _check_chain(self, record: ScannedRecord, found: Callable[[Check, str], None]) -> None:
        if record.hash is None or record.prev_hash is None:
            return
        self.summary.chained_records += 1
        expected_prev = GENESIS_HASH if self._prev_hash is None else self._prev_hash
        if record.prev_hash != expected_prev:
            if self._prev_hash is None:
                found(
                    Check.CHAIN,
                    f"the first record's prev_hash is {record.prev_hash.hex()[:16]}..., not the "
                    "genesis hash (zeros): the ledger does not start here, records before it "
                    "are missing",
                )
            else:
                found(
                    Check.CHAIN,
                    f"prev_hash {record.prev_hash.hex()[:16]}... is not the previous record's "
                    f"hash {expected_prev.hex()[:16]}...: a record before this one was "
                    "removed, moved or inserted",
                )
        computed = record.content_hash(record.prev_hash)
        if computed is not None and computed != record.hash:
            found(
                Check.CHAIN,
                f"hash {record.hash.hex()[:16]}... does not match the record's content "
                f"(computed {computed.hex()[:16]}...): its value, key or headers were changed",
            )
        self._prev_hash = record.hash
        self.summary.last_hash = record.hash

    def _count_signature(self, record: ScannedRecord) -> None:
        if record.signature is not None and record.key_id is not None:
            self.summary.signed_records += 1
            self.summary.key_ids.add(record.key_id)

    def _check_coverage(self, record: ScannedRecord) -> Finding | None:
        if self._coverage is None:
            return None
        unsigned = self._coverage.observe(record)
        return None if unsigned is None else _unsigned_finding(unsigned)

    def finish(self) -> list[Finding]:
        """What only the end of the ledger shows: an unsigned tail, anchors not met."""
        findings = []
        if self._coverage is not None:
            unsigned = self._coverage.finish()
            if unsigned is not None:
                findings.append(_unsigned_finding(unsigned))
        findings.extend(Finding(Check.ANCHOR, problem) for problem in self.anchors.unmet())
        return findings

    def _check_notification_id(
        self, record: ScannedRecord, found: Callable[[Check, str], None]
    ) -> None:
        if record.notification_id is None:
            return
        previous = self._last_notification_id
        expected = 1 if previous is None else previous + 1
        if record.notification_id > expected:
            missing = (
                f"id {expected} is missing"
                if record.notification_id == expected + 1
                else f"ids {expected}..{record.notification_id - 1} are missing"
            )
            found(
                Check.NOTIFICATION_IDS,
                f"notification id {record.notification_id} where {expected} was expected: "
                f"{missing} (removed, or moved later)",
            )
        elif record.notification_id < expected:
            found(
                Check.NOTIFICATION_IDS,
                f"notification id {record.notification_id} where {expected} was expected: "
                "the id repeats or goes back (a record was copied or moved)",
            )
        self._last_notification_id = record.notification_id

    def _check_version(self, record: ScannedRecord, found: Callable[[Check, str], None]) -> None:
        if record.originator_version is None:
            return
        previous = self._versions.get(record.originator_id)
        expected = 1 if previous is None else previous + 1
        if record.originator_version != expected:
            found(
                Check.VERSIONS,
                f"aggregate {record.originator_id} is at version {record.originator_version} "
                f"where {expected} was expected: an event of it is missing, repeated or moved",
            )
        self._versions[record.originator_id] = record.originator_version
        self.summary.aggregates = len(self._versions)

    # --- money -------------------------------------------------------------------------

    def _check_postings(
        self, topic: str, state: dict[str, Any], found: Callable[[Check, str], None]
    ) -> None:
        if "postings" not in state:
            return
        postings = state["postings"]
        name = event_name(topic)
        if not isinstance(postings, list):
            found(Check.POSTINGS, f"{name} carries postings that are not a list")
            return
        self.summary.events_with_postings += 1
        net: dict[str, int] = {}
        for number, posting in enumerate(postings, start=1):
            problem = _posting_problem(posting)
            if problem is not None:
                found(Check.POSTINGS, f"{name} posting {number}: {problem}")
                return
            currency = str(posting["currency"])
            amount = int(posting["amount_minor"])
            totals = self.summary.postings.setdefault(currency, PostingTotals())
            if posting["direction"] == "debit":
                totals.debit_minor += amount
                net[currency] = net.get(currency, 0) + amount
            else:
                totals.credit_minor += amount
                net[currency] = net.get(currency, 0) - amount
        for currency, difference in sorted(net.items()):
            if difference:
                side = "debits exceed credits" if difference > 0 else "credits exceed debits"
                found(
                    Check.POSTINGS,
                    f"{name} does not balance in {currency}: {side} by {abs(difference)} "
                    "minor units",
                )

    def _check_refunds(
        self, record: ScannedRecord, state: dict[str, Any], found: Callable[[Check, str], None]
    ) -> None:
        assert record.topic is not None
        name = event_name(record.topic)
        aggregate_id = record.originator_id
        if name in ("Payment.Authorised", "Payment.Declined"):
            budget = self._payments.setdefault(aggregate_id, _PaymentBudget())
            budget.payment_id = _text(state.get("payment_id"))
            budget.currency = _text(state.get("currency"))
        elif name == "Payment.Captured":
            self._captured(aggregate_id, state, found)
        elif name == "Refund.Requested":
            refund_id = _text(state.get("refund_id")) or ""
            payment_id = _text(state.get("payment_id")) or ""
            link = _RefundLink(
                refund_id, str(payment_aggregate_id(payment_id)) if payment_id else ""
            )
            self._refunds[aggregate_id] = link
        elif name in ("Payment.RefundApproved", "Payment.RefundReleased"):
            self._refund_commitment(name, aggregate_id, state, found)
        elif name == "Refund.Issued":
            self._refund_issued(aggregate_id, state, found)

    def _captured(
        self, aggregate_id: str, state: dict[str, Any], found: Callable[[Check, str], None]
    ) -> None:
        budget = self._payments.setdefault(aggregate_id, _PaymentBudget())
        amount = _minor_units(state.get("captured_minor"))
        if amount is None:
            found(Check.REFUNDS, f"{budget.name()} captured_minor is not whole minor units")
            return
        if budget.captured_minor is not None:
            found(Check.REFUNDS, f"{budget.name()} is captured a second time")
        budget.captured_minor = amount
        budget.currency = _text(state.get("currency")) or budget.currency
        currency = budget.currency or "?"
        self.summary.payments_captured += 1
        self.summary.captured_minor[currency] = (
            self.summary.captured_minor.get(currency, 0) + amount
        )

    def _refund_commitment(
        self,
        name: str,
        aggregate_id: str,
        state: dict[str, Any],
        found: Callable[[Check, str], None],
    ) -> None:
        budget = self._payments.setdefault(aggregate_id, _PaymentBudget())
        refund_id = _text(state.get("refund_id")) or "?"
        amount = _minor_units(state.get("amount_minor"))
        if amount is None:
            found(Check.REFUNDS, f"refund {refund_id} amount_minor is not whole minor units")
            return
        if name == "Payment.RefundApproved":
            self.summary.refunds_approved += 1
            if budget.captured_minor is None:
                found(
                    Check.REFUNDS,
                    f"refund {refund_id} of {amount} is approved on {budget.name()}, which has "
                    "no capture to refund",
                )
                return
            budget.committed[refund_id] = amount
        else:
            self.summary.refunds_released += 1
            if budget.committed.pop(refund_id, None) is None:
                found(
                    Check.REFUNDS,
                    f"refund {refund_id} is released on {budget.name()} but was never approved "
                    "on it",
                )
                return
        captured = budget.captured_minor or 0
        committed = budget.committed_minor
        if committed > captured:
            found(
                Check.REFUNDS,
                f"approved refunds on {budget.name()} total {committed}, above the captured "
                f"{captured} {budget.currency or ''}".rstrip(),
            )
        carried = state.get("refundable_balance_minor")
        if carried is not None and carried != captured - committed:
            found(
                Check.REFUNDS,
                f"{name} says the refundable balance of {budget.name()} is {carried}; its "
                f"events give {captured} captured - {committed} refunds = "
                f"{captured - committed}",
            )

    def _refund_issued(
        self, aggregate_id: str, state: dict[str, Any], found: Callable[[Check, str], None]
    ) -> None:
        self.summary.refunds_issued += 1
        link = self._refunds.get(aggregate_id)
        amount = _minor_units(state.get("amount_minor"))
        if link is None:
            found(Check.REFUNDS, "a refund is issued that was never requested")
            return
        if amount is None:
            found(Check.REFUNDS, f"refund {link.refund_id} amount_minor is not whole minor units")
            return
        currency = _text(state.get("currency")) or "?"
        issued = self.summary.refunds_issued_minor
        issued[currency] = issued.get(currency, 0) + amount
        budget = self._payments.get(link.payment_aggregate_id)
        if budget is None or budget.captured_minor is None:
            found(
                Check.REFUNDS,
                f"refund {link.refund_id} of {amount} is issued against a payment with no capture",
            )
            return
        budget.issued_minor += amount
        if budget.issued_minor > budget.captured_minor:
            found(
                Check.REFUNDS,
                f"issued refunds on {budget.name()} total {budget.issued_minor}, above the "
                f"captured {budget.captured_minor}",
            )
        approved = budget.committed.get(link.refund_id)
        if approved is None:
            found(
                Check.REFUNDS,
                f"refund {link.refund_id} is issued but {budget.name()} holds no approval of it",
            )
        elif approved != amount:
            found(
                Check.REFUNDS,
                f"refund {link.refund_id} is issued for {amount} but was approved for {approved}",
            )


def verify_records(
    records: Iterable[ScannedRecord],
    source: str,
    on_record: Callable[[ScannedRecord], None] | None = None,
    keyring: Keyring | None = None,
    anchors: Sequence[Anchor] = (),
    *,
    state_cache_size: int = DEFAULT_CAPACITY,
) -> AuditReport:
    """Check every record in order; stop at the first record where anything is wrong.

    With a keyring every record must be signed by one of its keys; every anchor must be
    met by some record (checked after the last one). `state_cache_size` bounds the
    per-aggregate state kept in memory (LedgerAudit).
    """
    audit = LedgerAudit(source, keyring, anchors, state_cache_size)
    try:
        for record in records:
            findings = audit.check(record)
            if on_record is not None:
                on_record(record)
            if findings:
                return AuditReport(audit.summary, findings)
        findings = audit.finish()
    finally:
        audit.close()
    audit.summary.anchors_met = len(anchors) - len(audit.anchors.unmet())
    return AuditReport(audit.summary, findings)


def _unsigned_finding(unsigned: Unsigned) -> Finding:
    record = unsigned.record
    return Finding(
        Check.AUTHENTICITY,
        unsigned.reason,
        record.where(),
        record.offset,
        record.notification_id,
        record.position,
    )


def _posting_problem(posting: Any) -> str | None:
    if not isinstance(posting, dict):
        return "is not an object"
    if not isinstance(posting.get("account"), str) or not posting["account"]:
        return "has no account"
    if posting.get("direction") not in ("debit", "credit"):
        return f"direction {posting.get('direction')!r} is neither debit nor credit"
    amount = _minor_units(posting.get("amount_minor"))
    if amount is None:
        return f"amount_minor {posting.get('amount_minor')!r} is not whole minor units"
    if amount < 0:
        return f"amount_minor {amount} is negative (a reversal posts the other direction)"
    if not isinstance(posting.get("currency"), str) or len(posting["currency"]) != 3:
        return f"currency {posting.get('currency')!r} is not an ISO 4217 code"
    return None


def _minor_units(value: Any) -> int | None:
    # Money is integer minor units: a float or a bool in an amount is itself a finding.
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
