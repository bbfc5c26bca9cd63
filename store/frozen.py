"""Frozen dataclasses made without their generated ``__init__``, for the ingest's hot path.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``; for one
without slots or ``__post_init__``, filling its ``__dict__`` at once makes the same object
at a fraction of the cost (the library's stored events, notifications, recordings and our
ledger records are made once or more per ledger event).
"""

from __future__ import annotations

from typing import Any, TypeVar

T = TypeVar("T")

_new = object.__new__


def made(cls: type[T], **fields: Any) -> T:
    """An instance of ``cls`` holding ``fields``, as ``cls(**fields)`` would hold them."""
    instance: T = _new(cls)
    vars(instance).update(fields)
    return instance
