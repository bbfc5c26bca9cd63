"""The library's recorder interfaces implemented on a Kafka ledger topic."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    StoredEvent,
    Subscription,
)

from store.ledger import Ledger
from store.writer import PendingCommit, SideRecord

# How often a subscription looks for events written by other processes; events written
# in this process wake it at once.
SUBSCRIPTION_POLL_S = 0.5


@dataclass(frozen=True)
class TransactionExtras:
    """What a Kafka ledger transaction commits besides a save's events: records for other
    topics (dead letters: no notification ids, no chain links) and the input consumer's next
    offsets with its group membership (Kafka's consume-transform-produce). All of it lands
    with the events, or none of it does."""

    side_records: tuple[SideRecord, ...] = ()
    # {TopicPartition: OffsetAndMetadata}, and `consumer.group_metadata()`, together or not.
    consumer_offsets: Mapping[Any, Any] | None = None
    group_metadata: Any = None

    def __bool__(self) -> bool:
        return bool(self.side_records) or self.consumer_offsets is not None


class UnsavedCommitFailed(OperationalError):
    """A deferred save's commit failed (its error is the ``__cause__``): nothing saved after
    it was sent, and what was decided on its events must be decided again."""


class KafkaAggregateRecorder(AggregateRecorder):
    """Stores and selects one aggregate's events; used for snapshots (no ids needed)."""

    def __init__(self, ledger: Ledger, uuid_ids: bool = True) -> None:
        self.ledger = ledger
        self.uuid_ids = uuid_ids

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if stored_events:
            self.ledger.insert(stored_events)
        return None

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        records = self.ledger.events(str(originator_id), gt=gt, lte=lte, desc=desc, limit=limit)
        return [record.stored_event(self.uuid_ids) for record in records]


class KafkaApplicationRecorder(KafkaAggregateRecorder, ApplicationRecorder):
    """The application's ledger: events numbered 1, 2, 3, ... in commit order."""

    def start_writing(self) -> None:
        """Start (and so fence for) this process's writer now rather than on the first insert.

        A consumer that commits its offsets in the writer's transactions must do this
        before it joins its group: offsets pending in a dead predecessor's open transaction
        block the consumer's offset fetch until the new writer aborts that transaction.
        """
        self.ledger.writer  # noqa: B018 - the property starts the writer

    def __init__(self, ledger: Ledger, uuid_ids: bool = True) -> None:
        super().__init__(ledger, uuid_ids)
        self._attached = threading.local()
        # The deferred save (see attach) whose commit is not known yet, and the last version
        # of each aggregate it writes.
        self._unsaved: PendingCommit | None = None
        self._unsaved_versions: dict[Any, int] = {}

    def attach(self, extras: TransactionExtras, *, defer: bool = False) -> None:
        """Commit ``extras`` with the next save of this thread (``commit_attached`` commits
        them on their own if no save comes).

        With ``defer`` that save returns once its transaction is sent, without its ids: the
        caller goes on deciding on its unsaved state. Every later save, and every read that
        would select its events, waits for its answer first, and if it failed raises
        UnsavedCommitFailed (so nothing decided on it is ever sent); reads of the last
        versions see its versions at once. ``wait_unsaved`` waits for it.
        """
        self._attached.extras = extras
        self._attached.defer = defer

    def commit_attached(self) -> None:
        """Commit what is still attached, alone, in one transaction."""
        extras, _ = self._take_attached()
        if extras:
            self.wait_unsaved()
            self.ledger.commit_batches(
                [], extras.consumer_offsets, extras.group_metadata, extras.side_records
            )

    def settle(self) -> None:
        """Settle a transaction whose commit failed unanswered, committing nothing: the
        writer's recovery (a fresh init_transactions) completes or aborts it, so what it
        committed, consumer offsets included, is what readers see from now on."""
        self.wait_unsaved()
        self.ledger.commit_batches([])

    @property
    def unsaved(self) -> PendingCommit | None:
        """The deferred save's commit whose answer is still to be waited for, if any."""
        return self._unsaved

    def wait_unsaved(self) -> None:
        """Wait for the deferred save's commit, if any; raise UnsavedCommitFailed if it
        failed (once: the caller then decides again from what is stored)."""
        unsaved = self._unsaved
        if unsaved is None:
            return
        unsaved.done.wait()
        self._unsaved, self._unsaved_versions = None, {}
        if unsaved.error is not None:
            raise UnsavedCommitFailed(
                f"a deferred commit to {self.ledger.config.topic!r} failed: {unsaved.error!r}"
            ) from unsaved.error

    def _take_attached(self) -> tuple[TransactionExtras, bool]:
        extras: TransactionExtras = getattr(self._attached, "extras", TransactionExtras())
        defer: bool = getattr(self._attached, "defer", False)
        self._attached.extras, self._attached.defer = TransactionExtras(), False
        return extras, defer

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Append the events, and anything attached in this thread, in one transaction
        (returning no ids if the attach deferred it)."""
        self.wait_unsaved()
        if not stored_events:
            self.commit_attached()
            return []
        extras, defer = self._take_attached()
        if defer:
            self._unsaved = self.ledger.submit(
                PendingCommit(
                    [stored_events],
                    extras.consumer_offsets,
                    extras.group_metadata,
                    extras.side_records,
                )
            )
            self._unsaved_versions = {
                event.originator_id: event.originator_version for event in stored_events
            }
            return []
        ids = self.ledger.commit_batches(
            [stored_events], extras.consumer_offsets, extras.group_metadata, extras.side_records
        )
        return ids[0] if ids else []

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        unsaved_version = self._unsaved_versions.get(originator_id)
        if unsaved_version is not None and (gt is None or gt < unsaved_version):
            # It would select events of the deferred save (after ``gt``, none of them).
            self.wait_unsaved()
        return super().select_events(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        self.wait_unsaved()
        first_id = 1 if start is None else (start if inclusive_of_start else start + 1)
        first_id = max(first_id, 1)
        records = self.ledger.notifications(first_id, limit, stop, topics)
        return [record.notification(self.uuid_ids) for record in records]

    def max_notification_id(self) -> int | None:
        self.wait_unsaved()
        return self.ledger.max_notification_id()

    def recorded_versions(self, originator_ids: Sequence[UUID]) -> dict[UUID, int]:
        """The last version of each of these aggregates that has events, in one look-up
        (the write application asks for all that a batch names at once, not one by one)."""
        unsaved = self._unsaved
        if unsaved is not None and unsaved.done.is_set() and unsaved.error is not None:
            self.wait_unsaved()  # raises: its versions are not the store's
        versions = self.ledger.last_uuid_versions(originator_ids)
        # The deferred save's versions, as its commit will store them.
        unsaved_versions = self._unsaved_versions
        for originator_id in originator_ids if unsaved_versions else ():
            version = unsaved_versions.get(originator_id)
            if version is not None:
                versions[originator_id] = version
        return versions

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        return KafkaSubscription(recorder=self, gt=gt, topics=topics)


class KafkaSubscription(ListenNotifySubscription[KafkaApplicationRecorder]):
    """Notifications after `gt`, woken by this process's commits and by polling for others'."""

    def __init__(
        self,
        recorder: KafkaApplicationRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._recorder.ledger.listen(self._has_been_notified)
        self._ticker = threading.Thread(target=self._tick, daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        # Another process's commits send no signal here, so pull periodically as well.
        while not self._has_been_stopped:
            time.sleep(SUBSCRIPTION_POLL_S)
            self._has_been_notified.set()

    def stop(self) -> None:
        super().stop()
        self._recorder.ledger.unlisten(self._has_been_notified)
