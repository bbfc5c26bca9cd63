"""Read a stored event's state bytes as plain JSON values, without the domain's classes.

The auditor's tools must read what is in the ledger even when it would not load into an
aggregate (a tampered or foreign record), so they decode the JSON themselves and unwrap
the eventsourcing transcoder's typed values ({"_type_": ..., "_data_": ...}) to their text.
"""

from __future__ import annotations

import json
from typing import Any

# The transcoder's wrapper for values JSON has no type for (datetimes, decimals, UUIDs).
_TYPE_KEY = "_type_"
_DATA_KEY = "_data_"


class StateNotJson(ValueError):
    """A record's state is not the UTF-8 JSON object that every ledger event is stored as."""


def decode_state(state: bytes) -> dict[str, Any]:
    """The state as a dict of plain values (typed values become their text form)."""
    try:
        value = json.loads(state)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise StateNotJson(f"state is not JSON ({error})") from None
    if not isinstance(value, dict):
        raise StateNotJson(f"state is JSON but not an object (a {type(value).__name__})")
    plain = _plain(value)
    assert isinstance(plain, dict)
    return plain


def state_as_json_text(state: bytes) -> str | None:
    """The state as JSON text when it is JSON, else None (the bytes are kept elsewhere)."""
    try:
        text = state.decode("utf-8")
        json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return text


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {_TYPE_KEY, _DATA_KEY}:
            return _plain(value[_DATA_KEY])
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def event_name(topic: str) -> str:
    """'domain.payment:Payment.Captured' -> 'Payment.Captured'."""
    return topic.rpartition(":")[2]


def aggregate_name(topic: str) -> str:
    """'domain.payment:Payment.Captured' -> 'Payment'."""
    return event_name(topic).partition(".")[0]
