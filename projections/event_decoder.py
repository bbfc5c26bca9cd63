"""Domain events decoded straight from a stored record's fields: what the library's
``Mapper.to_domain_event`` makes of a ``StoredEvent``, without building the StoredEvent (or
the ``Notification``) first, and with each topic's class looked up once.

A projector decodes every event of the ledger, so the mapper's per-event overhead around
the state's JSON (a dataclass per record, the topic and id-type look-ups, the cipher and
compressor checks, the upcast loop) was a share of its CPU of its own. The fast path is
taken only where it is the mapper's path: the library's own ``to_domain_event`` (not a
subclass's), no cipher, no compressor, and a state at its class's version (named in the
state or, for version 1, not; no upcast). Anything else, and any state the transcoder
cannot decode, goes through the mapper itself, whose values and errors are the reference
(tests/unit/projections/test_event_decoder.py holds the two equal over every event type of
real traffic).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import resolve_topic

_Known = tuple[type, int, dict[type, Callable[[Any], Any]]]


class EventDecoder:
    """Decodes stored events as ``mapper`` does."""

    def __init__(self, mapper: Mapper[Any]) -> None:
        self._mapper = mapper
        self._fast = (
            type(mapper).to_domain_event is Mapper.to_domain_event
            and mapper.cipher is None
            and mapper.compressor is None
        )
        self._decode = mapper.transcoder.decode
        # Per topic: the class, its version, and its id convertor per id type; None: the
        # mapper's path.
        self._classes: dict[str, _Known | None] = {}

    def event(self, originator_id: UUID | str, version: int, topic: str, state: bytes) -> Any:
        """The domain event of one stored record."""
        try:
            known = self._classes[topic]
        except KeyError:
            known = self._learn(topic)
        if known is not None:
            try:
                event_state = self._decode(state)
            except Exception:
                event_state = None  # the mapper decodes it again and raises its own error
            cls, class_version, convertors = known
            # Popped as the mapper pops it; a state it does not match is decoded again there.
            if type(event_state) is dict and event_state.pop("class_version", 1) == class_version:
                id_type: Any = type(originator_id)
                convertor = convertors.get(id_type) or convertors.setdefault(
                    id_type, find_id_convertor(cls, id_type)
                )
                event_state["originator_id"] = convertor(originator_id)
                event_state["originator_version"] = version
                domain_event: Any = object.__new__(cls)
                object.__setattr__(domain_event, "__dict__", event_state)
                return domain_event
        return self._mapper.to_domain_event(
            StoredEvent(
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=state,
            )
        )

    def _learn(self, topic: str) -> _Known | None:
        cls = resolve_topic(topic)  # an unknown topic raises here, as in the mapper
        known: _Known | None = (cls, getattr(cls, "class_version", 1), {}) if self._fast else None
        self._classes[topic] = known
        return known
