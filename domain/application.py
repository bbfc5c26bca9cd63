"""BillingApplication: one method per upstream message, idempotent by event_id.

Uses only the library's Application API (repository.get, save, the notification log), so
it runs unchanged on the POPO, SQLite and Kafka persistence modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording
from eventsourcing.utils import Environment, EnvType

# Imported for its effect: every stored event topic resolves, whatever was renamed since.
import domain.event_topics  # noqa: F401
from domain.commands import (
    ApproveRefund,
    AuthorisePayment,
    CapturePayment,
    Command,
    FailPayment,
    FailRefund,
    IssueRefund,
    PublishTariff,
    RejectRefund,
    RequestRefund,
    StartSession,
    StopSession,
    VoidPayment,
)
from domain.errors import (
    IdempotencyConflictError,
    InvalidValueError,
    PaymentRuleViolation,
    RefundRuleViolation,
    SessionRuleViolation,
    UnknownAggregateError,
)
from domain.idempotency import ProcessedMessage
from domain.ids import (
    payment_aggregate_id,
    processed_message_id,
    refund_aggregate_id,
    session_aggregate_id,
    settlement_aggregate_id,
    tariff_aggregate_id,
)
from domain.payment import Payment
from domain.policy import RefundPolicy, automatic_approval
from domain.refund import SYSTEM, Refund
from domain.results import CommandResult, Outcome, RecordedEvent
from domain.session import ChargingSession
from domain.settlement import SessionSettlement
from domain.tariff import Tariff
from domain.vocabulary import RefundStatus

log = logging.getLogger(__name__)

# Told a batch's results once they are decided: just before the batch's one save, or after
# the one-at-a-time fallback has saved each command.
FinishBatch = Callable[[list["CommandResult | Exception"]], None]


def _nothing_to_add(results: list[CommandResult | Exception]) -> None:
    return None


A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=Command)


@dataclass
class _Decision:
    """The aggregates a command changed, and the reason if it was a rejection."""

    aggregates: list[Aggregate] = field(default_factory=list)
    rejection_reason: str | None = None


class BillingApplication(Application[UUID]):
    """The billing ledger's write side: upstream messages in, domain events out."""

    # Racing writers on one aggregate: one wins, the others retry on fresh state
    # (ARCHITECTURE.md, guarantee 2). A few attempts are plenty; past that, let the caller retry.
    max_attempts = 5

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        refund_policy: RefundPolicy | None = None,
        unknown_note: str = "",
    ) -> None:
        super().__init__(env)
        self.refund_policy = refund_policy or RefundPolicy()
        # Added to a rejection for an unknown tariff, session, payment or refund: on one
        # shard of a sharded ledger, the routing rule (the message may be on the wrong one).
        self.unknown_note = unknown_note
        self._deciders: dict[type[Command], Callable[[Any], _Decision]] = {
            PublishTariff: self._publish_tariff,
            StartSession: self._start_session,
            StopSession: self._stop_session,
            AuthorisePayment: self._authorise_payment,
            CapturePayment: self._capture_payment,
            FailPayment: self._fail_payment,
            VoidPayment: self._void_payment,
            RequestRefund: self._request_refund,
            ApproveRefund: self._approve_refund,
            RejectRefund: self._reject_refund,
            IssueRefund: self._issue_refund,
            FailRefund: self._fail_refund,
        }
        # Aggregates changed by earlier commands of the batch being handled (handle_batch).
        self._unit_of_work: dict[UUID, Aggregate] | None = None

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        """Exactly the environment it is given (the composition root builds it from the
        validated settings). The library's default also merges os.environ, so that a key set
        in the shell (IS_SNAPSHOTTING_ENABLED, AGGREGATE_CACHE_MAXSIZE, the Kafka store's
        KAFKA_*) would steer the ledger behind the settings' back."""
        return Environment(name, {**type(self).env, **(env or {})})

    # --- dispatch and idempotency ------------------------------------------------------

    def handle(self, command: Command) -> CommandResult:
        """Apply any command by its type."""
        return self._execute(command, self._decider(command))

    def handle_batch(
        self, commands: Sequence[Command], finish: FinishBatch | None = None
    ) -> list[CommandResult | Exception]:
        """Apply many commands with one save, so that a store writes them in one transaction.

        Later commands of the batch see what earlier ones changed (a unit of work), and the
        events are stored in command order. ``finish`` is called once with the results,
        just before the batch's one save (a caller can attach what its store should commit
        with the events there: consumer offsets, dead letters). If a command raises, or the
        save meets a concurrent writer, the batch is redone one command at a time on fresh
        state, each message that still fails comes back as its exception for the caller to
        dead-letter, and ``finish`` is called after those saves. A store that is unavailable
        (a PersistenceError other than a version conflict) is raised: no message is judged
        while it is down.
        """
        finish = finish or _nothing_to_add
        try:
            return list(self._handle_in_one_save(commands, finish))
        except IntegrityError:
            log.info("batch met a concurrent writer; applying its commands one at a time")
        except PersistenceError:
            raise
        except Exception as error:
            log.info("a command of the batch raised %r; applying one at a time", error)
        results = [self._handle_alone(command) for command in commands]
        finish(results)
        return results

    def _handle_alone(self, command: Command) -> CommandResult | Exception:
        try:
            return self.handle(command)
        except PersistenceError:
            raise
        except (InvalidValueError, IdempotencyConflictError) as unfixable:
            return unfixable
        except Exception as error:
            # Our own defect, not the message's: kept as a dead letter with the reason
            # rather than blocking every message behind it; fixed code can replay it.
            log.exception("command %s (%s) failed", command.event_id, command.MESSAGE_TYPE)
            return error

    def _handle_in_one_save(
        self, commands: Sequence[Command], finish: FinishBatch
    ) -> list[CommandResult]:
        events: list[DomainEventProtocol[UUID]] = []
        results: list[CommandResult] = []
        self._unit_of_work = {}
        try:
            for command in commands:
                repeated = self._repeated(command)
                if repeated is not None:
                    results.append(repeated)
                    continue
                decision, processed = self._decide(command, self._decider(command))
                changed = (*decision.aggregates, processed)
                new_events = [
                    event for aggregate in changed for event in aggregate.collect_events()
                ]
                events.extend(new_events)
                for aggregate in changed:
                    self._unit_of_work[aggregate.id] = aggregate
                results.append(_result(command, decision, [_named(e) for e in new_events]))
        finally:
            self._unit_of_work = None
        finish(list(results))
        if events:
            self.save(*events)
        return results

    def _repeated(self, command: Command) -> CommandResult | None:
        """The result of a message seen before, or None if its event_id is new."""
        previous = self._find(ProcessedMessage, processed_message_id(command.event_id))
        if previous is None:
            return None
        return self._repeat(command, previous, command.content_sha256())

    def _decider(self, command: Command) -> Callable[[Any], _Decision]:
        try:
            return self._deciders[type(command)]
        except KeyError:
            raise InvalidValueError(f"no handler for {type(command).__name__}") from None

    def _execute(self, command: C, decide: Callable[[C], _Decision]) -> CommandResult:
        last_conflict: IntegrityError | None = None
        for _ in range(self.max_attempts):
            repeated = self._repeated(command)
            if repeated is not None:
                return repeated
            decision, processed = self._decide(command, decide)
            try:
                recordings = self.save(*decision.aggregates, processed)
            except IntegrityError as conflict:
                # Either the same message won a race (the loop then finds it processed),
                # or another writer moved an aggregate on: decide again on fresh state.
                last_conflict = conflict
                continue
            return _result(command, decision, [_recorded(recording) for recording in recordings])
        assert last_conflict is not None
        raise last_conflict

    def _decide(
        self, command: C, decide: Callable[[C], _Decision]
    ) -> tuple[_Decision, ProcessedMessage]:
        """The command's decision, and the record that marks its event_id as processed."""
        decision = decide(command)
        reason = decision.rejection_reason
        if self.unknown_note and reason is not None and reason.startswith("unknown "):
            decision.rejection_reason = f"{reason} {self.unknown_note}"
        processed = ProcessedMessage.record(
            event_id=command.event_id,
            message_type=command.MESSAGE_TYPE,
            content_sha256=command.content_sha256(),
            outcome=_outcome(decision).value,
            rejection_reason=decision.rejection_reason,
        )
        return decision, processed

    @staticmethod
    def _repeat(command: Command, previous: ProcessedMessage, content_sha256: str) -> CommandResult:
        if previous.content_sha256 != content_sha256:
            raise IdempotencyConflictError(
                f"event_id {command.event_id!r} was already used for a different "
                f"{previous.message_type} message; upstream must not reuse event ids"
            )
        return CommandResult(
            event_id=command.event_id,
            message_type=command.MESSAGE_TYPE,
            outcome=Outcome.DUPLICATE,
            rejection_reason=previous.rejection_reason,
            first_outcome=Outcome(previous.outcome),
        )

    def _find(self, aggregate_class: type[A], aggregate_id: UUID) -> A | None:
        aggregate: object
        if self._unit_of_work is not None and aggregate_id in self._unit_of_work:
            aggregate = self._unit_of_work[aggregate_id]
        else:
            try:
                aggregate = self.repository.get(aggregate_id)
            except AggregateNotFoundError:
                return None
        if not isinstance(aggregate, aggregate_class):  # pragma: no cover - ids are typed
            msg = f"aggregate {aggregate_id} is a {type(aggregate).__name__}"
            raise TypeError(msg)
        return aggregate

    # --- tariffs and sessions ----------------------------------------------------------

    def _publish_tariff(self, command: PublishTariff) -> _Decision:
        tariff = self._find(Tariff, tariff_aggregate_id(command.tariff_id))
        if tariff is None:
            tariff = Tariff.publish(command.tariff_id, command.terms(), command.occurred_at)
        else:
            tariff.revise(command.terms(), command.occurred_at)
        return _Decision([tariff])

    def _start_session(self, command: StartSession) -> _Decision:
        existing = self._find(ChargingSession, session_aggregate_id(command.session_id))
        if existing is not None:
            reason = f"session {command.session_id} has already started"
            return _reject_on(existing, command, reason)
        tariff = self._find(Tariff, tariff_aggregate_id(command.tariff_id))
        if tariff is None:
            return _Decision(
                rejection_reason=f"unknown tariff {command.tariff_id}: publish it before "
                "starting sessions on it"
            )
        tariff_version = tariff.version_in_force_at(command.occurred_at)
        session = ChargingSession.start(
            session_id=command.session_id,
            station_id=command.station_id,
            connector_id=command.connector_id,
            customer_id=command.customer_id,
            tariff_id=command.tariff_id,
            tariff_version=tariff_version,
            tariff_terms=tariff.terms_at_version(tariff_version),
            meter_start_wh=command.meter_start_wh,
            started_at=command.occurred_at,
        )
        return _Decision([session])

    def _stop_session(self, command: StopSession) -> _Decision:
        session = self._find(ChargingSession, session_aggregate_id(command.session_id))
        if session is None:
            return _Decision(rejection_reason=f"unknown session {command.session_id}")
        try:
            session.stop(
                meter_stop_wh=command.meter_stop_wh,
                stopped_at=command.occurred_at,
                stop_reason=command.stop_reason,
                charging_ended_at=command.charging_ended_at,
            )
        except SessionRuleViolation as violation:
            return _reject_on(session, command, violation.reason)
        priced = session.priced
        assert priced is not None  # stop() prices the session
        settlement = self._settlement(command.session_id)
        settlement.record_priced(total_minor=priced.total_minor, currency=priced.currency)
        changed: list[Aggregate] = [session, settlement]
        # Payments captured before the session was priced are reconciled now.
        for payment_id in settlement.captured_payment_ids:
            payment = self._find(Payment, payment_aggregate_id(payment_id))
            if payment is not None and not payment.is_reconciled:
                payment.reconcile(
                    session_id=command.session_id,
                    session_total_minor=settlement.due_for(payment_id),
                    session_currency=priced.currency,
                )
                changed.append(payment)
        return _Decision(changed)

    def _settlement(self, session_id: str) -> SessionSettlement:
        existing = self._find(SessionSettlement, settlement_aggregate_id(session_id))
        return existing or SessionSettlement.open(session_id)

    # --- payments ------------------------------------------------------------------------

    def _authorise_payment(self, command: AuthorisePayment) -> _Decision:
        existing = self._find(Payment, payment_aggregate_id(command.payment_id))
        if existing is not None:
            reason = f"payment {command.payment_id} already exists ({existing.status.value})"
            return _reject_on(existing, command, reason)
        # The session need not exist yet: upstream systems publish independently.
        payment = Payment.authorise(
            payment_id=command.payment_id,
            session_id=command.session_id,
            method=command.method,
            currency=command.currency,
            hold_minor=command.amount_minor,
            occurred_at=command.occurred_at,
        )
        return _Decision([payment])

    def _capture_payment(self, command: CapturePayment) -> _Decision:
        payment = self._find(Payment, payment_aggregate_id(command.payment_id))
        if payment is None:
            return _Decision(
                rejection_reason=f"unknown payment {command.payment_id}: no authorisation "
                "recorded to capture against"
            )
        rejection = payment.capture(
            event_id=command.event_id,
            amount_minor=command.amount_minor,
            occurred_at=command.occurred_at,
        )
        if rejection is not None:
            return _Decision([payment], rejection)
        changed: list[Aggregate] = [payment]
        if payment.session_id is not None:
            settlement = self._settlement(payment.session_id)
            settlement.record_capture(
                payment_id=payment.payment_id, captured_minor=command.amount_minor
            )
            changed.append(settlement)
            if settlement.total_minor is not None and settlement.currency is not None:
                payment.reconcile(
                    session_id=payment.session_id,
                    session_total_minor=settlement.due_for(payment.payment_id),
                    session_currency=settlement.currency,
                )
        return _Decision(changed)

    def _fail_payment(self, command: FailPayment) -> _Decision:
        payment = self._find(Payment, payment_aggregate_id(command.payment_id))
        if payment is None:
            declined = Payment.decline(
                payment_id=command.payment_id,
                session_id=command.session_id,
                reason=command.reason,
                occurred_at=command.occurred_at,
            )
            return _Decision([declined])
        try:
            payment.fail(reason=command.reason, occurred_at=command.occurred_at)
        except PaymentRuleViolation as violation:
            return _reject_on(payment, command, violation.reason)
        return _Decision([payment])

    def _void_payment(self, command: VoidPayment) -> _Decision:
        payment = self._find(Payment, payment_aggregate_id(command.payment_id))
        if payment is None:
            return _Decision(rejection_reason=f"unknown payment {command.payment_id}")
        try:
            payment.void(reason=command.reason, occurred_at=command.occurred_at)
        except PaymentRuleViolation as violation:
            return _reject_on(payment, command, violation.reason)
        return _Decision([payment])

    # --- refunds -------------------------------------------------------------------------

    def _request_refund(self, command: RequestRefund) -> _Decision:
        existing = self._find(Refund, refund_aggregate_id(command.refund_id))
        if existing is not None:
            reason = f"refund {command.refund_id} was already requested"
            return _reject_on(existing, command, reason)
        payment = self._find(Payment, payment_aggregate_id(command.payment_id))
        refund = Refund.request(
            refund_id=command.refund_id,
            payment_id=command.payment_id,
            session_id=payment.session_id if payment else None,
            amount_minor=command.amount_minor,
            currency=payment.currency if payment else None,
            reason=command.reason,
            note=command.note,
            occurred_at=command.occurred_at,
        )
        blocker = (
            f"unknown payment {command.payment_id}"
            if payment is None
            else payment.refund_blocker(command.amount_minor)
        )
        if blocker is not None:
            refund.reject(
                decided_by=SYSTEM, reason=blocker, note=None, occurred_at=command.occurred_at
            )
            return _Decision([refund], blocker)
        assert payment is not None
        session = (
            self._find(ChargingSession, session_aggregate_id(payment.session_id))
            if payment.session_id
            else None
        )
        why = automatic_approval(
            self.refund_policy,
            reason=command.reason,
            amount_minor=command.amount_minor,
            payment=payment,
            session=session,
        )
        if why is None:
            return _Decision([refund])  # a person decides (refund.approved / rejected)
        refund.approve(decided_by=SYSTEM, note=why, occurred_at=command.occurred_at, automatic=True)
        payment.approve_refund(
            refund_id=command.refund_id, amount_minor=command.amount_minor, reason=command.reason
        )
        return _Decision([refund, payment])

    def _approve_refund(self, command: ApproveRefund) -> _Decision:
        refund = self._find(Refund, refund_aggregate_id(command.refund_id))
        if refund is None:
            return _Decision(rejection_reason=f"unknown refund {command.refund_id}")
        if refund.status is not RefundStatus.REQUESTED:
            reason = f"refund {command.refund_id} is {refund.status.value}, not requested"
            return _reject_on(refund, command, reason)
        payment = self._find(Payment, payment_aggregate_id(refund.payment_id))
        blocker = (
            f"unknown payment {refund.payment_id}"
            if payment is None
            else payment.refund_blocker(refund.amount_minor)
        )
        if blocker is not None:
            # The balance may have shrunk since the request: the system refuses the approval.
            refund.reject(
                decided_by=SYSTEM,
                reason=blocker,
                note=f"approval by {command.decided_by} refused",
                occurred_at=command.occurred_at,
            )
            return _Decision([refund], blocker)
        assert payment is not None
        refund.approve(
            decided_by=command.decided_by, note=command.note, occurred_at=command.occurred_at
        )
        payment.approve_refund(
            refund_id=refund.refund_id, amount_minor=refund.amount_minor, reason=refund.reason
        )
        return _Decision([refund, payment])

    def _reject_refund(self, command: RejectRefund) -> _Decision:
        refund = self._find(Refund, refund_aggregate_id(command.refund_id))
        if refund is None:
            return _Decision(rejection_reason=f"unknown refund {command.refund_id}")
        try:
            refund.reject(
                decided_by=command.decided_by,
                reason=command.note or f"rejected by {command.decided_by}",
                note=command.note,
                occurred_at=command.occurred_at,
            )
        except RefundRuleViolation as violation:
            return _reject_on(refund, command, violation.reason)
        return _Decision([refund])

    def _issue_refund(self, command: IssueRefund) -> _Decision:
        refund = self._find(Refund, refund_aggregate_id(command.refund_id))
        if refund is None:
            return _Decision(rejection_reason=f"unknown refund {command.refund_id}")
        try:
            refund.issue(processor_ref=command.processor_ref, occurred_at=command.occurred_at)
        except RefundRuleViolation as violation:
            return _reject_on(refund, command, violation.reason)
        return _Decision([refund])

    def _fail_refund(self, command: FailRefund) -> _Decision:
        refund = self._find(Refund, refund_aggregate_id(command.refund_id))
        if refund is None:
            return _Decision(rejection_reason=f"unknown refund {command.refund_id}")
        try:
            refund.fail(reason=command.reason, occurred_at=command.occurred_at)
        except RefundRuleViolation as violation:
            return _reject_on(refund, command, violation.reason)
        payment = self._find(Payment, payment_aggregate_id(refund.payment_id))
        if payment is None:  # pragma: no cover - an approved refund has a known payment
            return _Decision([refund])
        payment.release_refund(refund_id=refund.refund_id)
        return _Decision([refund, payment])

    # --- queries -------------------------------------------------------------------------

    def get_tariff(self, tariff_id: str) -> Tariff:
        return self._get(Tariff, tariff_aggregate_id(tariff_id), f"tariff {tariff_id}")

    def get_session(self, session_id: str) -> ChargingSession:
        return self._get(ChargingSession, session_aggregate_id(session_id), f"session {session_id}")

    def get_payment(self, payment_id: str) -> Payment:
        return self._get(Payment, payment_aggregate_id(payment_id), f"payment {payment_id}")

    def get_refund(self, refund_id: str) -> Refund:
        return self._get(Refund, refund_aggregate_id(refund_id), f"refund {refund_id}")

    def _get(self, aggregate_class: type[A], aggregate_id: UUID, what: str) -> A:
        aggregate = self._find(aggregate_class, aggregate_id)
        if aggregate is None:
            raise UnknownAggregateError(f"unknown {what}")
        return aggregate


