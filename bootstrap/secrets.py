"""PostgreSQL passwords kept out of everything printed: DSNs shown masked, and any message
scrubbed of the password, however it is written (URL-encoded, quoted, with / or spaces)."""

from __future__ import annotations

import re
from urllib.parse import unquote

_URL = re.compile(r"^(?P<scheme>postgres(?:ql)?://)(?P<userinfo>.*)@(?P<rest>[^@]*)$", re.DOTALL)
_KEYWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
MASK = "***"


def _url_password(dsn: str) -> str | None:
    match = _URL.match(dsn)
    if match is None or ":" not in match["userinfo"]:
        return None
    return match["userinfo"].split(":", 1)[1]


def passwords_in(dsn: str) -> list[str]:
    """Every spelling of the DSN's password that a message might contain."""
    found: list[str] = []
    url_password = _url_password(dsn)
    if url_password:
        found += [url_password, unquote(url_password)]
    for match in _KEYWORD.finditer(dsn):
        value = match.group(2)
        found += [value, value.strip("'").replace("\\'", "'").replace("\\\\", "\\")]
    # A DSN that does not say what it means (an unencoded @ or / in a URL) is split by the
    # parser at those characters, and the pieces can land in a host name or an error.
    found += [piece for p in found for piece in re.split(r"[@/:\s]+", p) if len(piece) >= 3]
    # Longest first, so a shorter spelling never leaves part of a longer one behind.
    return sorted({p for p in found if p}, key=len, reverse=True)


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ***, even when the DSN does not parse."""
    match = _URL.match(dsn)
    if match is not None and ":" in match["userinfo"]:
        user = match["userinfo"].split(":", 1)[0]
        return f"{match['scheme']}{user}:{MASK}@{match['rest']}"
    return _KEYWORD.sub(lambda m: m.group(1) + MASK, dsn)


def scrub(text: str, dsn: str | None) -> str:
    """``text`` with every spelling of the DSN's password replaced by ***."""
    if not dsn:
        return text
    for password in passwords_in(dsn):
        text = text.replace(password, MASK)
    return text
