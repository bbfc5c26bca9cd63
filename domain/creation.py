"""Creating an aggregate: the library's ``Aggregate._create`` without its generic steps.

Ingest creates one or two aggregates per message (its ``ProcessedMessage``, and sessions,
settlements, payments, refunds), and the library's path filters keyword arguments against
method signatures twice per creation (the created event's ``mutate``): about 6 µs of the
8 µs a creation cost. Every aggregate here has an ``__init__`` of no arguments, the
library's ``__base_init__`` and a created event with the library's own ``mutate``; for
those, ``create`` takes the same steps in the same order with what is known already, and
makes the same event and aggregate. A class that differs takes the library's path.
"""

from __future__ import annotations

import inspect
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate, BaseAggregate, CanInitAggregate
from eventsourcing.utils import get_topic

A = TypeVar("A", bound=Aggregate)


def create(cls: type[A], event_class: type[Aggregate.Created], *, id: UUID, **fields: Any) -> A:
    """``cls._create(event_class, id=id, **fields)``: the same event and aggregate."""
    topic = _plain_topic(cls, event_class)
    if topic is None or not isinstance(id, UUID) or "timestamp" in fields:
        return cls._create(event_class, id=id, **fields)
    version = cls.INITIAL_VERSION
    timestamp = event_class.create_timestamp()
    try:
        event = event_class(
            originator_topic=topic,
            originator_id=id,
            originator_version=version,
            timestamp=timestamp,
            **fields,
        )
    except TypeError:
        return cls._create(event_class, id=id, **fields)  # which says what is wrong
    aggregate = cls.__new__(cls)
    aggregate.__base_init__(id, version, timestamp)
    aggregate.__init__()  # type: ignore[misc]
    event.apply(aggregate)
    aggregate.pending_events.append(event)
    return aggregate


@cache
def _plain_topic(cls: type[Aggregate], event_class: type[Aggregate.Created]) -> str | None:
    """The class's topic when its creation is the library's plain case, else None."""
    plain = (
        not getattr(cls, "TOPIC", None)
        and getattr(event_class, "mutate", None) is CanInitAggregate.mutate
        and getattr(cls, "__base_init__", None) is BaseAggregate.__base_init__
        and list(inspect.signature(cls.__init__).parameters) == ["self"]
    )
    return get_topic(cls) if plain else None
