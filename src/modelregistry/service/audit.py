"""Use cases of AuditService: listing and following the audit log."""

from __future__ import annotations

from modelregistry.storage.database import Database


class AuditService:
    def __init__(self, db: Database, page_key: bytes) -> None:
        self._db = db
        self._page_key = page_key

    async def start(self) -> None:
        """Begin following commits (called once the server starts)."""

    async def close(self) -> None:
        """Stop following commits and end every watch (called at shutdown)."""
