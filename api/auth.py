"""Bearer authentication and role checks: no key 401, a key of another role 403."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.keys import ApiKey, Role, verify_key
from api.params import checks_query_after_key, refuse_unknown_query
from api.problems import Problem
from api.state import ApiState, api_state

# A verified key is trusted this long without asking the database again (so a revoked key
# stops working within this many seconds); it spares every request a key lookup.
KEY_CACHE_TTL_S = 2.0
# A key in use is looked up again this long before its entry expires, in the background, so
# a busy key never expires: every request in flight with it used to wait for that lookup
# (2% of the history pages under 50 clients, 35 to 140 ms each on a busy machine).
KEY_CACHE_REFRESH_S = 0.5

log = logging.getLogger("evledger.api")

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `evledger apikey create`: Authorization: Bearer evk_...",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="evledger"'}


class KeyCache:
    """Recently verified keys by their full text (kept in memory only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # Expiry, key, and whether its refresh has been started: at most one per entry, so a
        # database that fails fast is not asked again by every request until the entry expires.
        self._entries: dict[str, tuple[float, ApiKey, bool]] = {}
        self._lock = threading.Lock()
        # One lookup per key at a time: when a busy key's entry expires, every request in
        # flight with it would otherwise ask the database at once (a burst every TTL).
        self._lookups: dict[str, asyncio.Future[ApiKey | None]] = {}

    async def verified(
        self, presented: str, lookup: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        """The key, from the cache or else from ``lookup`` (shared by concurrent callers)."""
        key = self.current(presented, lookup)
        if key is not None:
            return key
        return await asyncio.shield(self._looking_up(presented, lookup))

    def current(
        self, presented: str, lookup: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        """The cached key, or None; one that expires soon is looked up again meanwhile, once
        (a revoked one is dropped then, an unreachable database lets it expire)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(presented)
            if entry is None or entry[0] < now:
                return None
            expires, key, refreshing = entry
            refresh = not refreshing and expires - now < KEY_CACHE_REFRESH_S
            if refresh:
                self._entries[presented] = (expires, key, True)
        if refresh and presented not in self._lookups:
            self._looking_up(presented, lookup).add_done_callback(_report_failed_refresh)
        return key

    def _looking_up(
        self, presented: str, lookup: Callable[[], Awaitable[ApiKey | None]]
    ) -> asyncio.Future[ApiKey | None]:
        pending = self._lookups.get(presented)
        if pending is None:
            pending = asyncio.ensure_future(self._look_up(presented, lookup))
            self._lookups[presented] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(presented, None))
        return pending

    async def _look_up(
        self, presented: str, lookup: Callable[[], Awaitable[ApiKey | None]]
    ) -> ApiKey | None:
        key = await lookup()
        if key is None:
            with self._lock:
                self._entries.pop(presented, None)
        else:
            self.put(presented, key)
        return key

    def get(self, presented: str) -> ApiKey | None:
        with self._lock:
            entry = self._entries.get(presented)
        if entry is None or entry[0] < self._clock():
            return None
        return entry[1]

    def put(self, presented: str, key: ApiKey) -> None:
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[presented] = (self._clock() + KEY_CACHE_TTL_S, key, False)


def _report_failed_refresh(done: asyncio.Future[ApiKey | None]) -> None:
    """Retrieves a background refresh's failure (so asyncio does not report it as never
    retrieved) and logs its type: never the key, nor its hash. Once per entry at most, as an
    entry is refreshed once; the entry then expires and the next request's lookup answers
    it (a 503)."""
    if done.cancelled():
        return
    error = done.exception()
    if error is not None:
        log.warning(
            "a key's background lookup failed (%s); its cached entry expires unrenewed",
            type(error).__name__,
        )


async def _authenticate(
    state: ApiState, credentials: HTTPAuthorizationCredentials | None
) -> ApiKey:
    if credentials is None:
        raise Problem(
            401,
            "this endpoint needs an API key: send `Authorization: Bearer KEY` "
            "(keys come from `evledger apikey create`)",
            headers=_CHALLENGE,
        )
    key = await state.key_cache.verified(
        credentials.credentials, key_lookup(state, credentials.credentials)
    )
    if key is None:
        raise Problem(
            401, "the API key is not valid (unknown, malformed or revoked)", headers=_CHALLENGE
        )
    return key


def key_lookup(state: ApiState, presented: str) -> Callable[[], Awaitable[ApiKey | None]]:
    """The database lookup of ``presented``, in a worker thread (the key cache calls it)."""
    return lambda: run_in_threadpool(_lookup, state, presented)


def _lookup(state: ApiState, presented: str) -> ApiKey | None:
    with state.views.connection() as db:
        state.ensure_tables(db)
        return verify_key(db, presented)


def require(*roles: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency that admits keys of these roles only, and then refuses query
    parameters the endpoint does not take (a 422 after the 401 or 403)."""
    allowed = ", ".join(role.value for role in roles)

    # Async: a cached key costs no thread hop; a lookup goes to the thread pool.
    @checks_query_after_key
    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> ApiKey:
        key = await _authenticate(api_state(request), credentials)
        if key.role not in roles:
            raise Problem(
                403, f"a key with role {key.role.value!r} may not do this; it needs: {allowed}"
            )
        request.state.api_key_id = key.key_id
        refuse_unknown_query(request)
        return key

    return dependency
