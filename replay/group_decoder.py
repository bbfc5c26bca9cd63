"""A rebuild worker's event decoder for one database group: an event of a type none of the
group's read models takes facts from is not decoded (its state's JSON is most of a record's
decode) and stands in its batch as a placeholder the facts ignore, so the batch still holds
every position and moves every model's position as before.

The types are decided by the entities their facts may hold, which each handler of
projections/facts.py declares (``ENTITIES_OF``); a type not named there is always
decoded. Of a type whose events mostly make no facts, an event is also left undecoded when
its stored state lacks the text every one that makes a fact holds (``STATE_HOLDS``: an
applied ProcessedMessage, nearly a third of a ledger, which analytics decoded only to find
it was not a rejection); a test on the state's bytes, so only where the states are stored
as the JSON itself (no cipher, no compressor, a JSON transcoder).

No read model takes facts from the IGNORED types (the settlements' bookkeeping,
about a fifth of a ledger); the views' (payment history, refund status) take none from
ProcessedMessage (a third: a rejected message is an analytics row), the tariffs or the
rejections. tests/unit/projections/test_entities_of.py holds the table against the facts
of real traffic.

An IGNORED event (or an applied ProcessedMessage) is decoded by no group, so one whose state
would not decode (which stalls ``evledger project``) does not stop a rebuild; the rows are
the same, and ``audit verify``, which reads every record's state, is what reports it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Mapper
from eventsourcing.utils import resolve_topic

from projections.entities import Entity
from projections.event_decoder import EventDecoder
from projections.facts import ENTITIES_OF, IGNORED, STATE_HOLDS

# What an undecoded event is in its batch: an event of an IGNORED type (which has no facts),
# without its state; anything that reads a value of it fails.
PLACEHOLDER: Any = object.__new__(min(IGNORED, key=lambda event_type: event_type.__qualname__))


class GroupDecoder(EventDecoder):
    """Decodes stored events as ``EventDecoder`` does, but those of a type from which none of
    ``entities`` is made, and those whose state lacks its type's ``STATE_HOLDS``, which are
    the PLACEHOLDER: its events are for ``facts_of`` only
    (no timestamp, no command's end: replay/ledger_prefix.py refuses it for such stops)."""

    def __init__(self, mapper: Mapper[Any], entities: Iterable[Entity]) -> None:
        super().__init__(mapper)
        self._entities = frozenset(entities)
        # Whether a stored state is the JSON itself, which STATE_HOLDS is text of, decoded
        # by the library's own mapping (the decoder's fast path: no cipher, no compressor).
        self._plain = self._fast and isinstance(mapper.transcoder, JSONTranscoder)
        # Per topic: the text a state must hold to be decoded (b"": any), or None: none is.
        self._holds: dict[str, bytes | None] = {}

    def event(self, originator_id: UUID | str, version: int, topic: str, state: bytes) -> Any:
        try:
            holds = self._holds[topic]
        except KeyError:
            holds = self._holds[topic] = self._to_decode(topic)
        if holds is None or holds not in state:
            return PLACEHOLDER
        return super().event(originator_id, version, topic, state)

    def _to_decode(self, topic: str) -> bytes | None:
        """What a state of ``topic`` must hold to be decoded (None: nothing decodes it)."""
        if self.unread(topic):
            return None
        try:
            event_type = resolve_topic(topic)
        except Exception:  # decoded, and fails there
            return b""
        if not self._plain or not _one_version(event_type):
            return b""
        return STATE_HOLDS.get(event_type, b"")

    def unread(self, topic: str) -> bool:
        """Whether events of ``topic`` give the group nothing (an unknown topic is decoded,
        and fails there as it always did)."""
        try:
            event_type = resolve_topic(topic)
        except Exception:
            return False
        made = ENTITIES_OF.get(event_type)
        return made is not None and made.isdisjoint(self._entities)


def _one_version(event_type: type) -> bool:
    """Whether every stored event of the type is in the spelling it has now: no later class
    version and no upcasting (eventsourcing's ``class_version`` and ``upcast_v*``), which
    could turn a state without the text into one that makes a fact."""
    versioned = getattr(event_type, "class_version", 1) != 1
    return not versioned and not any(name.startswith("upcast_") for name in dir(event_type))