def _reject_on(
    aggregate: ChargingSession | Payment | Refund, command: Command, reason: str
) -> _Decision:
    """Record a rule-breaking command on the aggregate it addressed (Guarantee 8)."""
    at: datetime = command.occurred_at
    if isinstance(aggregate, Refund):
        aggregate.record_rejected_command(
            message_type=command.MESSAGE_TYPE, event_id=command.event_id, reason=reason, at=at
        )
    else:
        aggregate.reject(
            message_type=command.MESSAGE_TYPE, event_id=command.event_id, reason=reason, at=at
        )
    return _Decision([aggregate], reason)


def _outcome(decision: _Decision) -> Outcome:
    return Outcome.REJECTED if decision.rejection_reason else Outcome.APPLIED


def _result(command: Command, decision: _Decision, events: list[RecordedEvent]) -> CommandResult:
    return CommandResult(
        event_id=command.event_id,
        message_type=command.MESSAGE_TYPE,
        outcome=_outcome(decision),
        rejection_reason=decision.rejection_reason,
        events=tuple(events),
    )


def _recorded(recording: Recording[UUID]) -> RecordedEvent:
    return _named(recording.domain_event)


def _named(event: DomainEventProtocol[UUID]) -> RecordedEvent:
    return RecordedEvent(
        name=type(event).__qualname__,
        originator_id=event.originator_id,
        originator_version=event.originator_version,
    )
