"""Where a point in the ledger is: an auditor's ledger offset and the notification ids the
projectors count in. On Kafka the two differ (offsets also hold transaction markers and
aborted records); on the embedded default an offset is the notification id itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from projections.runner import LedgerSource
    from store.ledger import Ledger


class PointBeyondLedger(ValueError):
    """The offset asked for lies past the end of the ledger: there is no such past yet."""


class LedgerPositions(ABC):
    """Translates ledger offsets, as audit and trail print them, to notification ids."""

    @abstractmethod
    def notification_at(self, offset: int) -> int:
        """The last notification id stored at or below ``offset`` (0: none)."""

    @abstractmethod
    def offset_of(self, notification_id: int) -> int | None:
        """Where notification ``notification_id`` is (None for 0: no event)."""


class NotificationPositions(LedgerPositions):
    """The embedded default: the SQLite ledger has no offsets, so a position is an id."""

    def __init__(self, source: LedgerSource) -> None:
        self.source = source

    def notification_at(self, offset: int) -> int:
        head = self.source.last_position()
        if offset > head:
            raise PointBeyondLedger(
                f"--until-offset {offset}: the ledger ends at notification {head} "
                "(on the embedded default an offset is a notification id)"
            )
        return offset

    def offset_of(self, notification_id: int) -> int | None:
        return notification_id or None


class KafkaOffsetPositions(LedgerPositions):
    """The Kafka ledger: ids and offsets rise together, found through the store's index."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def notification_at(self, offset: int) -> int:
        end = self.ledger.reader.end_offset()
        if offset >= end:
            raise PointBeyondLedger(
                f"--until-offset {offset}: the ledger topic {self.ledger.config.topic!r} ends "
                f"at offset {end - 1}"
            )
        # Binary search: offsets are not ids - 1, but they grow with them.
        low, high = 0, self.ledger.max_notification_id() or 0
        while low < high:
            middle = (low + high + 1) // 2
            if self.ledger.index.notifications(middle, 1)[0].offset <= offset:
                low = middle
            else:
                high = middle - 1
        return low

    def offset_of(self, notification_id: int) -> int | None:
        if notification_id == 0:
            return None
        return self.ledger.index.notifications(notification_id, 1)[0].offset
