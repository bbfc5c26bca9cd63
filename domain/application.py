"""BillingApplication: one method per upstream message, idempotent by event_id.

Uses only the library's Application API (repository.get, save, the notification log), so
it runs unchanged on the POPO, SQLite and Kafka persistence modules.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import (
    Aggregate,
    CanMutateAggregate,
    DomainEventProtocol,
    MutableOrImmutableAggregate,
)
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording
from eventsourcing.utils import Environment, EnvType

# Imported for its effect: every stored event topic resolves, whatever was renamed since.
import domain.event_topics  # noqa: F401
from domain import recent_aggregates
from domain.cdr_reconciliation import CdrTolerance, Reconciliation, reconcile
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
    DomainError,
    IdempotencyConflictError,
    InvalidValueError,
    PaymentRuleViolation,
    RefundRuleViolation,
    SessionRuleViolation,
    UnknownAggregateError,
)
from domain.idempotency import ProcessedMessage
from domain.ids import (
    named_aggregate_ids,
    payment_aggregate_id,
    processed_message_id,
    refund_aggregate_id,
    roaming_cdr_aggregate_id,
    roaming_location_aggregate_id,
    roaming_tariff_aggregate_id,
    session_aggregate_id,
    settlement_aggregate_id,
    tariff_aggregate_id,
)
from domain.ocpi import codec
from domain.ocpi.engine import price_cdr
from domain.ocpi.model import Cdr as OcpiCdr
from domain.ocpi_commands import RecordCdr, RecordOcpiLocation, RecordOcpiTariff
from domain.payment import Payment
from domain.policy import RefundPolicy, automatic_approval
from domain.refund import SYSTEM, Refund
from domain.results import CommandResult, Outcome, RecordedEvent
from domain.roaming_cdr import RoamingCdr
from domain.roaming_location import RoamingLocation
from domain.roaming_tariff import RoamingTariff
from domain.session import ChargingSession
from domain.settlement import SessionSettlement
from domain.tariff import Tariff
from domain.vocabulary import (
    CDR_CLAIM_PAYMENT_PREFIX,
    CDR_CLAIM_REFUND_PREFIX,
    CdrReconciliation,
    CdrRejection,
    CdrStatus,
    RefundReason,
    RefundStatus,
)

log = logging.getLogger(__name__)

# Told a batch's results once they are decided: just before the batch's one save, or after
# the one-at-a-time fallback has saved each command.
FinishBatch = Callable[[list["CommandResult | Exception"]], None]


def _replayed(aggregate: Any, events: Iterable[Any]) -> Any:
    """The aggregate after its stored events: the library's project_aggregate without its
    per-event ``isinstance`` against a runtime Protocol, which walks the Protocol's members
    each time (on Python 3.11 a large share of loading an aggregate). Every stored event is
    one of the domain's event classes, whose ``mutate`` the library defines."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def _nothing_to_add(results: list[CommandResult | Exception]) -> None:
    return None


A = TypeVar("A", bound=Aggregate)
C = TypeVar("C", bound=Command)


@dataclass
class _Decision:
    """The aggregates a command changed, and the reason if it was a rejection."""

    aggregates: list[Aggregate] = field(default_factory=list)
    rejection_reason: str | None = None


