"""Strict JSON decoding of untrusted text: bounded nesting, no duplicate keys, no NaN.

Python's json module recurses once per nesting level (a RecursionError on deep input,
even inside a field nobody reads), keeps the last of two equal keys, and accepts the
non-JSON literals NaN, Infinity and -Infinity. Each of those lets one message mean
something other than what it says or crash its reader, so they are refused here with a
reason, before anything recursive ever sees the text.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 16
"""Most arrays and objects nested in one another that a message may hold (v1 needs 3)."""

# A JSON string (with its escapes) or one bracket: enough to find the nesting depth
# without parsing, in time linear in the text.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


class JsonRefused(ValueError):
    """Text that is not one strict JSON document; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int:
    """The deepest nesting of ``text``, counting at most to ``limit + 1`` (cheap: valid
    messages hold few brackets, and the scan stops as soon as the limit is passed)."""
    if text.count("[") + text.count("{") <= limit:
        return min(limit, text.count("[") + text.count("{"))
    depth = deepest = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def _refuse_constant(name: str) -> Any:
    raise JsonRefused(f"{name} is not a JSON value (numbers must be finite)")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise JsonRefused(f"duplicate key {key!r} in one object")
        document[key] = value
    return document


# Built once: json.loads() builds a decoder on every call given hooks (a tenth of the
# decoding of a small message).
_DECODER = json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant)


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """Decode ``text`` as strict JSON or raise JsonRefused with the reason."""
    if nesting_depth(text, max_depth) > max_depth:
        raise JsonRefused(f"nested deeper than {max_depth} arrays/objects")
    try:
        if text.startswith("\ufeff"):
            # What json.loads() says of a byte-order mark, which the decoder itself does not.
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except JsonRefused:
        raise
    except json.JSONDecodeError as invalid:
        raise JsonRefused(f"invalid JSON: {invalid.msg} at char {invalid.pos}") from None
    except (ValueError, RecursionError) as invalid:
        # e.g. an integer of more digits than Python converts (sys.int_info).
        raise JsonRefused(f"invalid JSON: {invalid}") from None
