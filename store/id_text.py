"""An aggregate id's text (the ledger's records and index spell ids as text), kept for the
ids seen recently: ``str()`` of a UUID is Python code (a format and four slices), and a
write spells each id of a batch twice, in its versions' look-up and in the writer's request.
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID

# Bounded: two batches' ids and more, about a MiB.
ID_TEXTS_KEPT = 8_192


@lru_cache(maxsize=ID_TEXTS_KEPT)
def id_text(originator_id: UUID | str) -> str:
    """``str(originator_id)`` (a text id is its own text)."""
    return str(originator_id)
