"""What the application holds for its lifetime: the composition root, the database pool,
history pages' batches, key cache, refund-request publisher and ledger heads (one per
shard), shared by every request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

if TYPE_CHECKING:
    from api.auth import KeyCache
    from api.page_batches import PageBatches
    from api.refund_requests import RefundPublisher
    from api.views import ViewsDatabase
    from audit.ledger_head import LedgerHead
    from bootstrap import Root


@dataclass
class ApiState:
    root: Root
    views: ViewsDatabase
    pages: PageBatches
    key_cache: KeyCache
    ledger_heads: list[LedgerHead]
    publisher: RefundPublisher | None
    extras: dict[str, Any] = field(default_factory=dict)
    # The API's own tables exist (made at start-up, or at first use if the database was
    # unreachable then).
    tables_ready: bool = False
    # Requests run in a thread pool: two first requests would make the same tables at once,
    # and PostgreSQL refuses one of two such CREATEs.
    _making_tables: threading.Lock = field(default_factory=threading.Lock)

    def ensure_tables(self, db: Any) -> None:
        if self.tables_ready:
            return
        with self._making_tables:
            if not self.tables_ready:
                from api.keys import create_table as create_keys_table
                from api.refund_requests import create_table as create_idempotency_table

                create_keys_table(db)
                create_idempotency_table(db)
                self.tables_ready = True

    async def close(self) -> None:
        await self.views.close()
        for head in self.ledger_heads:
            head.close()
        if self.publisher is not None:
            self.publisher.close()


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state
