"""The server runs with fewer garbage collections: what start-up built is frozen while it
serves (a full collection does not walk it) and young collections are rarer; both are
given back when it stops."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from api.app import create_app
from bootstrap import Settings, bootstrap
from projections.gc_pacing import YOUNG_THRESHOLD


def test_start_up_is_frozen_while_serving_and_thawed_after(tmp_path: Path) -> None:
    before_threshold = gc.get_threshold()
    gc.unfreeze()
    app = create_app(bootstrap(Settings(data_dir=tmp_path / "data")))
    seen: dict[str, Any] = {}

    async def serve_once() -> None:
        # The ASGI lifespan as a server drives it: start-up, then (here) shut-down at once.
        incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

        async def receive() -> MutableMapping[str, Any]:
            return next(incoming)

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "lifespan.startup.complete":
                seen["frozen"] = gc.get_freeze_count()
                seen["young"] = gc.get_threshold()[0]

        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)

    asyncio.run(serve_once())
    assert seen["frozen"] > 10_000
    assert seen["young"] >= YOUNG_THRESHOLD
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before_threshold
