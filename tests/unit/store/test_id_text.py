"""An id's kept text is its str()."""

from __future__ import annotations

from uuid import UUID, uuid4

from store.id_text import ID_TEXTS_KEPT, id_text


def test_the_text_is_str_for_uuids_and_text_ids_alike() -> None:
    ids = [uuid4() for _ in range(ID_TEXTS_KEPT + 10)]  # past the bound: recomputed alike
    for originator_id in ids + ids[:20]:
        assert id_text(originator_id) == str(originator_id)
    assert id_text("a-text-id") == "a-text-id"
    assert id_text(UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert id_text.cache_info().maxsize == ID_TEXTS_KEPT
