"""ListModelHistory: which version held a stage, alias or environment, and when."""

from __future__ import annotations

from datetime import datetime

from modelregistry.domain.history import HistoryEntry, HistoryQuery
from modelregistry.domain.models import Page
from modelregistry.domain.page_tokens import (
    decode_cursor,
    next_page,
    page_token_binding,
)
from modelregistry.domain.paging import resolve_page_size
from modelregistry.service.models import model_not_found
from modelregistry.storage import history_store, models_store
from modelregistry.storage.database import Database


class HistoryService:
    def __init__(self, db: Database, page_token_key: bytes) -> None:
        self._db = db
        self._key = page_token_key

    async def list_history(
        self, model_id: str, query: HistoryQuery, page_size: int, page_token: str
    ) -> Page[HistoryEntry]:
        limit = resolve_page_size(page_size)
        as_of = query.as_of.isoformat() if query.as_of is not None else ""
        filter_text = f"{query.kind or ''}\x00{query.key or ''}\x00{as_of}"
        binding = page_token_binding("ListModelHistory", model_id, filter_text, "")
        after = self._cursor(binding, page_token)
        async with self._db.connection() as conn:
            items = await history_store.list_history(conn, model_id, query, after, limit + 1)
            if not items and await models_store.get_model_id(conn, model_id) is None:
                raise model_not_found(model_id)
        return next_page(items, limit, self._key, binding, history_store.cursor_of)

    def _cursor(self, binding: str, token: str) -> history_store.Cursor | None:
        if not token:
            return None
        start, kind, key, version, source_id = decode_cursor(
            self._key, binding, token, datetime, str, str, int, int
        )
        return (start, kind, key, version, source_id)
