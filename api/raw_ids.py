"""Ids in paths, one segment each, told apart on the raw path.

A server hands an application the path percent-decoded (ASGI `path`), where an id's `/`
sent as `%2F` can no longer be told from the `/` between segments. So before routing, a
path holding any `%` is rebuilt from the request's raw bytes (`raw_path`): each segment
decoded on its own, then its `%` and `/` escaped again (`%25`, `%2F`). Routes then match
an id as one segment (`{payment_id:id}`, api/params.py) and decode it with `segment_id`:
`/v1/payments/P2/` is the route's trailing-slash redirect and `/v1/customers/C1/payments/
x/payments` no route (404), while an id holding `/` is reachable escaped as `%2F`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, unquote_to_bytes


def _segment(raw: bytes) -> str:
    # Decoded as servers decode a path (UTF-8, bad bytes replaced), then `%` and `/`
    # escaped again: a path of these segments has a `%` only where an escape starts.
    text = unquote_to_bytes(raw).decode("utf-8", "replace")
    return text.replace("%", "%25").replace("/", "%2F")


def with_segmented_path(scope: dict[str, Any]) -> dict[str, Any]:
    """``scope`` with its path's segments as the raw path has them (see above); unchanged
    when the raw path has no `%` (then no segment holds a `/` or an escape)."""
    raw = scope.get("raw_path")
    if not raw or b"%" not in raw:
        return scope
    path = "/".join(_segment(part) for part in raw.split(b"?", 1)[0].split(b"/"))
    return {**scope, "path": path}


def segment_id(segment: str) -> str:
    """The id a path segment of ``with_segmented_path`` names."""
    return unquote(segment)
