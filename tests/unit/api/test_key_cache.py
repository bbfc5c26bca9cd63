"""The key cache asks the database once per key however many requests miss it together,
forgets a verified key after its TTL (so a revocation takes effect within it), and looks a
key in use up again before then, in the background and once per entry, so that no request
waits for it. Time is a fake clock here: no margin of a real one can flake on a busy host."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest

from api import auth
from api.auth import KeyCache
from api.keys import ApiKey, Role

_KEY = ApiKey("k1", "test", Role.support, datetime(2024, 1, 1, tzinfo=UTC), None)


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _settle() -> None:
    """Lets every task that is ready run to its end (the lookups here never block)."""
    for _ in range(10):
        await asyncio.sleep(0)


def test_concurrent_misses_share_one_lookup() -> None:
    cache = KeyCache(Clock())
    lookups = 0

    async def lookup() -> ApiKey | None:
        nonlocal lookups
        lookups += 1
        await asyncio.sleep(0)
        return _KEY

    async def many() -> list[ApiKey | None]:
        return await asyncio.gather(*(cache.verified("evk_x", lookup) for _ in range(50)))

    assert asyncio.run(many()) == [_KEY] * 50
    assert lookups == 1
    assert cache.get("evk_x") == _KEY


def test_unknown_keys_are_not_cached_and_failures_reach_every_caller() -> None:
    cache = KeyCache(Clock())
    calls = 0

    async def unknown() -> ApiKey | None:
        nonlocal calls
        calls += 1
        return None

    async def failing() -> ApiKey | None:
        await asyncio.sleep(0)
        raise RuntimeError("database down")

    async def run() -> None:
        assert await cache.verified("evk_bad", unknown) is None
        assert await cache.verified("evk_bad", unknown) is None
        results = await asyncio.gather(
            *(cache.verified("evk_y", failing) for _ in range(3)), return_exceptions=True
        )
        assert [type(result) for result in results] == [RuntimeError] * 3

    asyncio.run(run())
    assert calls == 2
    assert cache.get("evk_y") is None


def test_a_verified_key_expires_after_the_ttl() -> None:
    clock = Clock()
    cache = KeyCache(clock)
    cache.put("evk_z", _KEY)
    clock.now += auth.KEY_CACHE_TTL_S
    assert cache.get("evk_z") == _KEY
    clock.now += 0.001
    assert cache.get("evk_z") is None


@pytest.mark.parametrize(
    ("answer", "renewed"),
    [(_KEY, True), (None, False), (RuntimeError("database down"), False)],
    ids=["still valid", "revoked", "database down"],
)
def test_a_key_in_use_is_looked_up_again_once_before_it_expires(
    answer: ApiKey | Exception | None, renewed: bool
) -> None:
    clock = Clock()
    cache = KeyCache(clock)
    cache.put("evk_r", _KEY)
    expires = clock.now + auth.KEY_CACHE_TTL_S
    calls = 0
    errors: list[dict[str, object]] = []
    answering = asyncio.Event()  # the database answers when the test says so

    async def lookup() -> ApiKey | None:
        nonlocal calls
        calls += 1
        await answering.wait()
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _, context: errors.append(context))
        clock.now = expires - auth.KEY_CACHE_REFRESH_S - 0.001
        assert cache.current("evk_r", lookup) == _KEY
        await _settle()
        assert calls == 0  # fresh: no lookup
        clock.now = expires - auth.KEY_CACHE_REFRESH_S + 0.001
        for _ in range(20):  # due: still served from the cache, looked up once meanwhile
            assert cache.current("evk_r", lookup) == _KEY
            await asyncio.sleep(0)
        assert calls == 1
        answering.set()
        await _settle()
        # Revoked: dropped at once; unreachable: kept until it expires, not asked again
        # however many requests come (a database that fails fast is not asked in a loop).
        for _ in range(20):
            assert cache.current("evk_r", lookup) == (None if answer is None else _KEY)
            await _settle()
        assert calls == 1
        clock.now = expires + 0.001  # past the first entry's expiry
        assert cache.get("evk_r") == (_KEY if renewed else None)

    asyncio.run(run())
    assert errors == []  # a failed lookup in the background is not left unretrieved


def test_a_failed_refresh_is_logged_once_by_its_type_without_the_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    cache = KeyCache(clock)
    presented = "evk_secret_text_of_the_key"
    cache.put(presented, _KEY)

    async def lookup() -> ApiKey | None:
        raise ConnectionRefusedError(f"could not look up {presented}")

    async def run() -> None:
        clock.now += auth.KEY_CACHE_TTL_S - auth.KEY_CACHE_REFRESH_S / 2
        for _ in range(20):
            assert cache.current(presented, lookup) == _KEY
            await _settle()

    with caplog.at_level(logging.WARNING, logger="evledger.api"):
        asyncio.run(run())
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "ConnectionRefusedError" in warnings[0]
    assert "evk_" not in caplog.text and "secret" not in caplog.text
