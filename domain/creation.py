"""Creating an aggregate and triggering its events: the library's ``Aggregate._create`` and
``trigger_event`` without their generic steps.

Ingest creates one or two aggregates per message (its ``ProcessedMessage``, and sessions,
settlements, payments, refunds) and triggers one or two more events. The library's
creation filters keyword arguments against method signatures twice (the created event's
``mutate``), and both paths build the event through its generated frozen ``__init__``
(each field through ``object.__setattr__``, then ``__post_init__``'s UUID check) from a
copied keyword dict. Every aggregate here has an ``__init__`` of no arguments, the
library's ``__base_init__``, ``trigger_event`` and ``mutate``, and no ``TOPIC``; for those,
``create`` and ``trigger`` take the same steps in the same order with what is known
already, fill the event's ``__dict__`` in its fields' order (the stored state's key order,
so the same ledger bytes) and make the same event and aggregate. A class that differs,
or fields that are not exactly the event's, take the library's path (which says what is
wrong). tests/unit/domain/test_creation.py holds both paths equal on every golden and
generated event.
"""

from __future__ import annotations

import dataclasses
import inspect
from datetime import datetime
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing import domain as domain_module
from eventsourcing.domain import (
    Aggregate,
    BaseAggregate,
    CanCreateTimestamp,
    CanInitAggregate,
    CanMutateAggregate,
    DomainEvent,
)
from eventsourcing.utils import get_topic

A = TypeVar("A", bound=Aggregate)

_new = object.__new__
# What the library's create_timestamp() returns, without its two calls: the time now in the
# library's TZINFO (read at each call, as it does).
_now = datetime.now

# The fields every aggregate event's ``__init__`` sets before its own, in this order.
_BASE = ("originator_id", "originator_version", "timestamp")


def create(cls: type[A], event_class: type[Aggregate.Created], *, id: UUID, **fields: Any) -> A:
    """``cls._create(event_class, id=id, **fields)``: the same event and aggregate."""
    topic = _plain_topic(cls, event_class)
    own = _own_fields(event_class)
    if topic is None or type(id) is not UUID or fields.keys() != own.keys():
        return cls._create(event_class, id=id, **fields)
    version = cls.INITIAL_VERSION
    timestamp = _now(domain_module.TZINFO)
    event = _new(event_class)
    state = vars(event)
    state["originator_id"] = id
    state["originator_version"] = version
    state["timestamp"] = timestamp
    state["originator_topic"] = topic
    for name in own:
        state[name] = fields[name]
    aggregate = cls.__new__(cls)
    aggregate.__base_init__(id, version, timestamp)
    aggregate.__init__()  # type: ignore[misc]
    event.apply(aggregate)
    aggregate._pending_events.append(event)  # the property's list
    return aggregate


def trigger(aggregate: Aggregate, event_class: type[Aggregate.Event], **fields: Any) -> None:
    """``aggregate.trigger_event(event_class, **fields)``: the same event and aggregate."""
    own = _own_fields(event_class)
    if not _plain_trigger(type(aggregate), event_class) or fields.keys() != own.keys():
        aggregate.trigger_event(event_class, **fields)
        return
    version = aggregate.version + 1
    timestamp = _now(domain_module.TZINFO)
    event = _new(event_class)
    state = vars(event)
    # The library's mutate checks the event's id and version against the aggregate's,
    # which here are taken from it; it then applies the event and stamps the aggregate.
    state["originator_id"] = aggregate.id
    state["originator_version"] = version
    state["timestamp"] = timestamp
    for name in own:
        state[name] = fields[name]
    event.apply(aggregate)
    aggregate.version = version
    aggregate.modified_on = timestamp
    aggregate._pending_events.append(event)  # the property's list


@cache
def _own_fields(event_class: type[CanMutateAggregate[UUID]]) -> dict[str, None]:
    """The event class's fields after the base ones, in their order (a dict, whose keys view
    compares with a set's in one step)."""
    names = [f.name for f in dataclasses.fields(event_class)]  # type: ignore[arg-type]
    return dict.fromkeys(name for name in names if name not in (*_BASE, "originator_topic"))


@cache
def _plain_topic(cls: type[Aggregate], event_class: type[Aggregate.Created]) -> str | None:
    """The class's topic when its creation is the library's plain case, else None."""
    plain = (
        not getattr(cls, "TOPIC", None)
        and getattr(event_class, "mutate", None) is CanInitAggregate.mutate
        and getattr(cls, "__base_init__", None) is BaseAggregate.__base_init__
        and list(inspect.signature(cls.__init__).parameters) == ["self"]
        and _plain_event(event_class, (*_BASE, "originator_topic"))
    )
    return get_topic(cls) if plain else None


@cache
def _plain_trigger(cls: type[Aggregate], event_class: type[Aggregate.Event]) -> bool:
    """Whether the class triggers this event by the library's plain steps."""
    return (
        not getattr(cls, "TOPIC", None)
        and getattr(cls, "trigger_event", None) is BaseAggregate.trigger_event
        and getattr(event_class, "mutate", None) is CanMutateAggregate.mutate
        and _plain_event(event_class, _BASE)
    )


def _plain_event(event_class: type[Any], base: tuple[str, ...]) -> bool:
    """A frozen dataclass without slots whose ``__init__`` sets ``base`` first and then its
    own fields, whose ``__post_init__`` is the library's UUID check (true of the id given
    here) or absent, and whose timestamps are the library's."""
    names = [f.name for f in dataclasses.fields(event_class)]
    return (
        dataclasses.is_dataclass(event_class)
        and "__slots__" not in vars(event_class)
        and names[: len(base)] == list(base)
        and all(f.init and not f.kw_only for f in dataclasses.fields(event_class))
        and getattr(event_class, "__post_init__", None) in (None, DomainEvent.__post_init__)
        and getattr(event_class, "create_timestamp", None) is CanCreateTimestamp.create_timestamp
    )
