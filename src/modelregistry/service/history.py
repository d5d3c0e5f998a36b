"""ListModelHistory: which version held a stage, alias or environment, and when."""

from __future__ import annotations

from datetime import datetime

from modelregistry.domain.errors import InvalidArgument
from modelregistry.domain.history import HistoryEntry, HistoryQuery
from modelregistry.domain.models import Page
from modelregistry.domain.page_tokens import (
    decode_page_token,
    encode_page_token,
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
        if len(items) > limit:
            last = history_store.cursor_of(items[limit - 1])
            return Page(items[:limit], encode_page_token(self._key, binding, list(last)))
        return Page(items, "")

    def _cursor(self, binding: str, token: str) -> history_store.Cursor | None:
        if not token:
            return None
        values = decode_page_token(self._key, binding, token)
        match values:
            case [datetime() as start, str(kind), str(key), int(version), int(source_id)]:
                return (start, kind, key, version, source_id)
        raise InvalidArgument.for_field("page_token", "page_token does not match this request")
