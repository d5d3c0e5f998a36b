"""Use cases of AccessService: tokens and grants."""

from __future__ import annotations

from modelregistry.storage.database import Database


class AccessService:
    def __init__(self, db: Database, page_key: bytes) -> None:
        self._db = db
        self._page_key = page_key