@dataclass(frozen=True)
class _CdrTariff:
    """The tariff a CDR is re-priced with, as the ledger will keep it."""

    tariff_id: str
    source: str  # "cdr": the CDR's own tariffs; "ledger": an ocpi.tariff version
    last_updated: datetime | None
    document: str


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
        cdr_tolerance: CdrTolerance | None = None,
        unknown_note: str = "",
        aggregate_cache_size: int = recent_aggregates.DEFAULT_SIZE,
    ) -> None:
        super().__init__(env)
        self.refund_policy = refund_policy or RefundPolicy()
        self.cdr_tolerance = cdr_tolerance or CdrTolerance()
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
            RecordOcpiTariff: self._record_ocpi_tariff,
            RecordOcpiLocation: self._record_ocpi_location,
            RecordCdr: self._record_cdr,
        }
        # Aggregates loaded or changed by earlier commands of the batch being handled
        # (handle_batch), and those that earlier batches left (domain/recent_aggregates.py).
        self._unit_of_work: dict[UUID, Aggregate] | None = None
        self._recent = recent_aggregates.RecentAggregates(aggregate_cache_size)
        # The last stored versions of the aggregates the batch's messages name (their
        # records, sessions, payments...), asked at the batch's start in one look-up when
        # the recorder can (the Kafka ledger's: `recorded_versions`); an aggregate looked
        # up but absent has no events yet. Otherwise each is looked for on its own.
        self._looked_up: AbstractSet[UUID] = frozenset()
        self._versions: dict[UUID, int] = {}
        self._recorded_versions: Callable[[Sequence[UUID]], dict[UUID, int]] | None = getattr(
            self.recorder, "recorded_versions", None
        )

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
        self,
        commands: Sequence[Command],
        finish: FinishBatch | None = None,
        redoing: FinishBatch | None = None,
    ) -> list[CommandResult | Exception]:
        """Apply many commands with one save, so that a store writes them in one transaction.

        Later commands of the batch see what earlier ones changed (a unit of work), and the
        events are stored in command order. ``finish`` is called once with the results,
        just before the batch's one save (a caller can attach what its store should commit
        with the events there: consumer offsets, dead letters). If a command raises, or the
        save meets a concurrent writer, the batch is redone one command at a time on fresh
        state, each message that still fails comes back as its exception for the caller to
        dead-letter, and ``finish`` is called after those saves. ``redoing`` is called
        before the redo with its results list, which grows by one as each message is saved
        alone (a caller then knows which were saved if a save fails). A store that is
        unavailable (a PersistenceError other than a version conflict) is raised: no message
        is judged while it is down.
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
        results: list[CommandResult | Exception] = []
        (redoing or _nothing_to_add)(results)
        for command in commands:
            results.append(self._handle_alone(command))
        finish(results)
        return results

    def forget_kept(self) -> None:
        """Drop the aggregates kept from earlier batches (a deferred commit of theirs failed,
        so they hold events the ledger may not have)."""
        self._recent.clear()

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
        batch: dict[UUID, Aggregate] = {}
        self._unit_of_work = batch
        try:
            self._look_up(commands)
            for command in commands:
                repeated = self._repeated(command)
                if repeated is not None:
                    results.append(repeated)
                    continue
                decision, processed = self._decide(command, self._decider(command))
                new_events: list[DomainEventProtocol[UUID]] = []
                for aggregate in (*decision.aggregates, processed):
                    # collect_events() without its pop(0) and append per event (no
                    # aggregate here overrides it).
                    pending = aggregate.pending_events
                    new_events.extend(pending)
                    pending.clear()
                    batch[aggregate.id] = aggregate
                events.extend(new_events)
                results.append(_result(command, decision, [_named(e) for e in new_events]))
            self._unit_of_work = None
            finish(list(results))
            if events:
                self.save(*events)
        except BaseException:
            # Aggregates of the batch may have changed without being saved.
            self._recent.clear()
            raise
        finally:
            self._unit_of_work = None
            self._looked_up, self._versions = frozenset(), {}
        for aggregate in batch.values():
            # A message's record is looked up again only if the message comes again.
            if not isinstance(aggregate, ProcessedMessage):
                self._recent.keep(aggregate)
        return results

    def save(
        self,
        *objs: MutableOrImmutableAggregate[UUID] | DomainEventProtocol[UUID] | None,
        **kwargs: Any,
    ) -> list[Recording[UUID]]:
        """The library's save(), without its ``isinstance`` of every object against runtime
        Protocols (DomainEventProtocol, CollectEventsProtocol), which walks the Protocol's
        members each time: several per message of every ingest batch. Every aggregate here
        is an ``Aggregate``; anything else given is a domain event."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            # Events first: a batch saves a thousand or more, and an isinstance against
            # Aggregate (an ABC) costs six times one against the events' plain base class.
            if isinstance(obj, CanMutateAggregate):
                processing_event.events.append(obj)
            elif isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.events.append(cast("DomainEventProtocol[UUID]", obj))
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)
        return recordings

    def _look_up(self, commands: Sequence[Command]) -> None:
        """Ask the store, in one look-up, for the last versions of every aggregate the
        commands name (nothing if the recorder cannot: each is then looked for alone)."""
        if self._recorded_versions is None:
            return
        ids = {processed_message_id(command.event_id) for command in commands}
        for command in commands:
            ids.update(named_aggregate_ids(command))
            reached = self._reached_through_kept(command)
            if reached is not None:
                ids.add(reached)
        self._versions = self._recorded_versions(list(ids))
        # The set itself, not a frozenset of it: a copy hashes every id again (a UUID's
        # hash is Python code), a few per message.
        self._looked_up = ids

    def _reached_through_kept(self, command: Command) -> UUID | None:
        """An aggregate a command reaches through one it names, when that one is kept from
        an earlier batch: a refund request's payment's session, a refund decision's
        payment. Looked up with the rest, a kept one is then used without a read of its own
        (a fast-forward read per refund was a fiftieth of ingest's CPU). The link is fixed
        once made (a payment's session, a refund's payment), so a kept aggregate that is
        behind the store still names the right one; one not kept is read when reached."""
        if isinstance(command, RequestRefund):
            payment = self._recent.get(payment_aggregate_id(command.payment_id))
            if isinstance(payment, Payment) and payment.session_id:
                return session_aggregate_id(payment.session_id)
        elif isinstance(command, ApproveRefund | IssueRefund):
            refund = self._recent.get(refund_aggregate_id(command.refund_id))
            if isinstance(refund, Refund) and refund.payment_id:
                return payment_aggregate_id(refund.payment_id)
        return None

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
        aggregate: Aggregate | None
        batch = self._unit_of_work
        if batch is not None and aggregate_id in batch:
            aggregate = batch[aggregate_id]
        else:
            looked_up = aggregate_id in self._looked_up
            stored_version = self._versions.get(aggregate_id)
            if looked_up and stored_version is None:
                return None  # no events when the batch started
            aggregate = None if batch is None else self._recent.get(aggregate_id)
            if aggregate is not None:
                if not looked_up or stored_version != aggregate.version:
                    # Kept by an earlier batch: add whatever was stored after it since.
                    aggregate = _replayed(
                        aggregate, self.events.get(aggregate_id, gt=aggregate.version)
                    )
            else:
                try:
                    aggregate = self.repository.get(aggregate_id, projector_func=_replayed)
                except AggregateNotFoundError:
                    return None
            if batch is not None:
                batch[aggregate_id] = aggregate
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
        if (
            refund.status is RefundStatus.APPROVED
            and self._find(Payment, payment_aggregate_id(refund.payment_id)) is None
        ):
            # A roaming CDR's overcharge claim: the OCPI party pays it back, not our processor.
            reason = (
                f"refund {refund.refund_id} is a claim on {refund.payment_id}, not a captured "
                "payment: there is nothing to pay it out from"
            )
            return _reject_on(refund, command, reason)
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

    # --- OCPI roaming: tariffs, locations, CDRs ------------------------------------------

    def _record_ocpi_tariff(self, command: RecordOcpiTariff) -> _Decision:
        tariff, stamp = command.tariff(), command.last_updated()
        key = (tariff.country_code, tariff.party_id, tariff.id)
        existing = self._find(RoamingTariff, roaming_tariff_aggregate_id(*key))
        if existing is None:
            recorded = RoamingTariff.record(
                country_code=tariff.country_code,
                party_id=tariff.party_id,
                tariff_id=tariff.id,
                last_updated=stamp,
                currency=tariff.currency,
                document=command.document,
            )
            return _Decision([recorded])
        if existing.has_version(stamp):
            return _Decision(
                rejection_reason=f"OCPI tariff {'/'.join(key)} last_updated {stamp.isoformat()} "
                "is already recorded; an update needs a new last_updated"
            )
        existing.update(last_updated=stamp, currency=tariff.currency, document=command.document)
        return _Decision([existing])

    def _record_ocpi_location(self, command: RecordOcpiLocation) -> _Decision:
        key = (command.country_code, command.party_id, command.location_id)
        existing = self._find(RoamingLocation, roaming_location_aggregate_id(*key))
        if existing is None:
            recorded = RoamingLocation.record(
                country_code=command.country_code,
                party_id=command.party_id,
                location_id=command.location_id,
                time_zone=command.time_zone,
                last_updated=command.last_updated,
            )
            return _Decision([recorded])
        if existing.last_updated == command.last_updated:
            return _Decision(
                rejection_reason=f"OCPI location {'/'.join(key)} last_updated "
                f"{command.last_updated.isoformat()} is already recorded"
            )
        existing.update(time_zone=command.time_zone, last_updated=command.last_updated)
        return _Decision([existing])

    def _record_cdr(self, command: RecordCdr) -> _Decision:
        cdr, raw = command.cdr(), command.raw()
        name = f"CDR {cdr.country_code}/{cdr.party_id}/{cdr.id}"
        location = raw.get("cdr_location")
        location_id = str(location.get("id", "")) if isinstance(location, dict) else ""
        session_id = raw.get("session_id")
        existing = self._find(
            RoamingCdr, roaming_cdr_aggregate_id(cdr.country_code, cdr.party_id, cdr.id)
        )
        retry = (
            existing is not None
            and existing.status is CdrStatus.REJECTED
            and existing.document == command.document
        )
        if existing is not None and not retry:
            return _Decision(
                rejection_reason=f"{name} was already received; OCPI CDRs are never updated: "
                "send a credit CDR and a replacement with a new id"
            )
        # A CDR rejected for want of its tariff or zone is tried again, unchanged, once
        # they are in the ledger (sent again with a new event_id).
        received = existing or RoamingCdr.receive(
            cdr,
            session_id=session_id if isinstance(session_id, str) else None,
            location_id=location_id,
            document=command.document,
            occurred_at=command.occurred_at,
        )
        at = command.occurred_at
        if cdr.credit:
            return self._apply_credit(received, cdr.credit_reference_id or "", at)
        zone, zone_source = command.time_zone, "message"
        if zone is None:
            found = self._find(
                RoamingLocation,
                roaming_location_aggregate_id(cdr.country_code, cdr.party_id, location_id),
            )
            zone, zone_source = (found.time_zone, "location") if found else (None, "")
        if zone is None:
            reason = (
                f"{name}: no time zone for location {location_id}: the message gives none and "
                "no ocpi.location for it is in the ledger (evledger never guesses one)"
            )
            return _rejected_cdr(received, CdrRejection.UNKNOWN_TIME_ZONE, reason, at)
        chosen = self._cdr_tariff(cdr, raw, name)
        if not isinstance(chosen, _CdrTariff):
            code, reason = chosen
            return _rejected_cdr(received, code, reason, at)
        tariff_id, source, stamp, document = (
            chosen.tariff_id,
            chosen.source,
            chosen.last_updated,
            chosen.document,
        )
        try:
            pricing = price_cdr(codec.tariff(codec.loads(document)), cdr, zone)
        except DomainError as error:
            reason = f"{name} cannot be priced with tariff {tariff_id}: {error.reason}"
            return _rejected_cdr(received, CdrRejection.NOT_PRICEABLE, reason, at)
        received.price(
            pricing,
            tariff_id=tariff_id,
            tariff_source=source,
            tariff_last_updated=stamp,
            tariff_document=document,
            time_zone_source=zone_source,
        )
        reconciliation = reconcile(cdr, pricing, self.cdr_tolerance)
        received.reconcile(reconciliation)
        changed: list[Aggregate] = [received]
        if reconciliation.status is CdrReconciliation.OVERCHARGE:
            changed.extend(self._overcharge_claim(received, session_id, reconciliation, at))
        return _Decision(changed)

    def _cdr_tariff(
        self, cdr: OcpiCdr, raw: dict[str, Any], name: str
    ) -> tuple[CdrRejection, str] | _CdrTariff:
        """The tariff that prices the CDR: (id, source, last_updated, JSON text), or why not.

        The CDR's own ``tariffs`` come first (what its sender says it priced with), then
        the ledger's version of the named tariff in force at the CDR's start."""
        named = list(dict.fromkeys(p.tariff_id for p in cdr.charging_periods if p.tariff_id))
        if len(named) > 1:
            return (
                CdrRejection.AMBIGUOUS_TARIFF,
                f"{name} is priced by several tariffs ({', '.join(named)}); one per CDR is "
                "supported",
            )
        embedded = [t for t in raw.get("tariffs") or [] if isinstance(t, dict)]
        candidates = [t for t in embedded if not named or t.get("id") == named[0]]
        if len(candidates) > 1:
            return (
                CdrRejection.AMBIGUOUS_TARIFF,
                f"{name} carries {len(candidates)} tariffs and its charging periods name none",
            )
        if candidates:
            (own,) = candidates
            return _CdrTariff(
                str(own["id"]), "cdr", codec.moment(own["last_updated"]), codec.dumps(own)
            )
        if not named:
            return (
                CdrRejection.UNKNOWN_TARIFF,
                f"{name} names no tariff (no charging period has a tariff_id and it carries "
                "no tariffs)",
            )
        tariff_id = named[0]
        found = self._find(
            RoamingTariff, roaming_tariff_aggregate_id(cdr.country_code, cdr.party_id, tariff_id)
        )
        version = found.version_at(cdr.start_date_time) if found else None
        if version is None:
            known = "is not in the ledger" if found is None else "has no version before it"
            return (
                CdrRejection.UNKNOWN_TARIFF,
                f"{name}: tariff {cdr.country_code}/{cdr.party_id}/{tariff_id} {known} "
                f"(session start {cdr.start_date_time.isoformat()}): import the ocpi.tariff "
                "first",
            )
        stamp, document = version
        return _CdrTariff(tariff_id, "ledger", stamp, document)

    def _apply_credit(self, credit: RoamingCdr, original_id: str, at: datetime) -> _Decision:
        original = self._find(
            RoamingCdr, roaming_cdr_aggregate_id(credit.country_code, credit.party_id, original_id)
        )
        name = f"credit CDR {credit.country_code}/{credit.party_id}/{credit.cdr_id}"
        if original is None or original.credit:
            reason = f"{name} reverses {original_id}, which is not a CDR in the ledger"
            return _rejected_cdr(credit, CdrRejection.UNKNOWN_ORIGINAL, reason, at)
        if original.status is CdrStatus.REVERSED:
            reason = f"{name}: CDR {original_id} was already reversed by {original.reversed_by}"
            return _rejected_cdr(credit, CdrRejection.ALREADY_REVERSED, reason, at)
        original.reverse(credit_cdr_id=credit.cdr_id, at=at)
        credit.apply_credit(original_cdr_id=original_id, at=at)
        return _Decision([credit, original])

    def _overcharge_claim(
        self, cdr: RoamingCdr, session_id: Any, reconciliation: Reconciliation, at: datetime
    ) -> list[Aggregate]:
        """An overcharge proven by re-pricing is a refund claim on the OCPI party, decided
        the way the refund policy decides a proven overcharge on a payment."""
        key = f"{cdr.country_code}:{cdr.party_id}:{cdr.cdr_id}"
        refund_id = f"{CDR_CLAIM_REFUND_PREFIX}{key}"
        if self._find(Refund, refund_aggregate_id(refund_id)) is not None:
            return []
        claim = Refund.request(
            refund_id=refund_id,
            payment_id=f"{CDR_CLAIM_PAYMENT_PREFIX}{key}",
            session_id=session_id if isinstance(session_id, str) else None,
            amount_minor=reconciliation.difference_minor,
            currency=cdr.currency,
            reason=RefundReason.OVERCHARGE.value,
            note=reconciliation.reason,
            occurred_at=at,
        )
        if self.refund_policy.auto_approve_proven_overcharge:
            claim.approve(
                decided_by=SYSTEM,
                note=f"overcharge proven by re-pricing CDR {key.replace(':', '/')}",
                occurred_at=at,
                automatic=True,
            )
        return [claim]

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


