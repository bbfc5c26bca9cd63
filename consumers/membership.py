"""Whether an idle ingest still holds its consumer-group membership.

Ingest runs as one static member of its group (``group_instance_id``); a second instance
started with the same id takes the membership over and fences this one's ledger writer.
A busy ingest learns it at its next commit (WriterFenced); an idle one would poll on
forever, because kafka-python only stops heartbeating when the broker says so. This asks
the group coordinator, every few seconds while idle, which member holds our instance id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from store.kafka_clients import KafkaConnection

log = logging.getLogger(__name__)


class IngestReplaced(RuntimeError):
    """A newer ingest instance took over this one's group membership (and its writer)."""


class GroupMembership:
    """Raises IngestReplaced once the group's member for our instance id has been someone
    else twice in a row (once could be our own rejoin, not yet seen locally)."""

    def __init__(self, consumer: Any, connection: KafkaConnection, interval_s: float = 1.5) -> None:
        self._consumer = consumer
        self._connection = connection
        self._interval_s = interval_s
        self._next_check = time.monotonic() + interval_s
        self._admin: Any = None
        self._strikes = 0

    def check(self) -> None:
        """Ask the coordinator, at most once per interval; raise IngestReplaced if replaced."""
        from kafka.errors import KafkaError

        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + self._interval_s
        from kafka.structs import MemberState

        mine = self._consumer.group_metadata()
        if not mine.member_id or mine.group_instance_id is None or mine.state != MemberState.STABLE:
            self._strikes = 0  # not (yet, or no longer) settled in the group: ask again later
            return
        try:
            holder = self._holder(mine.group_id, mine.group_instance_id)
        except KafkaError as error:
            log.warning("cannot describe the ingest group (%r); checking again later", error)
            return
        if holder is None or holder == mine.member_id:
            self._strikes = 0
            return
        self._strikes += 1
        if self._strikes >= 2:
            raise IngestReplaced(
                f"a newer member holds instance {mine.group_instance_id!r} of its group"
            )

    def close(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None

    def _holder(self, group_id: str, instance_id: str) -> str | None:
        if self._admin is None:
            self._admin = self._connection.admin(
                client_id=f"{group_id}-membership", request_timeout_ms=5_000
            )
        described = self._admin.describe_groups([group_id])[group_id]
        for member in described.get("members", []):
            if member.get("group_instance_id") == instance_id:
                return str(member["member_id"])
        return None