def _rejected_cdr(cdr: RoamingCdr, code: CdrRejection, reason: str, at: datetime) -> _Decision:
    cdr.reject(code, reason, at)
    return _Decision([cdr], reason)


def _outcome(decision: _Decision) -> Outcome:
    return Outcome.REJECTED if decision.rejection_reason else Outcome.APPLIED


# A result and its events are made once per message and event without their generated
# frozen __init__ (each field through object.__setattr__): their __dict__ filled at once, in
# field order, as store/frozen.py does for the store's records (the domain imports nothing of
# the project); tests/unit/domain/test_application.py compares them.
_new = object.__new__


def _result(command: Command, decision: _Decision, events: list[RecordedEvent]) -> CommandResult:
    result: CommandResult = _new(CommandResult)
    vars(result).update(
        event_id=command.event_id,
        message_type=command.MESSAGE_TYPE,
        outcome=_outcome(decision),
        rejection_reason=decision.rejection_reason,
        events=tuple(events),
        first_outcome=None,
    )
    return result


def _recorded(recording: Recording[UUID]) -> RecordedEvent:
    return _named(recording.domain_event)


def _named(event: DomainEventProtocol[UUID]) -> RecordedEvent:
    recorded: RecordedEvent = _new(RecordedEvent)
    vars(recorded).update(
        name=type(event).__qualname__,
        originator_id=event.originator_id,
        originator_version=event.originator_version,
    )
    return recorded
